"""Reviewer decisions on the pages, the index's roll-ups, unrecognised documents and hostile
bidirectional text, over a small batch built for it (tests/conftest.py `decided`):

- 柳州市交通运输局 (a.txt): the clean report with 表四 行政复议 broken (T4-SUM, an error) and a
  script fragment (SCRIPT, a warning); the error is dismissed (驳回) by 张三.
- 柳州市教育局 (b.txt): the clean report without its contact (CONTACT, an error), confirmed (确认) by 李四.
- an agency whose name holds U+202E (c.txt), otherwise the clean report: no finding.
- meeting notes (notes.txt): not a report, so no agency, no year, and a PARSE error.

Every expected value below follows from those four files and two decisions.
"""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import polars as pl
import pytest
import typer

from audits.cli import _fail_on
from audits.render import BIDI_CONTROLS, shown
from tests.conftest import BIDI_AGENCY, DISMISS_COMMENT, Decided


def page(decided: Decided, source: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring((decided.out / decided.doc(source)["html"]).read_text(encoding="utf-8"))


def index(decided: Decided) -> lxml.html.HtmlElement:
    return lxml.html.fromstring((decided.out / "index.html").read_text(encoding="utf-8"))


def text(el) -> str:
    return el.text_content()


def index_row(decided: Decided, source: str):
    doc = decided.doc(source)
    rows = [r for r in index(decided).xpath('//table[@id="reports"]/tbody/tr') if r.xpath("./td[1]/a/@href")[0].startswith(doc["html"] + "#")]
    assert len(rows) == 1
    return rows[0]


def cells(row) -> dict[str, str]:
    headers = ["机关", "地区", "年度", "结论", "错误", "警告", "提示", "问题规则", "审核意见"]
    return dict(zip(headers, (text(td).strip() for td in row.xpath("./td"))))


def test_decisions_are_columns_of_the_findings(decided):
    rows = {(Path(f["source"]).name, f["rule_id"]): f for f in decided.findings}
    assert set(rows) == {("a.txt", "T4-SUM"), ("a.txt", "SCRIPT"), ("b.txt", "CONTACT"), ("notes.txt", "PARSE")}
    dismissed, confirmed, open_ = rows[("a.txt", "T4-SUM")], rows[("b.txt", "CONTACT")], rows[("a.txt", "SCRIPT")]
    assert (dismissed["decision_state"], dismissed["decision_by"], dismissed["decision_comment"]) == ("dismissed", "张三", DISMISS_COMMENT)
    assert (confirmed["decision_state"], confirmed["decision_by"]) == ("confirmed", "李四")
    assert open_["decision_state"] == "" and open_["decision"] == ""
    assert dismissed["decision"].startswith("驳回（张三，2025-02-03）")


def test_dismissed_error_no_longer_counts_and_the_verdict_follows_the_rest(decided):
    section = page(decided, decided.dismissed).xpath('//section[contains(@class, "report")]')[0]
    # T4-SUM dismissed: the SCRIPT warning is what remains
    assert text(section.xpath('./h2/span[contains(@class, "badge")]')[0]) == "待核实"
    counts = [text(s) for s in section.xpath('./p[@class="counts"]/span')]
    assert counts == ["错误 0", "警告 1", "提示 0", "已驳回 1"]
    (div,) = section.xpath('.//div[@data-rule="T4-SUM"]')
    assert "dismissed" in div.get("class").split() and div.get("data-decision") == "dismissed"
    assert "已驳回" in text(div.xpath("./h3")[0])
    (decision,) = div.xpath('./p[contains(@class, "decision")]')
    assert "noprint" not in decision.get("class") and not decision.xpath('ancestor::*[contains(@class, "noprint")]')
    assert re.fullmatch(rf"审核意见：已驳回 · 张三 · 2025-02-03 09:15 · {DISMISS_COMMENT}（不计入错误、警告数和结论）", text(decision))
    (script,) = section.xpath('.//div[@data-rule="SCRIPT"]')
    assert script.get("data-decision") == "pending" and not script.xpath('./p[contains(@class, "decision")]')
    # the agency's own totals at the top of the page
    top = [text(s).strip() for s in page(decided, decided.dismissed).xpath('//article/p[@class="counts"]/span[contains(@class, "badge")]')]
    assert top == ["错误 0", "警告 1", "提示 0", "已驳回 1"]
    # the index, and documents.csv
    row = index_row(decided, decided.dismissed)
    assert row.get("data-verdict") == "待核实" and set(row.get("data-decisions").split()) == {"dismissed", "pending"}
    shown_cells = cells(row)
    assert (shown_cells["结论"], shown_cells["错误"], shown_cells["警告"], shown_cells["审核意见"]) == ("待核实", "0", "1", "已驳回 1")
    assert "T4-SUM" not in shown_cells["问题规则"] and "SCRIPT" in shown_cells["问题规则"]
    assert decided.doc(decided.dismissed)["verdict"] == "待核实"


def test_confirmed_error_is_shown_confirmed_and_still_counts(decided):
    section = page(decided, decided.confirmed).xpath('//section[contains(@class, "report")]')[0]
    assert text(section.xpath('./h2/span[contains(@class, "badge")]')[0]) == "需整改"
    (div,) = section.xpath('.//div[@data-rule="CONTACT"]')
    assert "confirmed" in div.get("class").split() and "已确认" in text(div.xpath("./h3")[0])
    assert text(div.xpath('./p[contains(@class, "decision")]')[0]) == "审核意见：已确认 · 李四 · 2025-02-04 10:00 · 已通知整改"
    shown_cells = cells(index_row(decided, decided.confirmed))
    assert (shown_cells["结论"], shown_cells["错误"], shown_cells["审核意见"]) == ("需整改", "1", "已确认 1")


def _table(doc, table_id: str) -> dict[str, list[str]]:
    return {text(tr[0]).strip(): [text(td).strip() for td in tr[1:]] for tr in doc.xpath(f'//table[@id="{table_id}"]//tr[td]')}


def test_rollups_by_region_and_category_leave_dismissed_findings_out(decided):
    doc = index(decided)
    # 柳州 (from the agencies' names): a.txt 待核实 (its error dismissed), b.txt 需整改 → 1 of 2 with an error;
    # 平潭: c.txt 合格; the notes have no agency, hence no region, and a PARSE error.
    assert _table(doc, "by-region") == {
        "广西壮族自治区 柳州市": ["2", "1", "1", "0", "0", "1", "50%"],
        "福建省 平潭": ["1", "0", "0", "1", "0", "0", "0%"],
        "（地区不详）": ["1", "0", "0", "0", "1", "1", "100%"],
    }
    # 类别: 错误, 警告, reports with an error of it, their share of the 4 reports; no 表格勾稽 (dismissed)
    assert _table(doc, "by-category") == {
        "联系方式": ["1", "0", "1", "25%"],
        "内容完整与安全": ["0", "1", "0", "0%"],
        "文件读取": ["1", "0", "1", "25%"],
    }
    bars = {text(b.xpath('./span[@class="bar-label"]')[0]): text(b[-1]) for b in doc.xpath('//div[@class="chart"]/div[@class="bar"]')}
    assert bars == {"联系方式": "1", "内容完整与安全": "1", "文件读取": "1"}
    by_rule = _table(doc, "by-rule")
    assert by_rule["T4-SUM"][2:] == ["0", "1"] and by_rule["CONTACT"][2:] == ["1", "0"]


def test_unrecognised_document_is_named_by_its_file(decided):
    shown_cells = cells(index_row(decided, decided.notes))
    assert shown_cells["机关"] == "未识别机关（notes.txt）"
    assert shown_cells["年度"] == "未识别" and shown_cells["结论"] == "无法判断"
    agency = page(decided, decided.notes)
    assert text(agency.xpath("//h1")[0]) == "未识别机关（notes.txt）"
    assert "None" not in agency.text_content() and "None" not in index(decided).text_content()
    assert text(agency.xpath('//section[contains(@class, "report")]/h2')[0]).startswith("年度未识别的报告")


def test_bidi_controls_cannot_reorder_a_page(decided):
    assert decided.doc(decided.bidi)["agency"] == BIDI_AGENCY  # the data files keep the name as printed
    for path in decided.out.glob("*.html"):
        html = path.read_text(encoding="utf-8")
        assert not BIDI_CONTROLS.search(html), path.name
    agency = page(decided, decided.bidi)
    h1 = agency.xpath("//h1")[0]
    assert h1.xpath("./bdi") and text(h1) == "平潭综合实验区〔U+202E〕局育教"
    assert "平潭综合实验区〔U+202E〕局育教" in agency.findtext(".//title")
    assert cells(index_row(decided, decided.bidi))["机关"] == "平潭综合实验区〔U+202E〕局育教"


@pytest.mark.parametrize("control", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"])
def test_every_bidi_control_is_shown_as_a_mark(control):
    from markupsafe import Markup

    assert shown(f"甲{control}乙") == f"甲〔U+{ord(control):04X}〕乙"
    marked = shown(Markup(f"<td>甲{control}</td>"))
    assert isinstance(marked, Markup) and str(marked) == f"<td>甲〔U+{ord(control):04X}〕</td>"
    assert shown("甲乙") == "甲乙" and shown(3) == 3



def test_rules_link_to_their_entry_in_the_catalogue(decided):
    catalogue = lxml.html.fromstring((decided.out / "rules.html").read_text(encoding="utf-8"))
    entries = set(catalogue.xpath('//div[@class="finding"]/@id'))
    links = index(decided).xpath('//table[@id="reports"]//span[@class="rule"]/a/@href') + page(decided, decided.dismissed).xpath("//h3//a/@href")
    assert {"rules.html#SCRIPT", "rules.html#CONTACT", "rules.html#T4-SUM"} <= set(links)
    for link in links:
        name, anchor = link.split("#")
        assert name == "rules.html" and anchor in entries


def test_fail_on_leaves_dismissed_findings_out(decided):
    """`--fail-on error` exits 3 for the confirmed CONTACT error and the unreadable notes, never for
    the dismissed T4-SUM error: with only that one left, the run passes."""
    findings = pl.read_parquet(decided.out / "findings.parquet")
    with pytest.raises(typer.Exit) as exited:
        _fail_on("error", findings)
    assert exited.value.exit_code == 3
    dismissed = findings.filter(pl.col("decision_state") == "dismissed")
    assert dismissed.select("rule_id", "severity").rows() == [("T4-SUM", "error")]
    _fail_on("error", dismissed)  # returns: nothing left that counts
