"""One audit run: files → parsed reports → frames → rules → findings → HTML and output files.

`audits run` calls `run_audit`; scheduled jobs (`audits.jobs.run`) add fetching, the parse cache,
the results store, finding states and reviewer decisions around the same `audit_batch`.
Nothing here knows about the command line.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from audits.frames import Frames, build_frames, concat_frames
from audits.identity import agency_key
from audits.ingest import Limits, discover, load, read_bytes, read_many, sniff
from audits.layouts import load_layouts
from audits.model import Finding, ParsedReport, SourceText
from audits.parse.report import parse

PACKAGE = Path(__file__).resolve().parent
SAMPLES = PACKAGE / "samples"
CHUNK = 50  # reports per task handed to a parse worker, which returns their frames


def default_rules_dir() -> Path:
    """`./rules` when it exists, else the rule set installed with the package (inside it when
    installed from a wheel, beside it in an editable install of the checkout)."""
    for folder in (Path("rules"), PACKAGE / "rules", PACKAGE.parent / "rules"):
        if (folder / "templates").is_dir():
            return folder
    return PACKAGE / "rules"


@dataclass
class AuditResult:
    frames: Frames
    findings: pl.DataFrame
    out: Path
    skipped: list[Path] = field(default_factory=list)
    resolved: pl.DataFrame | None = None
    parsed: int = 0
    reused: int = 0


# Parse ----------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _layouts(templates_dir: str):
    return load_layouts(Path(templates_dir))


def parse_file(path: str, templates_dir: str, cache_dir: str = "") -> ParsedReport:
    """Read and parse one file, or take it from the parse cache; never raises."""
    return parse_files([path], templates_dir, cache_dir)[0]


def parse_files(paths: list[str], templates_dir: str, cache_dir: str = "") -> list[ParsedReport]:
    """Read and parse files, or take them from the parse cache; never raises. The Word 97/WPS
    documents among them that are not in the cache are converted in one LibreOffice call; every
    other file is read and parsed on its own, so that only one of them is in memory at a time."""
    from audits.jobs.history import ParseCache

    cache = ParseCache.at(Path(cache_dir)) if cache_dir else None
    layouts = _layouts(templates_dir)

    def parsed(path: str, text: SourceText, data: bytes, digest: str) -> ParsedReport:
        try:
            report = parse(text, layouts, digest)
            if cache and data:
                cache.put(report)
            return report
        except Exception as exc:  # noqa: BLE001 - one bad report must not take the batch down
            return _crashed(path, exc)

    reports: list[ParsedReport | None] = [None] * len(paths)
    word: list[tuple[int, bytes, str]] = []  # Word 97/WPS documents to convert together
    for i, path in enumerate(paths):
        try:
            data, failure = load(Path(path))
            digest = hashlib.sha256(data).hexdigest()
            cached = cache.get(digest) if cache else None
            if cached is not None:
                cached.source, cached.reused = path, True
                reports[i] = cached
            elif failure is None and sniff(data) == "doc":
                word.append((i, data, digest))
            else:
                reports[i] = parsed(path, failure or read_bytes(path, data, Limits()), data, digest)
        except Exception as exc:  # noqa: BLE001
            reports[i] = _crashed(path, exc)
    if word:
        try:
            texts = read_many([(paths[i], data) for i, data, _ in word], Limits())
        except Exception as exc:  # noqa: BLE001
            texts = [_crashed_reading(paths[i], exc) for i, _, _ in word]
        for (i, data, digest), text in zip(word, texts):
            reports[i] = parsed(paths[i], text, data, digest)
    return reports


def _crashed_reading(path: str, exc: Exception) -> SourceText:
    return SourceText(path, "", "", [], problems=(f"读取失败（{type(exc).__name__}: {exc}）",))


def _crashed(path: str, exc: Exception) -> ParsedReport:
    report = ParsedReport(source=path, status="failed")
    report.problems.append(f"解析程序出错（{type(exc).__name__}: {exc}）")
    return report


def parse_chunk(paths: list[str], templates_dir: str, cache_dir: str = "") -> tuple[Frames, int]:
    """Parse some files and return their frames (frames cross process boundaries cheaply, as Arrow)."""
    reports = parse_files(paths, templates_dir, cache_dir)
    return build_frames(reports), sum(r.reused for r in reports)


def parse_batch(paths: list[Path], templates_dir: Path, workers: int | None = None, on_progress=None, cache_dir: Path | None = None) -> tuple[Frames, int]:
    """Parse files on all cores; each worker builds the frames of its files. Returns the frames and
    how many reports came from the parse cache."""
    workers = workers or min(os.cpu_count() or 1, 8)
    names = [str(p) for p in paths]
    # Small batches (a few PDFs) are cut finer so that every worker gets a share.
    size = max(1, min(CHUNK, math.ceil(len(names) / (4 * workers))))
    chunks = [names[i : i + size] for i in range(0, len(names), size)]
    args = (str(templates_dir), str(cache_dir or ""))
    parts: list[Frames] = []
    reused = 0
    # NOTE: spawn, not fork: Polars' thread pool does not survive a fork, and forked workers would
    # inherit a scheduled job's lock and keep it after the parent is killed.
    pool = (
        ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_die_with_parent)
        if workers > 1 and len(names) >= 8
        else None
    )
    try:
        results = pool.map(parse_chunk, chunks, *([a] * len(chunks) for a in args)) if pool else (parse_chunk(c, *args) for c in chunks)
        for chunk, (frames, n_reused) in zip(chunks, results):
            parts.append(frames)
            reused += n_reused
            if on_progress:
                on_progress(len(chunk))
    finally:
        if pool:
            pool.shutdown()
    return (concat_frames(parts) if parts else build_frames([])), reused


def _die_with_parent() -> None:
    """Parse workers end when the run that started them is killed (Linux), instead of lingering."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def find_documents(inputs: list[Path]):
    return discover(inputs or [SAMPLES])


# Audit ----------------------------------------------------------------------------------------


def findings_frame(findings: list[Finding]) -> pl.DataFrame:
    schema = {
        "source": pl.Utf8, "agency": pl.Utf8, "report_year": pl.Int32, "rule_id": pl.Utf8, "category": pl.Utf8,
        "severity": pl.Utf8, "message": pl.Utf8, "evidence": pl.Utf8, "cells": pl.Utf8, "line": pl.Int32,
    }
    rows = [
        (f.source, f.agency, f.report_year, f.rule_id, f.category, f.severity, f.message, f.evidence, ";".join(f.cells), f.line)
        for f in findings
    ]
    order = pl.col("severity").replace_strict({"error": 0, "warning": 1, "info": 2}, default=3)
    return pl.DataFrame(rows, schema=schema, orient="row").sort(["source", order, "rule_id", "cells"])


@dataclass
class Memory:
    """What a scheduled job brings to a batch from earlier runs."""

    history: pl.DataFrame | None = None  # earlier runs' cells, for cross-year rules
    previous: pl.DataFrame | None = None  # the job's last run's findings, for states
    decisions: dict = field(default_factory=dict)  # fingerprint → latest reviewer decision


def audit_batch(frames: Frames, book, out: Path, memory: Memory | None = None, extra: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Rules over the batch's frames, then every output file; returns findings and resolved ones."""
    from audits.engines import run_rules
    from audits.jobs.history import finding_states, fingerprints
    from audits.outputs import CELL_COLUMNS, DOCUMENT_COLUMNS, FINDING_COLUMNS, write_table
    from audits.render import render_all

    memory = memory or Memory()
    out.mkdir(parents=True, exist_ok=True)
    findings = findings_frame(run_rules(book, frames, out, memory.history))
    findings = findings.with_columns(fingerprints(findings, frames.documents))
    resolved = None
    if memory.previous is not None:
        findings, resolved = finding_states(findings, memory.previous, frames.documents)
    if memory.decisions:
        decided = {fp: f"{d['decision']}（{d['by']}，{d['at'][:10]}）：{d['comment']}" for fp, d in memory.decisions.items()}
        findings = findings.with_columns(pl.col("fingerprint").replace_strict(decided, default=None).alias("decision"))
    pages = render_all(frames, findings, book, out, {**(extra or {}), "resolved": resolved})
    write_table(findings, out, "findings", FINDING_COLUMNS)
    if resolved is not None:
        write_table(resolved, out, "resolved", [c for c in FINDING_COLUMNS if c in resolved.columns])
    write_table(frames.documents.join(pages, on="source", how="left"), out, "documents", DOCUMENT_COLUMNS)
    write_table(frames.cells, out, "cells", CELL_COLUMNS)
    return findings, resolved


def run_audit(inputs: list[Path], rules_dir: Path, out: Path, on_progress=None, workers: int | None = None, settings=None) -> AuditResult:
    """`audits run`: the whole audit of the given files (or the samples); writes into `out`."""
    from audits.rulebook import load_rulebook

    book = load_rulebook(rules_dir)
    found = find_documents(inputs)
    frames, _ = parse_batch(found.documents, rules_dir / "templates", workers=workers, on_progress=on_progress)
    extra = {"unreported": unreported(settings, frames)} if settings is not None else None
    findings, _ = audit_batch(frames, book, out, extra=extra)
    return AuditResult(frames, findings, out, found.skipped, parsed=frames.documents.height)


def unreported(settings, frames: Frames) -> list[str]:
    """Agencies on the roster (config `roster`) with no report in this batch."""
    if not settings.roster or not Path(settings.roster).is_file():
        return []
    import csv

    with open(settings.roster, encoding="utf-8-sig", newline="") as handle:
        roster = [row["agency"].strip() for row in csv.DictReader(handle) if row.get("agency")]
    present = set(frames.documents["agency_id"].drop_nulls().to_list())
    return [name for name in roster if agency_key(name) not in present]
