"""Variants with known content: every cell comes back exactly.

Each hand-transcribed seed (tests/expected/seed_*.yaml) is re-rendered in the unified template's
table shape (rowspan/colspan, merged header cells) as UTF-8 HTML, as GBK HTML with no declared
charset, as DOCX with merged cells and in traditional script; and again with distinct non-zero values
in every cell that keep the table identities. Each variant is read (`read_bytes`) and parsed, and
every cell (value and blank), the agency, the year, the publication date, the template and the six
sections must be exactly what the variant was rendered from. See tests/variants.py.
"""

from __future__ import annotations

import io
import re
import zipfile
from functools import lru_cache

import pytest

from audits.ingest import read_bytes
from audits.parse.report import parse
from tests.conftest import EXPECTED, LAYOUTS
from tests.variants import (
    CARRIED_FORWARD,
    CARRIED_OVER,
    NEW_RECEIVED,
    TOTAL_PROCESSED,
    VARIANTS,
    KnownReport,
    Variant,
    load_seed,
    report_blocks,
    to_html,
    with_nonzero_values,
)

SEEDS = sorted(EXPECTED.glob("seed_*.yaml"))
VALUE_SETS = ["seed", "nonzero"]


@lru_cache(maxsize=None)
def known(seed: str, values: str) -> KnownReport:
    report = load_seed(EXPECTED / f"{seed}.yaml")
    if values == "nonzero":
        report = with_nonzero_values(report, LAYOUTS[report.template])
    return report


@lru_cache(maxsize=None)
def parsed_variant(seed: str, variant: Variant, values: str):
    """The variant rendered to bytes, read and parsed (shared by the tests of one variant)."""
    report = known(seed, values)
    data = variant.render(report, LAYOUTS[report.template])
    return parse(read_bytes(f"{report.name}{variant.suffix}", data), LAYOUTS)


def _as_float(value):
    return None if value is None else float(value)


# Round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUE_SETS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
@pytest.mark.parametrize("seed", [p.stem for p in SEEDS])
def test_every_cell_comes_back_exactly(seed, variant, values):
    report = known(seed, values)
    parsed = parsed_variant(seed, variant, values)
    got = {(c.table, c.row, c.col): c.value for c in parsed.cells}
    want = {key: _as_float(value) for key, value in report.cells.items()}
    wrong = {key: (got.get(key, "absent"), value) for key, value in want.items() if got.get(key, "absent") != value}
    assert not wrong, f"{len(wrong)} cells differ (got, expected): {dict(list(wrong.items())[:12])}"
    assert set(got) == set(want), f"cells the variant does not print: {sorted(set(got) - set(want))[:10]}"
    blanks = {(c.table, c.row, c.col) for c in parsed.cells if c.flag == "blank"}
    assert blanks == {key for key, value in want.items() if value is None}


@pytest.mark.parametrize("values", VALUE_SETS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
@pytest.mark.parametrize("seed", [p.stem for p in SEEDS])
def test_header_fields_and_sections_come_back(seed, variant, values):
    report = known(seed, values)
    parsed = parsed_variant(seed, variant, values)
    layout = LAYOUTS[report.template]
    assert (parsed.agency, parsed.report_year, parsed.published, parsed.template) == (
        report.agency, report.report_year, report.published, report.template,
    )
    assert [(s.key, s.numeral) for s in parsed.sections] == [(s.key, s.numeral) for s in layout.sections]
    assert parsed.tables_found == ("active", "applications", "review_litigation")
    assert parsed.status == "parsed" and not parsed.problems


# The variants are what they claim to be -------------------------------------------------------


@pytest.mark.parametrize("seed", [p.stem for p in SEEDS])
def test_nonzero_values_keep_every_identity(seed):
    report = known(seed, "nonzero")
    spec = LAYOUTS[report.template].tables
    cells = report.cells
    template_cells = {
        (name, row.key, col) for name, table in spec.items() for row in table.rows for col in table.row_cols(row)
    }
    assert set(cells) == template_cells
    assert all(value not in (None, 0) for value in cells.values())
    for name in ("applications", "review_litigation"):
        table = spec[name]
        values = [cells[(name, row.key, col)] for row in table.rows for col in table.cols]
        assert len(set(values)) == len(values), f"{name}: values repeat"
        for row in table.rows:
            parts = sum(cells[(name, row.key, col)] for col in table.row_sum.parts)
            assert parts == cells[(name, row.key, table.row_sum.total)], (name, row.key)
    applications = spec["applications"]
    leaves = [row.key for row in applications.rows if row.leaf]
    for col in applications.cols:
        def at(row):
            return cells[("applications", row, col)]

        assert at(TOTAL_PROCESSED) == sum(at(row) for row in leaves), col
        assert at(NEW_RECEIVED) + at(CARRIED_OVER) == at(TOTAL_PROCESSED) + at(CARRIED_FORWARD), col


def test_seed_003_is_the_2019_template_with_a_single_other_row():
    report = known("seed_003", "seed")
    rows = {row for table, row, _ in report.cells if table == "applications"}
    assert report.template == "2019" and len(rows) == 23
    assert "other" in rows and "other_misc" not in rows


@pytest.mark.parametrize("seed", [p.stem for p in SEEDS])
def test_blank_cells_render_as_empty_td(seed):
    report = known(seed, "seed")
    html = to_html(report_blocks(report, LAYOUTS[report.template]))
    blanks = sum(1 for value in report.cells.values() if value is None)
    assert html.count("<td></td>") == blanks


def test_html_table_three_has_the_template_spans():
    report = known("seed_000", "seed")
    html = to_html(report_blocks(report, LAYOUTS["2021"]))
    assert re.search(r'<td rowspan="3" colspan="3">（本列数据的勾稽关系为', html)
    assert '<td colspan="7">申请人情况</td>' in html
    assert '<td colspan="5">法人或其他组织</td>' in html
    assert '<td rowspan="22">三、本年度办理结果</td>' in html  # 21 result rows + (七)总计
    assert '<td rowspan="8">(三)不予公开</td>' in html
    assert '<td rowspan="3">(六)其他处理</td>' in html
    assert '<td colspan="5">未经复议直接起诉</td>' in html
    assert html.count('<td rowspan="2">') == 2 + 5  # 自然人, 总计; table 四's five 行政复议 columns


def test_html_2019_table_three_has_a_single_other_row():
    report = known("seed_003", "seed")
    html = to_html(report_blocks(report, LAYOUTS["2019"]))
    assert '<td rowspan="20">三、本年度办理结果</td>' in html
    assert '<td colspan="2">(六)其他处理</td>' in html
    assert "第二十条第（九）项" in html


def test_gbk_variant_is_gbk_and_declares_no_charset():
    variant = next(v for v in VARIANTS if v.name == "html_gbk_undeclared")
    data = variant.render(known("seed_000", "seed"), LAYOUTS["2021"])
    assert b"charset" not in data.lower()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert "柳州市科学技术局" in data.decode("gbk")


def test_big5_variant_is_big5_and_declares_no_charset():
    variant = next(v for v in VARIANTS if v.name == "big5_undeclared")
    data = variant.render(known("seed_004", "seed"), LAYOUTS["2021"])
    assert b"charset" not in data.lower()
    assert "西藏自治區科學技術廳2023年政府信息公開工作年度報告" in data.decode("big5")


def test_utf16_variant_has_no_bom_and_xhtml_variant_an_xml_declaration():
    report = known("seed_000", "seed")
    utf16, xhtml = (v.render(report, LAYOUTS["2021"]) for v in VARIANTS if v.name in ("utf16_no_bom", "xhtml"))
    assert not utf16.startswith((b"\xff\xfe", b"\xfe\xff")) and utf16.decode("utf-16-le").startswith("<!DOCTYPE html>")
    assert xhtml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">')


def test_traditional_variant_is_in_traditional_script():
    variant = next(v for v in VARIANTS if v.name == "traditional")
    text = variant.render(known("seed_004", "seed"), LAYOUTS["2021"]).decode("utf-8")
    assert "西藏自治區科學技術廳2023年政府信息公開工作年度報告" in text
    assert "收到和處理政府信息公開申請情況" in text


def test_docx_variant_has_merged_cells():
    variant = next(v for v in VARIANTS if v.name == "docx")
    data = variant.render(known("seed_000", "seed"), LAYOUTS["2021"])
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode("utf-8")
    assert '<w:gridSpan w:val="7"/>' in xml  # 申请人情况
    assert '<w:gridSpan w:val="5"/>' in xml  # 法人或其他组织, 未经复议直接起诉, 复议后起诉
    assert '<w:vMerge w:val="restart"/>' in xml and "<w:vMerge/>" in xml
