"""Every cell and header field of real reports against values transcribed by hand (tests/expected).

The expected files were written by reading the documents, never from the parser's output; see
tests/expected/README.md.
"""

from __future__ import annotations

import datetime as dt

import pytest
from ruamel.yaml import YAML

from audits.normalize import normalise_lines
from tests.conftest import EXPECTED, parsed

EXPECTED_FILES = sorted(EXPECTED.glob("*.yaml"))


def _load(path):
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _cells(report) -> dict[tuple[str, str, str], float | None]:
    return {(c.table, c.row, c.col): c.value for c in report.cells}


def _expected_cells(doc) -> dict[tuple[str, str, str], float | None]:
    return {
        (table, row, col): (None if value is None else float(value))
        for table, rows in doc["cells"].items()
        for row, cols in rows.items()
        for col, value in cols.items()
    }


@pytest.mark.parametrize("path", EXPECTED_FILES, ids=lambda p: p.stem)
def test_cells_match_transcription(path):
    doc = _load(path)
    report = parsed(doc["source"])
    got = _cells(report)
    want = _expected_cells(doc)
    wrong = {k: (got.get(k, "absent"), v) for k, v in want.items() if got.get(k, "absent") != v}
    assert not wrong, f"{len(wrong)} cells differ (got, expected): {dict(list(wrong.items())[:12])}"
    if doc["complete"]:
        extra = set(got) - set(want)
        assert not extra, f"cells the report does not print: {sorted(extra)[:10]}"


@pytest.mark.parametrize("path", EXPECTED_FILES, ids=lambda p: p.stem)
def test_header_fields_match_transcription(path):
    doc = _load(path)
    report = parsed(doc["source"])
    assert report.agency == doc["agency"]
    assert report.agency_kind == doc["agency_kind"]
    assert report.report_year == doc["report_year"]
    assert report.published == _date(doc["published"])
    assert report.template == doc["template"]
    if doc.get("signed") is not None or "signed" in doc:
        assert report.signed == _date(doc.get("signed"))


@pytest.mark.parametrize("path", [p for p in EXPECTED_FILES if "sections" in _load(p)], ids=lambda p: p.stem)
def test_sections_found_by_wording(path):
    doc = _load(path)
    report = parsed(doc["source"])
    want = [(s["key"], str(s["numeral"]).rstrip(".、")) for s in doc["sections"] if s["numeral"] != "missing"]
    got = [(s.key, s.numeral) for s in report.sections]
    assert got == want


def _date(value):
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def test_normalise_lines_works_line_by_line():
    # The debris, numeral and space patterns run over the whole document at once: none may reach
    # across a line break, and each line comes out as if it had been normalised alone.
    raw = ["??一、总体情况", "  3、 ", "第 2 行\u3000有\u00a0空格", "?", "12?34", "2、没有", "", "共3、", "没有", " ?x", "（一）公开（gōng）信息"]
    assert [(line.no, line.text) for line in normalise_lines(raw)] == [
        (1, "一、总体情况"), (2, "3."), (3, "第 2 行 有 空格"), (4, ""), (5, "1234"), (6, "2.没有"), (7, ""),
        (8, "共3、"), (9, "没有"), (10, "x"), (11, "(一)公开信息"),
    ]
