"""What the parser extracts for the statement rules: the statistics period and the contacts, read
only from the report's own text (not the crawler's header, the page's chrome or a table's digits)."""

from __future__ import annotations

import pytest

from audits.ingest import read_bytes
from audits.parse.report import parse, period_value
from tests.conftest import LAYOUTS, need_shared, parsed
from tests.crawler import crawler_report


@pytest.mark.parametrize(
    "sentence,value",
    [
        ("本年报所列数据的统计期限自2019年1月1日起至2019年12月31日。", "2019-01-01/2019-12-31"),
        ("本报告所列数据统计期限为二〇二三年一月一日至二〇二三年十二月三十一日。", "2023-01-01/2023-12-31"),
        ("本报告所列数据统计期限为二○二三年一月一日至二○二三年十二月三十一日。", "2023-01-01/2023-12-31"),  # ○ for 〇
        ("本报告统计期限：2023.1.1-2023.12.31。", "2023-01-01/2023-12-31"),
        ("本报告所列数据统计期限为2024年1月至6月。", "2024-01-01/2024-06-30"),  # June has 30 days
        ("本报告所列数据统计期限为2024年2月1日至2月。", "2024-02-01/2024-02-29"),  # a leap year
        ("本报告所列数据统计期限为2023年1月1日至12月31日。", "2023-01-01/2023-12-31"),
        ("所列数据统计期限为2023年度。", "2023-01-01/2023-12-31"),
        ("本报告所列数据的统计期限自202211日起至1231日止。", "unreadable"),  # seed 000: 年/月 lost
    ],
)
def test_period_value(sentence, value):
    assert period_value(sentence) == value


def test_period_words_without_dates_are_no_statement():
    # corpus 025 says "并附相关数据统计表" before its period statement: no dates, no statement; the
    # statement after it is the one read (it used to be judged 残缺 because of the first).
    need_shared()
    periods = [s for s in parsed("corpus/025_pingtan-zrzy_2019.txt").snippets if s.kind == "period"]
    assert [s.value for s in periods] == ["2019-01-01/2019-12-31"]


def _snippets(text: str):
    report = parse(read_bytes("built.txt", text.encode("utf-8")), LAYOUTS)
    return report, {(s.kind, s.value) for s in report.snippets if s.kind in ("phone", "email", "address")}


def test_contact_in_the_crawler_header_does_not_count():
    text = crawler_report().replace("发布时间: 2025-01-20 10:00", "发布时间: 2025-01-20 10:00\n联系电话: 0571-87654321\n原文链接: https://example.gov.cn/a.htm")
    report, contacts = _snippets(text)
    assert contacts == set()
    assert report.body[0] == 6  # the body line, after the four header lines and the crawler's separator


def test_contact_in_the_report_counts():
    text = crawler_report().replace("编制。", "编制。如有疑问，请联系本局办公室，电话：0571-87654321。")
    _, contacts = _snippets(text)
    assert contacts == {("phone", "0571-87654321")}


def test_table_digits_are_no_phone_number():
    # 一、本年新收 "15130000154" (151/3/0/0/0/0/154) has the shape of a mobile number
    text = crawler_report({"new_received": "15130000154", "granted": "15130000154", "total_processed": "15130000154"})
    _, contacts = _snippets(text)
    assert contacts == set()
    # a mobile number the text introduces as one counts
    text = crawler_report().replace("编制。", "编制。联系人手机13912345678。")
    assert _snippets(text)[1] == {("phone", "13912345678")}


def test_page_and_crawler_text_find_the_same_contacts():
    need_shared()
    page, text = parsed("corpus/016_pingtan-quanqu_2024.html"), parsed("corpus/016_pingtan-quanqu_2024.txt")
    found = lambda r: {(s.kind, s.value) for s in r.snippets if s.kind != "period"}  # noqa: E731
    assert found(page) == found(text) == set()
    # the crawler header's 原文链接 is not the report's
    assert page.body[0] == 69 and text.body[0] == 10
