"""Write the public output files of spec/outputs.md, atomically: a reader never sees half a file,
and the files of one run appear together (`output_set`).

CSV files are UTF-8 with a byte-order mark, so that Excel in a Chinese locale reads them as UTF-8,
and a text cell that a spreadsheet would take for a formula is escaped (see `_csv_ready`).
`findings.xlsx` holds the findings and the documents for reviewers, headed in Chinese.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import polars as pl

from audits.vocabulary import number_expr

DOCUMENT_COLUMNS = ["source", "agency", "report_year", "published", "template", "status", "html"]
CELL_COLUMNS = ["source", "table", "row", "col", "value", "raw", "flag"]
FINDING_COLUMNS = ["source", "agency", "report_year", "rule_id", "category", "severity", "message", "evidence"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Files are readable by others as the umask allows (mkstemp alone would make them 0600).
FILE_MODE = 0o666 & ~_umask()


# The files of the output set being written, if any: (finished temporary file, its final path).
_STAGED: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("staged", default=None)


@contextmanager
def output_set():
    """Files written inside the block appear together when it ends: each is written to a temporary
    file beside its place, and only once every one is finished are they moved into place, one rename
    each. When the block fails, none of them appears and the previous run's files stay whole."""
    staged: list[tuple[Path, Path]] = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _STAGED.reset(token)
    for tmp, path in staged:
        os.replace(tmp, path)


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, then move the finished file into place in one rename (at the end of
    the output set, inside one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        staged = _STAGED.get()
        if staged is None:
            os.replace(tmp, path)
        else:
            staged.append((Path(tmp), path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_table(frame: pl.DataFrame, out: Path, stem: str, first: list[str]) -> None:
    """`stem.csv` and `stem.parquet`, the spec's columns first and in order, more after."""
    ordered = frame.select(first + [c for c in frame.columns if c not in first]).with_columns(pl.col(pl.Categorical).cast(pl.Utf8))
    atomic_write(out / f"{stem}.parquet", lambda tmp: ordered.write_parquet(tmp))
    atomic_write(out / f"{stem}.csv", lambda tmp: _csv_ready(ordered).write_csv(tmp, include_bom=True))


# A text cell starting with one of these is a formula (or becomes one) to a spreadsheet: = + - @,
# and tab and carriage return, which some spreadsheets skip before reading the rest (OWASP, CSV Injection).
FORMULA_START = r"^[=+\-@\t\r]"


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Numbers as reviewers read them ("3", not "3.0"); dates as ISO text; text cells that would start
    a formula prefixed with an apostrophe, as OWASP advises. Only text columns are escaped: a number
    column (`value`: -2 is a number, written as one) is no formula whatever its sign."""
    def column(name: str, dtype) -> pl.Expr:
        if dtype in (pl.Float32, pl.Float64):
            return number_expr(pl.col(name)).alias(name)
        if dtype == pl.Utf8:
            return defuse(pl.col(name)).alias(name)
        return pl.col(name)

    return frame.select(column(name, dtype) for name, dtype in frame.schema.items())


def defuse(text: pl.Expr) -> pl.Expr:
    """`text` with a leading apostrophe where it would begin a formula; null stays null."""
    return pl.when(text.str.contains(FORMULA_START)).then(pl.lit("'") + text).otherwise(text)


# findings.xlsx ---------------------------------------------------------------------------------

# Each sheet's columns in order, headed as reviewers name them, with widths in pixels. Internal
# data (cell keys, observed and expected values) stays in the CSV and Parquet files.
FINDING_SHEET = {
    "source": ("来源文件", 220), "agency": ("机关", 200), "report_year": ("报告年度", 70), "rule_id": ("规则编号", 110),
    "rule_title": ("规则名称", 240), "category": ("类别", 100), "severity": ("级别", 50), "message": ("问题", 380),
    "evidence": ("依据", 360), "line": ("行号", 50), "quote": ("原文句子", 300), "state": ("状态", 60),
    "decision_state": ("审核意见", 70), "decision_by": ("审核人", 70), "decision_at": ("审核时间", 150),
    "decision_comment": ("审核说明", 240), "fingerprint": ("指纹", 140),
}
DOCUMENT_SHEET = {
    "source": ("来源文件", 220), "agency": ("机关", 200), "agency_kind": ("机关类型", 110), "region": ("地区", 150),
    "report_year": ("报告年度", 70), "published": ("发布日期", 90), "template": ("格式", 90), "status": ("读取", 70),
    "verdict": ("结论", 70), "problems": ("读取问题", 300), "title": ("标题", 300), "html": ("审核页面", 160),
}
XLSX_TEXT_MAX = 32767  # characters an Excel cell holds


def write_workbook(path: Path, findings: pl.DataFrame, documents: pl.DataFrame, rule_titles: dict[str, str]) -> None:
    """`findings.xlsx`: a sheet of findings (问题) and one of documents (报告), each with Chinese
    headers and values, an autofilter, the header row frozen and column widths set. Text is written
    as text, never as a formula."""
    from xlsxwriter import Workbook

    from audits.vocabulary import AGENCY_KINDS, CATEGORIES, DECISIONS, FINDING_STATES, SEVERITIES, STATUSES, TEMPLATES

    words = {
        "category": CATEGORIES, "severity": SEVERITIES, "state": FINDING_STATES, "decision_state": DECISIONS,
        "agency_kind": AGENCY_KINDS, "template": TEMPLATES, "status": STATUSES,
    }
    findings = findings.with_columns(pl.col("rule_id").replace_strict(rule_titles, default=None).alias("rule_title"))

    def sheet(frame: pl.DataFrame, columns: dict) -> pl.DataFrame:
        present = [c for c in columns if c in frame.columns]
        return frame.select(
            (pl.col(c).cast(pl.Utf8).replace_strict(words[c], default=pl.col(c).cast(pl.Utf8)) if c in words
             else pl.col(c).cast(pl.Utf8).str.slice(0, XLSX_TEXT_MAX) if frame.schema[c] in (pl.Utf8, pl.Categorical)
             else pl.col(c)).alias(columns[c][0])
            for c in present
        )

    def write(tmp: Path) -> None:
        workbook = Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False})
        for name, frame, columns in (("问题", findings, FINDING_SHEET), ("报告", documents, DOCUMENT_SHEET)):
            data = sheet(frame, columns)
            data.write_excel(
                workbook, name, autofilter=True, freeze_panes="A2", header_format={"bold": True},
                column_widths={header: width for header, width in columns.values() if header in data.columns},
            )
        workbook.close()

    atomic_write(path, write)
