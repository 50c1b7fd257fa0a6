"""Findings on real reports, asserted from reading them (domain.md §5, tests/expected/corpus_defects.md).

At severity error or warning, each seed has exactly the categories listed here and no others of
the nine the issue names; each with its rule id and evidence.
"""

from __future__ import annotations

import polars as pl
import pytest


NINE = {
    "table_identity", "table_completeness", "mandatory_section", "date_range", "contact_info",
    "claim_contradiction", "timeliness", "content_integrity", "template_version",
}


@pytest.fixture(scope="module")
def findings(audited) -> pl.DataFrame:
    found = pl.read_parquet(audited.out / "findings.parquet").filter(pl.col("source") != audited.hostile)
    return found.with_columns(pl.col("source").map_elements(lambda s: s.split("/")[-1], return_dtype=pl.Utf8).alias("file"))


def _of(findings: pl.DataFrame, file_prefix: str) -> pl.DataFrame:
    return findings.filter(pl.col("file").str.starts_with(file_prefix) & pl.col("severity").is_in(["error", "warning"]))


def _rules(frame: pl.DataFrame) -> set[tuple[str, str]]:
    return set(frame.select("category", "rule_id").iter_rows())


SEEDS = {
    "000_": {("mandatory_section", "SEC-NUMBERING"), ("date_range", "PERIOD")},
    "001_": {("date_range", "PERIOD"), ("contact_info", "CONTACT")},
    "002_": set(),
    "003_": {("date_range", "PERIOD"), ("contact_info", "CONTACT"), ("timeliness", "TIME-DEADLINE"), ("table_completeness", "CELL-BLANK")},
    "004_": {("contact_info", "CONTACT"), ("content_integrity", "SPAM"), ("content_integrity", "NEGATION-LOST"), ("table_completeness", "CELL-BLANK")},
}


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_seed_categories_at_error_or_warning(findings, seed):
    got = _of(findings.filter(pl.col("source").str.contains("/seeds/")), seed)
    assert _rules(got.filter(pl.col("category").is_in(NINE))) == SEEDS[seed]


def test_seed_evidence(findings):
    seeds = findings.filter(pl.col("source").str.contains("/seeds/"))
    def one(prefix, rule):
        rows = _of(seeds, prefix).filter(pl.col("rule_id") == rule)
        assert rows.height >= 1, (prefix, rule)
        return rows.row(0, named=True)
    assert "自202211日起至1231日止" in one("000_", "PERIOD")["evidence"]
    assert "印为“1”，应为“四”" in one("000_", "SEC-NUMBERING")["message"]
    assert one("003_", "TIME-DEADLINE")["message"] == "发布于 2021-02-10，晚于期限 2021-01-31 共 10 天"
    assert one("003_", "CELL-BLANK")["message"].startswith("表四有 12 个单元格留空")
    assert "第469行" in one("004_", "SPAM")["evidence"]
    assert "本年度发生因信息公开审查不严而泄漏国家秘密的事件" in one("004_", "NEGATION-LOST")["evidence"]
    blanks = _of(seeds, "004_").filter(pl.col("rule_id") == "CELL-BLANK")["message"].to_list()
    assert sorted(m.split("：")[0] for m in blanks) == ["表三有 150 个单元格留空", "表四有 12 个单元格留空"]


def test_hongze_2023_identities_and_mixed_template(findings):
    got = _of(findings, "hongze_2023")
    assert _rules(got) == {("table_identity", "T4-SUM"), ("template_version", "TPL-MIXED")}
    evidence = sorted(got.filter(pl.col("rule_id") == "T4-SUM")["evidence"].to_list())
    assert evidence[0].startswith("10 + 1 + 0 + 0 ≠ 0")
    assert evidence[1].startswith("5 + 0 + 0 + 0 ≠ 0")


@pytest.mark.parametrize(
    "prefix,rule,severity,text",
    [
        ("012_", "T3-LEAFSUM", "error", "办理结果各项之和 27 ≠（七）总计 21"),
        ("012_", "T3-LEAFSUM", "error", "办理结果各项之和 26 ≠（七）总计 20"),
        ("023_", "T4-SUM", "error", "1 + 0 + 0 + 0 ≠ 总计 0"),
        ("023_", "CLAIM-REVIEW-COUNT", "error", "正文称行政复议 1 件，表四行政复议总计为 0"),
        ("018_", "CLAIM-DENIED", "error", "正文称不予公开 2 件，表三（三）不予公开合计为 1"),
        ("014_", "CLAIM-APPLICATIONS-RECEIVED", "warning", "正文称收到申请 75 件，表三本年新收总计为 74"),
        ("hongze_2024", "CLAIM-APPLICATIONS-RECEIVED", "warning", "正文称收到申请 17 件，表三本年新收总计为 95"),
        ("025_", "SEC-MISSING", "error", "缺少：六、其他需要报告的事项"),
        ("020_", "ROW-MISSING", "error", "缺少 1 行：规章"),
    ],
)
def test_corpus_defects_found_by_reading(findings, prefix, rule, severity, text):
    rows = _of(findings, prefix).filter((pl.col("rule_id") == rule) & (pl.col("severity") == severity))
    assert any(text in m for m in rows["message"].to_list()), rows["message"].to_list()


def test_corpus_reports_that_agree_have_no_claim_findings(findings):
    # 022 says "未收到因政府信息公开提出的行政复议、行政诉讼的申请" — about litigation, not applications
    # (Text against the tables: PROSE-SUM, the prose's own arithmetic, finds 001's 5+1+7+12+51 > 61.)
    for prefix in ("001_", "004_", "007_", "010_", "013_", "016_", "017_", "022_", "027_", "030_"):
        claims = _of(findings, prefix).filter((pl.col("category") == "claim_contradiction") & pl.col("rule_id").str.starts_with("CLAIM-"))
        assert claims.is_empty(), prefix


def test_a_report_from_before_the_unified_format_is_not_held_to_it(findings, audited):
    # 平潭公安局 2018 (read): the 2008 条例's parts (概述, 收费及减免, …) and no unified tables
    doc = next(d for d in audited.documents if d["source"].endswith("107_pingtan-gaj_2018.txt"))
    assert (doc["template"], doc["report_year"], doc["status"]) == ("pre2019", "2018", "parsed")
    mine = findings.filter(pl.col("file") == "107_pingtan-gaj_2018.txt")
    assert mine.select("rule_id", "category", "severity").rows() == [("TPL-EARLIER", "template_version", "info")]


def test_page_and_crawler_text_of_one_report_agree(audited, findings):
    # corpus 016 as its page and as crawler text: the same cells (the text's run-together table 二
    # settled), the same findings (neither prints a contact; both lack a 落款).
    def of(suffix):
        got = findings.filter(pl.col("file") == f"016_pingtan-quanqu_2024.{suffix}")
        return sorted(got.select("rule_id", "severity", "message").iter_rows())

    assert of("txt") == of("html") and ("CONTACT", "error", "报告未提供电话、电子邮箱或通信地址") in of("txt")

    def cells(suffix):
        return {(c["table"], c["row"], c["col"]): (c["value"], c["flag"]) for c in audited.cells if c["source"].endswith(f"016_pingtan-quanqu_2024.{suffix}")}

    assert cells("txt") == cells("html") and len(cells("txt")) == 200


def test_table_digits_give_no_contact(findings):
    # corpus 017 prints no contact; "15130000154" in its table is not a mobile number
    assert _rules(_of(findings, "017_").filter(pl.col("rule_id") == "CONTACT")) == {("contact_info", "CONTACT")}


def test_cross_year_findings_say_when_they_rest_on_a_guess(audited, findings):
    # A cross-year finding whose cells (this year's or last year's) are flagged ambiguous is a warning
    # that names the guess; in this batch the 2022 report settles 2021's 现行有效 and no X-VALID is
    # left on a guess ("698 ≠ 65 + 88 − 55" and "46 ≠ 440 + 584 − 55" were).
    docs = {d["source"]: d for d in audited.documents}
    by_year = {(d["agency_id"], d["report_year"]): d["source"] for d in audited.documents}
    flags = {(c["source"], c["table"], c["row"], c["col"]): c["flag"] for c in audited.cells}
    cross = findings.filter(pl.col("category") == "cross_year")
    assert cross.height >= 1
    for row in cross.iter_rows(named=True):
        doc = docs[row["source"]]
        previous = by_year.get((doc["agency_id"], str(int(doc["report_year"]) - 1)))
        guessed = False
        for key in row["cells"].split(";"):
            source = previous if key.startswith("上年.") else row["source"]
            guessed |= flags.get((source, *key.removeprefix("上年.").split(".")), "") == "ambiguous"
        if guessed:
            assert row["severity"] == "warning" and "推测拆分" in row["evidence"], row
    messages = cross["message"].to_list()
    assert not any("上年 65 + 制发 88" in m or "现行有效 46 ≠" in m for m in messages), messages
