"""Write the public output files of spec/outputs.md as one set: a reader never sees half a file,
nor the files of two runs side by side.

A run writes everything into a fresh staging folder beside `--out`, then switches it with the output
folder in one step (an atomic exchange of the two folders where the system has one, Linux's
renameat2; two renames elsewhere) and removes the old set. The output folder is locked while a run
writes it; staging folders left by killed runs are removed by the next run.

CSV files are UTF-8 with a byte-order mark, so that Excel in a Chinese locale reads them as UTF-8,
and a text cell that a spreadsheet would take for a formula is escaped (see `_csv_ready`).
`findings.xlsx` holds the findings and the documents for reviewers, headed in Chinese.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from audits.locks import exclusive
from audits.vocabulary import number_expr

MANIFEST = "run.json"

DOCUMENT_COLUMNS = ["source", "agency", "report_year", "published", "template", "status", "html"]
CELL_COLUMNS = ["source", "table", "row", "col", "value", "raw", "flag"]
FINDING_COLUMNS = ["source", "agency", "report_year", "rule_id", "category", "severity", "message", "evidence"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Files are readable by others as the umask allows (mkstemp alone would make them 0600).
FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, then move the finished file into place in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
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


class OutputFolderError(Exception):
    """An output folder a run must not replace (it holds folders that are not ours)."""


@contextmanager
def output_set(out: Path, describe: dict | None = None):
    """Yield a staging folder to write the run's files into; on success they replace `out` as a set.

    `run.json` in the set lists every file the run wrote with its SHA-256, the files of `out` that no
    run wrote (a .gitkeep, a note of the operator's) and carried into the new set, and `describe`.
    """
    out = out.absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(out.parent / f".{out.name}.lock", f"输出目录 {out} 正由另一次审核写入，本次未运行"):
        for stale in out.parent.glob(f".{out.name}.staging-*"):
            shutil.rmtree(stale, ignore_errors=True)  # a killed run's; we hold the lock
        staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            yield staging
            written = _hashes(staging)
            kept = _carry_over(out, staging)
            write_text(staging / MANIFEST, json.dumps({**(describe or {}), "files": written, "kept": kept}, ensure_ascii=False, indent=1, default=str))
            _switch(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # the old set after a switch, or a failed run's


def _ours(out: Path) -> set[str]:
    """The files the previous run wrote into `out` (its manifest's), or any output-looking file."""
    try:
        return set(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"]) | {MANIFEST}
    except (OSError, ValueError, KeyError, TypeError):
        return {p.name for p in out.iterdir() if p.suffix in (".html", ".csv", ".parquet", ".json", ".xlsx")}


def _carry_over(out: Path, staging: Path) -> list[str]:
    if not out.is_dir():
        return []
    ours = _ours(out)
    kept = []
    for entry in out.iterdir():
        if entry.name in ours or (staging / entry.name).exists():
            continue
        kept.append(entry.name)
        if entry.is_dir() and not entry.is_symlink():
            raise OutputFolderError(f"输出目录 {out} 中有不属于审核输出的子目录 {entry.name}，为免覆盖，请另选输出目录")
        try:
            os.link(entry, staging / entry.name, follow_symlinks=False)
        except OSError:
            shutil.copy2(entry, staging / entry.name, follow_symlinks=False)
    return sorted(kept)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _switch(staging: Path, out: Path) -> None:
    """Put `staging` in place of `out`; afterwards `staging` holds the old set (or nothing)."""
    if not out.exists():
        os.rename(staging, out)
        return
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
        if renameat2(_AT_FDCWD, os.fsencode(staging), _AT_FDCWD, os.fsencode(out), _RENAME_EXCHANGE) == 0:
            return
        reason = ctypes.get_errno()
    except (OSError, AttributeError):  # no such call on this system
        reason = errno.ENOSYS
    if reason not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        raise OSError(reason, os.strerror(reason), str(out))
    # NOTE: without an exchange there is a moment with no output folder at all, never a mixed one.
    old = staging.with_name(staging.name + "-old")
    os.rename(out, old)
    os.rename(staging, out)
    os.rename(old, staging)


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
