"""The files people open: CSV for Excel in a Chinese locale (byte-order mark, no formula injection),
findings.xlsx with the same rows as findings.csv, and a run's files appearing as one set."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from audits.outputs import DOCUMENT_SHEET, FINDING_SHEET, write_table, write_workbook
from audits.vocabulary import AGENCY_KINDS, CATEGORIES, DECISIONS, SEVERITIES, STATUSES, TEMPLATES

openpyxl = pytest.importorskip("openpyxl")

BOM = b"\xef\xbb\xbf"


def test_csv_files_start_with_a_byte_order_mark(audited):
    for name in ("findings.csv", "documents.csv", "cells.csv"):
        data = (audited.out / name).read_bytes()
        assert data.startswith(BOM + b"source,"), name
        assert not data[3:].startswith(BOM)


def test_text_cells_that_would_start_a_formula_are_escaped(tmp_path):
    # OWASP's CSV injection list: = + - @ tab and carriage return
    raws = ["=HYPERLINK(\"http://x\",\"点击\")", "+1+1", "-2", "@SUM(A1)", "\t=1", "\r=1", "12", "表三", None, "a=b"]
    frame = pl.DataFrame({
        "source": ["r.txt"] * len(raws),
        "raw": raws,
        "value": [-2.0, 1.5, -2.0, None, 3.0, 0.0, 12.0, None, None, -0.5],
    })
    write_table(frame, tmp_path, "cells", ["source", "raw", "value"])
    with (tmp_path / "cells.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["raw"] for r in rows] == [
        "'=HYPERLINK(\"http://x\",\"点击\")", "'+1+1", "'-2", "'@SUM(A1)", "'\t=1", "'\r=1", "12", "表三", "", "a=b",
    ]
    # a number column is written as numbers, negative ones included: they are no formula
    assert [r["value"] for r in rows] == ["-2", "1.5", "-2", "", "3", "0", "12", "", "", "-0.5"]
    # Parquet keeps the values as they are
    assert pl.read_parquet(tmp_path / "cells.parquet")["raw"].to_list() == raws


def _unescape(value: str) -> str:
    return value[1:] if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r") else value


def _xlsx_rows(path: Path, sheet: str) -> tuple[list[str], list[list]]:
    workbook = openpyxl.load_workbook(path, read_only=False)
    ws = workbook[sheet]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    return values[0], values[1:]


def test_xlsx_has_the_rows_of_findings_csv(audited):
    path = audited.out / "findings.xlsx"
    header, rows = _xlsx_rows(path, "问题")
    assert header == [h for c, (h, _) in FINDING_SHEET.items() if c in audited.findings[0] or c == "rule_title"]
    assert len(rows) == len(audited.findings) > 0
    back = {zh: key for key, (zh, _) in FINDING_SHEET.items()}
    words = {"category": CATEGORIES, "severity": SEVERITIES, "decision_state": DECISIONS}
    for got, want in zip(rows, audited.findings):
        record = dict(zip((back[h] for h in header), got))
        for key, value in record.items():
            if key == "rule_title":
                continue
            expected = _unescape(want[key])
            if key in words:
                expected = words[key].get(expected, expected)
            shown = "" if value is None else str(value)
            assert shown == expected, (key, value, want[key])


def test_xlsx_documents_sheet(audited):
    header, rows = _xlsx_rows(audited.out / "findings.xlsx", "报告")
    assert header[:4] == ["来源文件", "机关", "机关类型", "地区"]
    assert len(rows) == len(audited.documents)
    back = {zh: key for key, (zh, _) in DOCUMENT_SHEET.items()}
    words = {"agency_kind": AGENCY_KINDS, "template": TEMPLATES, "status": STATUSES}
    for got, want in zip(rows, audited.documents):
        record = dict(zip((back[h] for h in header), got))
        assert record["source"] == _unescape(want["source"])
        for key, vocabulary in words.items():
            assert (record[key] or "") == vocabulary.get(want[key], want[key]), key
        published = record["published"]
        assert (published.date().isoformat() if isinstance(published, dt.datetime) else "") == want["published"]
        assert str(record["report_year"] or "") == want["report_year"]


def test_xlsx_sheets_have_filters_frozen_headers_and_widths(audited):
    workbook = openpyxl.load_workbook(audited.out / "findings.xlsx")
    assert workbook.sheetnames == ["问题", "报告"]
    for ws in workbook.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        tables = list(ws.tables.values())
        assert len(tables) == 1 and tables[0].autoFilter is not None and tables[0].ref.startswith("A1:")
        widths = [ws.column_dimensions[c.column_letter].width for c in ws[1]]
        assert all(w and w > 5 for w in widths), (ws.title, widths)
    ws = workbook["问题"]
    assert ws.column_dimensions["H"].width > ws.column_dimensions["C"].width  # 问题 wider than 报告年度


def test_xlsx_writes_text_as_text_never_a_formula(tmp_path):
    findings = pl.DataFrame({
        "source": ["r.txt"], "agency": ["=1+1"], "report_year": [2024], "rule_id": ["T4-SUM"], "category": ["table_identity"],
        "severity": ["error"], "message": ["=HYPERLINK(\"http://example.invalid\",\"点击\")"], "evidence": ["-2"],
    })
    documents = pl.DataFrame({"source": ["r.txt"], "agency": ["@x"], "report_year": [2024]})
    write_workbook(tmp_path / "findings.xlsx", findings, documents, {"T4-SUM": "行政复议、行政诉讼各结果之和等于总计"})
    ws = openpyxl.load_workbook(tmp_path / "findings.xlsx")["问题"]
    row = {ws.cell(1, i).value: ws.cell(2, i) for i in range(1, ws.max_column + 1)}
    for header in ("机关", "问题", "依据"):
        assert row[header].data_type == "s", header
    assert row["问题"].value == "=HYPERLINK(\"http://example.invalid\",\"点击\")"
    assert row["规则名称"].value == "行政复议、行政诉讼各结果之和等于总计"
    assert row["类别"].value == "表格勾稽" and row["级别"].value == "错误"


def test_a_run_writes_every_export_the_index_links(audited):
    import lxml.html

    index = lxml.html.fromstring((audited.out / "index.html").read_text(encoding="utf-8"))
    links = index.xpath('//p[contains(@class, "exports")]/a/@href')
    assert {"findings.xlsx", "findings.csv", "findings.parquet", "documents.csv", "documents.parquet", "cells.csv", "cells.parquet", "rules.html"} <= set(links)
    for link in links:
        assert (audited.out / link).is_file(), link
