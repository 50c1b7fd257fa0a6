"""Write the public output files of spec/outputs.md as one set: a reader never sees half a file,
nor the files of two runs side by side.

A run writes everything into a fresh staging folder beside `--out`, then switches it with the output
folder in one step (an atomic exchange of the two folders where the system has one, Linux's
renameat2; two renames elsewhere) and removes the old set. The output folder is locked while a run
writes it; staging folders left by killed runs are removed by the next run.
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
    atomic_write(out / f"{stem}.csv", lambda tmp: _csv_ready(ordered).write_csv(tmp))


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Numbers as reviewers read them ("3", not "3.0"); dates as ISO text."""
    return frame.select(number_expr(pl.col(name)).alias(name) if dtype in (pl.Float32, pl.Float64) else pl.col(name) for name, dtype in frame.schema.items())


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
