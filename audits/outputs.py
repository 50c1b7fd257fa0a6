"""Write the public output files of spec/outputs.md, atomically: a reader never sees half a file."""

from __future__ import annotations

import os
import tempfile
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
    atomic_write(out / f"{stem}.csv", lambda tmp: _csv_ready(ordered).write_csv(tmp))


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Numbers as reviewers read them ("3", not "3.0"); dates as ISO text."""
    return frame.select(number_expr(pl.col(name)).alias(name) if dtype in (pl.Float32, pl.Float64) else pl.col(name) for name, dtype in frame.schema.items())
