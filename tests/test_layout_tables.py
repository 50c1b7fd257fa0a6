"""Pages laid out in tables: the article inside layout <table>s is read like any page; only data
tables become `| a | b |` rows.

The article is the real Shanghai page (corpus 031), whose six sections and 198 cells were transcribed
by hand (tests/expected/corpus_031.yaml); the page around it is built here the way government CMS
templates build theirs.
"""

from __future__ import annotations

import pytest

from audits.ingest import read_bytes
from audits.parse.report import parse
from tests.conftest import EXPECTED, LAYOUTS, SHARED, need_shared, parsed
from tests.test_parse_expected import _cells, _expected_cells, _load

PAGE_031 = "corpus/031_shanghai-szfbgt_2019.html"


def page_031() -> str:
    need_shared()
    return (SHARED / PAGE_031).read_text(encoding="utf-8")


def body_031() -> tuple[str, str, str]:
    """031 split into what comes before its <body> content, the content, and what follows."""
    page = page_031()
    start, end = page.index("<body>") + len("<body>"), page.index("</body>")
    return page[:start], page[start:end], page[end:]


def wrapped_in_one_cell() -> str:
    head, body, tail = body_031()
    return f'{head}<table width="100%" border="0"><tr><td align="left">{body}</td></tr></table>{tail}'


def cms_page() -> str:
    """The article in a cell beside a menu cell, inside a page of layout tables: header, a two-column
    body whose right column is itself a table (breadcrumb, article, tools), footer."""
    _, body, _ = body_031()
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<title>2019年上海市人民政府办公厅政府信息公开工作年度报告_政府信息公开年报_上海市人民政府</title>
<link rel="stylesheet" href="/css/main.css"></head>
<body>
<table width="1000" align="center" cellpadding="0" cellspacing="0" border="0" class="header">
  <tr><td width="600"><img src="/images/logo.png" alt=""></td><td class="search"><input type="text" name="q"> 站内搜索</td></tr>
</table>
<table width="1000" align="center" cellpadding="0" cellspacing="0" border="0">
  <tr>
    <td width="220" valign="top" class="left-nav">
      <div class="nav-title">政府信息公开</div>
      <ul>
        <li><a href="/zfxxgk/zn/">政府信息公开指南</a></li>
        <li><a href="/zfxxgk/zd/">政府信息公开制度</a></li>
        <li><a href="/zfxxgk/nb/">政府信息公开年报</a></li>
        <li><a href="/zfxxgk/fdzdgknr/">法定主动公开内容</a></li>
      </ul>
    </td>
    <td width="780" valign="top">
      <table width="100%" cellpadding="0" cellspacing="0" border="0">
        <tr><td class="position">当前位置：<a href="/">首页</a> &gt; <a href="/zfxxgk/">政府信息公开</a> &gt; <a href="/zfxxgk/nb/">政府信息公开年报</a></td></tr>
        <tr><td id="zoom" class="article">{body}</td></tr>
        <tr><td class="tools">【<a href="javascript:window.print()">打印本页</a>】【<a href="javascript:window.close()">关闭窗口</a>】</td></tr>
      </table>
    </td>
  </tr>
</table>
<table width="1000" align="center" class="footer"><tr><td>主办：上海市人民政府办公厅　网站标识码：3100000001</td></tr></table>
</body></html>
"""


def lines(page: str) -> list[str]:
    return read_bytes("page.html", page.encode("utf-8")).lines


EXPECTED_031 = EXPECTED / "corpus_031.yaml"


@pytest.mark.parametrize("make", [wrapped_in_one_cell, cms_page], ids=["one-cell", "cms"])
def test_article_in_layout_tables_keeps_its_sections_and_cells(make):
    doc = _load(EXPECTED_031)
    report = parse(read_bytes("page.html", make().encode("utf-8")), LAYOUTS)
    assert [(s.key, s.numeral) for s in report.sections] == [(s["key"], s["numeral"]) for s in doc["sections"]]
    got, want = _cells(report), _expected_cells(doc)
    assert len(want) == 198 and got == want
    assert (report.agency, report.report_year, str(report.published), report.template) == (
        doc["agency"], doc["report_year"], str(doc["published"]), doc["template"],
    )
    assert report.status == "parsed" and not report.problems


def test_one_cell_wrapping_reads_exactly_as_the_unwrapped_page():
    assert lines(wrapped_in_one_cell()) == lines(page_031())


def test_unwrapped_page_reads_as_transcribed():
    report = parsed(PAGE_031)
    assert _cells(report) == _expected_cells(_load(EXPECTED_031))
    assert len(report.sections) == 6


def test_cms_page_reads_the_article_between_its_menu_and_footer():
    article, page = lines(page_031()), lines(cms_page())
    start = page.index(article[1])  # the article's first line after the <title>
    assert page[start : start + len(article) - 1] == article[1:]
    menu = page[:start]
    assert "政府信息公开年报" in menu and "当前位置：首页 > 政府信息公开 > 政府信息公开年报" in menu
    assert page[-1] == "主办：上海市人民政府办公厅　网站标识码：3100000001"
    assert not [line for line in menu if line.startswith("|")]  # the menu cell is no table row


def test_data_tables_whose_cells_hold_paragraphs_stay_tables():
    # 031's cells each hold a <p>; the real Pingtan page (016) has cells of two <p>s ("商业" / "企业").
    rows = [line for line in lines(page_031()) if line.startswith("|")]
    assert "| 规章 | 13 | 13 | 524 |" in rows
    got = _cells(parsed("corpus/016_pingtan-quanqu_2024.html"))
    want = _expected_cells(_load(EXPECTED / "corpus_016.yaml"))  # transcribed from its text twin
    assert {key: got.get(key, "absent") for key in want} == want


def test_a_table_beside_a_heading_or_long_prose_is_layout_not_data():
    prose = "本机关坚持以公开为常态、不公开为例外，全面推进政务公开工作。" * 12
    page = f"<html><body><table><tr><td><h2>一、总体情况</h2></td><td><p>{prose}</p><p>第二段。</p></td></tr></table></body></html>"
    assert lines(page) == ["一、总体情况", prose, "第二段。"]
    data = "<html><body><table><tr><td><p>规章</p></td><td><p>13</p></td></tr></table></body></html>"
    assert lines(data) == ["| 规章 | 13 |"]
