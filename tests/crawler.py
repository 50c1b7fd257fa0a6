"""A crawler-text report (the whole body on one line, table cells run together) built from the
digit runs a test gives for each row, with the 2021 format's labels as real crawler texts print them
(../shared/corpus/016). Rows not given print seven zeros."""

from __future__ import annotations

APPLICATION_ROWS = [
    ("new_received", "一、本年新收政府信息公开申请数量"),
    ("carried_over", "二、上年结转政府信息公开申请数量"),
    ("granted", "三、本年度办理结果（一）予以公开"),
    ("partial", "（二）部分公开（区分处理的，只计这一情形，不计其他情形）"),
    ("deny_state_secret", "（三）不予公开1.属于国家秘密"),
    ("deny_law_prohibited", "2.其他法律行政法规禁止公开"),
    ("deny_security_stability", "3.危及“三安全一稳定”"),
    ("deny_third_party", "4.保护第三方合法权益"),
    ("deny_internal_affairs", "5.属于三类内部事务信息"),
    ("deny_process_info", "6.属于四类过程性信息"),
    ("deny_enforcement_file", "7.属于行政执法案卷"),
    ("deny_admin_query", "8.属于行政查询事项"),
    ("unable_not_held", "（四）无法提供1.本机关不掌握相关政府信息"),
    ("unable_need_creation", "2.没有现成信息需要另行制作"),
    ("unable_unclear", "3.补正后申请内容仍不明确"),
    ("reject_petition", "（五）不予处理1.信访举报投诉类申请"),
    ("reject_duplicate", "2.重复申请"),
    ("reject_publication", "3.要求提供公开出版物"),
    ("reject_massive", "4.无正当理由大量反复申请"),
    ("reject_confirm", "5.要求行政机关确认或重新出具已获取信息"),
    ("other_no_correction", "（六）其他处理1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请"),
    ("other_unpaid_fee", "2.申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请"),
    ("other_misc", "3.其他"),
    ("total_processed", "（七）总计"),
    ("carried_forward", "四、结转下年度继续办理"),
]
REVIEW_HEADER = (
    "行政复议行政诉讼结果维持结果纠正其他结果尚未审结总计未经复议直接起诉复议后起诉"
    "结果维持结果纠正其他结果尚未审结总计结果维持结果纠正其他结果尚未审结总计"
)


def crawler_report(
    rows: dict[str, str] | None = None,
    review: str = "000000000000000",
    normative: str = "000",
    labels: dict[str, str] | None = None,
    after_review: str = "",
    after_table: str = "",
) -> str:
    """The report's text. `rows`: row key → printed run; `labels`: row key → the label printed
    instead; `after_table` / `after_review`: text printed right after table 三's last run / table
    四's run (prose the crawler ran into the digits)."""
    rows, labels = rows or {}, labels or {}
    table3 = "".join(labels.get(key, label) + rows.get(key, "0000000") for key, label in APPLICATION_ROWS)
    body = (
        "本报告根据《中华人民共和国政府信息公开条例》编制。本报告所列数据统计期限为2024年1月1日至2024年12月31日。"
        "一、总体情况2024年，本局认真做好政府信息公开工作。"
        "二、主动公开政府信息情况第二十条第（一）项信息内容本年制发件数本年废止件数现行有效件数"
        f"规章000行政规范性文件{normative}第二十条第（五）项信息内容本年处理决定数量行政许可0"
        "第二十条第（六）项信息内容本年处理决定数量行政处罚0行政强制0"
        "第二十条第（八）项信息内容本年收费金额（单位：万元）行政事业性收费0"
        "三、收到和处理政府信息公开申请情况（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"
        "申请人情况自然人法人或其他组织总计商业企业科研机构社会公益组织法律服务机构其他"
        f"{table3}{after_table}"
        f"四、政府信息公开行政复议、行政诉讼情况{REVIEW_HEADER}{review}{after_review}"
        "五、存在的主要问题及改进情况本局将继续改进政府信息公开工作。"
        "六、其他需要报告的事项本局未收取信息处理费。"
    )
    return "\n".join(
        [
            "标题: 示例市示例局2024年度政府信息公开工作年度报告",
            "发布时间: 2025-01-20 10:00",
            "==================== 正文 ====================",
            body,
        ]
    )
