"""Build the report a rule case describes (sqlfluff-style YAML cases in tests/cases/).

A case is one of:
  base: clean_2021          the clean report in tests/data/, with `replace: [[old, new], ...]`
                            applied (each `old` must occur, so a case cannot silently pass)
  text: "…"                 a document given in the case itself
  report: seeds/….txt       a real report under ../shared
  (neither)                 a report that is only the cells given
and may add `doc:` (document fields to override) and `cells:` (table → row → col → value; null is
a blank cell) on top, and `previous:` (a case of the same form) for last year's report.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from audits.ingest import read_bytes
from audits.model import Cell, ParsedReport
from audits.parse.report import parse
from tests.conftest import LAYOUTS, ROOT, SHARED

DATA = ROOT / "tests" / "data"
CASES = ROOT / "tests" / "cases"


def build_reports(case: dict) -> list[ParsedReport]:
    """The case's report, after the `previous:` year's report when the case has one."""
    reports = [build_report(case)]
    if "previous" in case:
        earlier = build_report(case["previous"])
        earlier.source += "#previous"
        reports.insert(0, earlier)
    return reports


def build_report(case: dict) -> ParsedReport:
    if "base" in case:
        text = (DATA / f"{case['base']}.md").read_text(encoding="utf-8")
        for old, new in case.get("replace", []):
            assert old in text, f"replace: {old!r} does not occur in {case['base']}"
            text = text.replace(old, new)
        report = parse(read_bytes(f"case/{case['base']}.md", text.encode("utf-8")), LAYOUTS)
    elif "text" in case:
        report = parse(read_bytes("case/text.txt", case["text"].encode("utf-8")), LAYOUTS)
    elif "report" in case:
        path = SHARED / case["report"]
        report = parse(read_bytes(str(path), path.read_bytes()), LAYOUTS)
    else:
        report = ParsedReport(
            source="case/cells", status="parsed", agency="示例市交通运输局", agency_kind="department",
            report_year=2024, template="2021", tables_found=("active", "applications", "review_litigation"),
        )
    for name, value in (case.get("doc") or {}).items():
        if name in ("published", "signed") and value is not None:
            value = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        setattr(report, name, value)
    if case.get("cells"):
        report.cells = _merge_cells(report.cells, case["cells"])
    return report


def _merge_cells(cells: list[Cell], override: dict) -> list[Cell]:
    by_key = {(c.table, c.row, c.col): c for c in cells}
    for table, rows in override.items():
        for row, cols in rows.items():
            for col, value in cols.items():
                flag, raw = ("blank", "") if value is None else ("", str(value))
                if isinstance(value, str):  # "flag:value" pins a parser flag, e.g. "ambiguous:12"
                    flag, _, raw = value.partition(":")
                    value = float(raw) if raw else None
                by_key[(table, row, col)] = Cell(table, row, col, None if value is None else float(value), raw, flag, 1)
    return list(by_key.values())


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.yaml"))
