"""Decoding: Big5 without a declaration, a server's charset, mojibake said aloud, XHTML, UTF-16
without a BOM. The texts are the real reports under ../shared, re-encoded; what must come back is
what was encoded.
"""

from __future__ import annotations

import re

import pytest

from audits.ingest import decode, read_bytes, sniff
from audits.normalize import strip_pinyin
from audits.parse.report import parse
from tests.conftest import LAYOUTS, SHARED, need_shared, parsed
from tests.test_bad_input import report_page

SEED_004 = "seeds/004_4bb79cff4f3b4f13.txt"
SEED_000 = "seeds/000_6138bd5dad981167.txt"
PAGE_031 = "corpus/031_shanghai-szfbgt_2019.html"
PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def real(relative: str) -> str:
    need_shared()
    return (SHARED / relative).read_text(encoding="utf-8")


def cells(report) -> dict:
    return {(c.table, c.row, c.col): (c.value, c.flag) for c in report.cells}


# Big5 ------------------------------------------------------------------------------------------


def seed_004_in_big5() -> bytes:
    """Seed 004 (traditional script) as a Big5 file. Big5 has no tone marks and no NBSP, so the
    pinyin annotations go and NBSPs become spaces; the few characters Big5 lacks (the simplified
    spam line) become '?', as a Big5 export writes them."""
    return strip_pinyin(real(SEED_004)).replace("\xa0", " ").encode("big5", errors="replace")


def test_big5_without_declaration_reads_exactly():
    data = seed_004_in_big5()
    # What the reader used to take it for: GB18030 decodes it, into private-use characters.
    assert len(PRIVATE_USE.findall(data.decode("gb18030"))) > 100
    text = read_bytes("004.txt", data)
    assert text.encoding == "big5hkscs" and text.problems == ()
    assert text.lines == data.decode("big5").splitlines()
    assert "西藏自治區科學技術廳2023年政府信息公開工作年度報告" in text.lines[0]


def test_big5_seed_004_parses_to_the_cells_of_the_original():
    report = parse(read_bytes("004.txt", seed_004_in_big5()), LAYOUTS)
    original = parsed(SEED_004)  # checked against tests/expected/seed_004.yaml elsewhere
    assert (report.agency, report.report_year, report.template) == (original.agency, original.report_year, original.template)
    assert report.agency == "西藏自治区科学技术厅"
    assert cells(report) == cells(original)


def test_big5_page_declaring_gb2312_is_read_as_big5_and_the_declaration_named():
    page = f'<html><head><meta charset="gb2312"></head><body><pre>{strip_pinyin(real(SEED_004))}</pre></body></html>'
    text, encoding, problems = decode(page.encode("big5", errors="replace"))
    assert encoding == "big5hkscs" and "西藏自治區科學技術廳" in text
    assert problems == ("网页声明的编码 gb18030 与内容不符，已自动识别编码",)


# A server's charset (HTTP Content-Type) ------------------------------------------------------------


def test_declared_charset_reads_what_sniffing_alone_misreads():
    # A table label alone is too short to tell Big5 from GB18030; the server's word settles it.
    data = "| 規章 | 0 | 0 | 0 |".encode("big5")
    assert decode(data) == ("| 砏彻 | 0 | 0 | 0 |", "gb18030", ())
    assert decode(data, "big5") == ("| 規章 | 0 | 0 | 0 |", "big5hkscs", ())
    assert read_bytes("x.txt", data, declared="Big5").lines == ["| 規章 | 0 | 0 | 0 |"]


def test_declared_charset_comes_before_the_page_own_declaration():
    data = report_page("utf-8").encode("gbk")  # a GBK page whose <meta> says UTF-8
    assert decode(data, "gbk")[1:] == ("gb18030", ())
    assert read_bytes("x.html", data, declared="gbk").lines == read_bytes("x.html", report_page("utf-8").encode("utf-8")).lines


def test_wrong_declared_charset_is_named_and_the_text_still_read():
    data = real(SEED_000).encode("gb18030")
    text, encoding, problems = decode(data, "iso-8859-1")  # a server's default, over a GBK file
    assert (text, encoding) == (real(SEED_000), "gb18030")
    assert problems == ("服务器声明的编码 iso-8859-1 与内容不符，已自动识别编码",)
    assert decode(data, "no-such-charset")[2] == ("服务器声明的编码 no-such-charset 不是可识别的编码，已自动识别编码",)


# Mojibake left after decoding ----------------------------------------------------------------------


def test_a_paragraph_in_another_encoding_is_a_problem_not_silence():
    page = real(PAGE_031)
    start = page.index("2019年，上海市人民政府办公厅坚持")
    data = page[:start].encode("utf-8") + page[start : start + 300].encode("gb18030") + page[start + 300 :].encode("utf-8")
    text = read_bytes("031.html", data)
    # Read as the UTF-8 it mostly is, the pasted paragraph replaced, and said so.
    assert text.encoding == "utf-8" and len(text.problems) == 1
    assert text.problems[0].startswith("按 utf-8 解码后仍有乱码（如“") and text.problems[0].endswith("”），部分文字可能读错")
    report = parse(text, LAYOUTS)
    assert report.status == "parsed" and report.problems == list(text.problems)
    assert cells(report) == cells(parsed(PAGE_031))


def test_mojibake_in_the_file_itself_is_a_problem():
    # A page saved after a wrong round trip: UTF-8's replacement character read as GBK, twice.
    data = real(SEED_000).replace("政府信息公开工作年度报告", "政府信息公开锟斤拷锟斤拷年度报告", 1).encode("utf-8")
    text, encoding, problems = decode(data)
    assert encoding == "utf-8" and text == data.decode("utf-8")
    assert problems == ("按 utf-8 解码后仍有乱码（如“政府信息公开锟斤拷锟斤拷年度报告”），部分文字可能读错",)


def test_gbk_file_cut_inside_a_character_stays_gbk_and_says_so():
    page = real(PAGE_031)
    data = page.encode("gb18030")
    cut = data[: len(page[: page.index("六、其他需要报告的事项")].encode("gb18030")) + 1]  # half of 六
    for declared in (None, "iso-8859-1"):  # a server's default charset besides
        text, encoding, problems = decode(cut, declared)
        assert (text, encoding) == (cut.decode("gb18030", errors="replace"), "gb18030")
        assert problems[-1] == "按 gb18030 解码后仍有乱码（如“/p><p>�”），部分文字可能读错"  # the page is cut after "</p><p>"
        server = () if declared is None else ("服务器声明的编码 iso-8859-1 与内容不符，已自动识别编码",)
        assert problems[:-1] == (*server, "网页声明的编码 utf-8 与内容不符，已自动识别编码")  # its <meta> says UTF-8


@pytest.mark.parametrize("relative", ["seeds/000_6138bd5dad981167.txt", SEED_004, PAGE_031, "corpus/016_pingtan-quanqu_2024.html"])
def test_clean_reports_have_no_mojibake_problem(relative):
    for data in (real(relative).encode("utf-8"), real(relative).encode("gb18030")):
        text, _, problems = decode(data)
        assert text == real(relative) and not [p for p in problems if "乱码" in p]


# XHTML -----------------------------------------------------------------------------------------------


def test_xhtml_with_an_xml_declaration_is_read():
    page = real(PAGE_031)
    xhtml = '<?xml version="1.0" encoding="UTF-8"?>\n' + page.replace("<html ", '<html xmlns="http://www.w3.org/1999/xhtml" ', 1)
    text = read_bytes("031.xhtml", xhtml.encode("utf-8"))
    assert text.problems == () and text.format == "html"
    assert text.lines == read_bytes("031.html", page.encode("utf-8")).lines


def test_xml_declaration_names_the_encoding_of_a_page_without_meta():
    page = report_page(None)
    data = ('<?xml version="1.0" encoding="gb2312"?>\n' + page).encode("gbk")
    assert decode(data)[1:] == ("gb18030", ())
    assert read_bytes("x.xhtml", data).lines == read_bytes("x.html", page.encode("utf-8")).lines


# UTF-16 without a BOM ----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("relative", [SEED_000, SEED_004, PAGE_031])
def test_utf16_without_bom_is_read_not_taken_for_binary(relative, order):
    original = real(relative)
    data = original.encode(order)
    assert sniff(data) != "binary"
    text = read_bytes(relative, data)
    assert (text.encoding, text.problems) == (order, ())
    assert text.lines == read_bytes(relative, original.encode("utf-8")).lines


def test_utf16_seed_parses_to_the_same_cells():
    report = parse(read_bytes("000.txt", real(SEED_000).encode("utf-16-le")), LAYOUTS)
    assert cells(report) == cells(parsed(SEED_000))
