"""Every cell and header field of real reports against values transcribed by hand (tests/expected).

The expected files were written by reading the documents, never from the parser's output; see
tests/expected/README.md. Cells are compared as `audits run` reads them: every transcribed report
parsed as one batch, then the settle step over the batch (a report's readings may be settled by the
same agency's other reports).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import polars as pl
import pytest
from ruamel.yaml import YAML

from audits.audit import parse_batch
from audits.normalize import normalise_lines
from audits.settle import settle_batch
from tests.conftest import EXPECTED, LAYOUTS, ROOT, SHARED, need_shared, parsed

EXPECTED_FILES = sorted(EXPECTED.glob("*.yaml"))


def _load(path):
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _batch() -> dict[str, dict[tuple[str, str, str], tuple[float | None, str]]]:
    """(value, flag) of every cell of every transcribed report, read as one batch and settled."""
    sources = [_load(p)["source"] for p in EXPECTED_FILES]
    frames, _ = parse_batch([SHARED / s for s in sources], ROOT / "rules" / "templates", workers=1)
    cells = settle_batch(frames, LAYOUTS).cells.with_columns(pl.col("source", "table", "row", "col", "flag").cast(pl.Utf8))
    out: dict = {}
    for source, table, row, col, value, flag in cells.select("source", "table", "row", "col", "value", "flag").iter_rows():
        out.setdefault(source, {})[(table, row, col)] = (value, flag)
    return out


def _expected_cells(doc) -> dict[tuple[str, str, str], float | None]:
    return {
        (table, row, col): (None if value is None else float(value))
        for table, rows in doc["cells"].items()
        for row, cols in rows.items()
        for col, value in cols.items()
    }


def _unsettled_cells(doc) -> dict[tuple[str, str, str], set]:
    return {
        (table, row, col): {None if v is None else float(v) for v in values}
        for table, rows in (doc.get("unsettled") or {}).items()
        for row, cols in rows.items()
        for col, values in cols.items()
    }


@pytest.mark.parametrize("path", EXPECTED_FILES, ids=lambda p: p.stem)
def test_cells_match_transcription(path):
    need_shared()
    doc = _load(path)
    got = _batch()[str(SHARED / doc["source"])]
    want = _expected_cells(doc)
    wrong = {k: (got.get(k, ("absent",))[0], v) for k, v in want.items() if got.get(k, ("absent",))[0] != v}
    assert not wrong, f"{len(wrong)} cells differ (got, expected): {dict(list(wrong.items())[:12])}"
    guessed = sorted(k for k in want if got[k][1] == "ambiguous")
    assert not guessed, f"cells the document settles, flagged ambiguous: {guessed[:10]}"
    # What the document cannot settle is flagged, and read as one of its possible values (a cell
    # read as the blank one carries the flag `blank`: a cell has one flag, CELL-BLANK reports it).
    for key, values in _unsettled_cells(doc).items():
        value, flag = got.get(key, ("absent", ""))
        assert value in values and (flag == "ambiguous" or value is None and flag == "blank"), (key, value, flag, values)
    if doc["complete"]:
        extra = set(got) - set(want) - set(_unsettled_cells(doc))
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
