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
from typing import NamedTuple

import polars as pl

from audits.frames import Frames, build_frames, concat_frames
from audits.identity import agency_key
from audits.ingest import Limits, discover, read_document
from audits.layouts import load_layouts
from audits.model import ParsedReport
from audits.parse.report import NOT_A_REPORT, parse
from audits.progress import Stages

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
    statuses: pl.DataFrame | None = None  # each report's state for each rule (source, rule_id, state, reason)


# Parse ----------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _layouts(templates_dir: str):
    return load_layouts(Path(templates_dir))


class Input(NamedTuple):
    """A file to parse, the name its document carries (default: the path) and the charset its
    server declared ("" when none)."""

    path: str
    source: str = ""
    charset: str = ""


def parse_file(path: str, templates_dir: str, cache_dir: str = "", source: str = "", charset: str = "") -> ParsedReport:
    """Read and parse one file, or take it from the parse cache; never raises."""
    from audits.jobs.history import ParseCache

    source = source or path
    try:
        # NOTE: `charset` is meant for ingest's decoding (`read_bytes(..., declared_charset=)`), which
        # does not take it yet; until then it only keys the parse cache.
        text, data = read_document(Path(path), Limits())
        digest = hashlib.sha256(data).hexdigest()
        key = f"{digest}-{charset}" if charset else digest
        cache = ParseCache.at(Path(cache_dir)) if cache_dir else None
        cached = cache.get(key) if cache else None
        if cached is not None:
            cached.source, cached.reused = source, True
            return cached
        report = parse(text, _layouts(templates_dir), digest)
        report.source = source
        if cache and data:
            cache.put(report, key)
    except Exception as exc:  # noqa: BLE001 - one bad report must not take the batch down
        report = ParsedReport(source=source, status="failed")
        report.problems.append(f"解析程序出错（{type(exc).__name__}: {exc}）")
    return report


def parse_chunk(inputs: list[Input], templates_dir: str, cache_dir: str = "") -> tuple[Frames, int]:
    """Parse some files and return their frames (frames cross process boundaries cheaply, as Arrow)."""
    reports = [parse_file(i.path, templates_dir, cache_dir, i.source, i.charset) for i in inputs]
    return build_frames(reports), sum(r.reused for r in reports)


def parse_batch(paths: list[Path | Input], templates_dir: Path, workers: int | None = None, on_progress=None, cache_dir: Path | None = None) -> tuple[Frames, int]:
    """Parse files on all cores; each worker builds the frames of its files. Returns the frames and
    how many reports came from the parse cache."""
    workers = workers or min(os.cpu_count() or 1, 8)
    names = [p if isinstance(p, Input) else Input(str(p)) for p in paths]
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


@dataclass
class Memory:
    """What a scheduled job brings to a batch from earlier runs."""

    history: pl.DataFrame | None = None  # earlier runs' cells, for cross-year rules
    previous: pl.DataFrame | None = None  # the job's last run's findings, for states
    decisions: dict = field(default_factory=dict)  # fingerprint → latest reviewer decision


def audit_batch(frames: Frames, book, out: Path, memory: Memory | None = None, extra: dict | None = None, stages: Stages | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """Rules over the batch's frames, then every output file; returns the findings, the resolved
    ones (jobs) and each report's state for each rule."""
    import json

    from audits.engines.run import run_rules
    from audits.findings import findings_frame
    from audits.jobs.history import finding_states, fingerprints
    from audits.outputs import CELL_COLUMNS, DOCUMENT_COLUMNS, FINDING_COLUMNS, write_table, write_text
    from audits.render import render_all
    from audits.rulebook import catalogue

    memory = memory or Memory()
    stages = stages or Stages()
    out.mkdir(parents=True, exist_ok=True)
    judging = stages.start("规则", len(book.rules))
    judgement = run_rules(book, frames, memory.history, on_judged=judging.advance)
    findings = findings_frame(judgement.findings)
    findings = findings.with_columns(fingerprints(findings, frames.documents))
    resolved = None
    if memory.previous is not None:
        findings, resolved = finding_states(findings, memory.previous, frames.documents)
    if memory.decisions:
        decided = {fp: f"{d['decision']}（{d['by']}，{d['at'][:10]}）：{d['comment']}" for fp, d in memory.decisions.items()}
        findings = findings.with_columns(pl.col("fingerprint").replace_strict(decided, default=None).alias("decision"))
    # The renderer writes every page in one call and reports nothing as it goes: the stage shows
    # how many agencies' pages are being written and ends when all are.
    rendering = stages.start("页面", None)
    pages = render_all(frames, findings, judgement.statuses, book, out, {**(extra or {}), "resolved": resolved})
    rendering.advance(pages["html"].n_unique() if "html" in pages.columns else 0)
    rendering.set_total(rendering.done)
    tables = [(findings, "findings", FINDING_COLUMNS)]
    if resolved is not None:
        tables.append((resolved, "resolved", [c for c in FINDING_COLUMNS if c in resolved.columns]))
    tables += [(frames.documents.join(pages, on="source", how="left"), "documents", DOCUMENT_COLUMNS), (frames.cells, "cells", CELL_COLUMNS)]
    writing = stages.start("输出", 2 + 2 * len(tables))
    write_text(out / "gx_validation.json", json.dumps(judgement.validations, ensure_ascii=False, indent=1, default=str))
    writing.advance()
    write_text(out / "rules.html", catalogue.render(book))
    writing.advance()
    for frame, stem, columns in tables:
        write_table(frame, out, stem, columns)
        writing.advance(2)  # its CSV and its Parquet
    stages.close()
    return findings, resolved, judgement.statuses


class NoDocuments(ValueError):
    """The inputs hold no annual report to audit (spec: exit status 2, with a message saying so)."""


def run_audit(inputs: list[Path], rules_dir: Path, out: Path, workers: int | None = None, settings=None, stages: Stages | None = None) -> AuditResult:
    """`audits run`: the whole audit of the given files (or the samples); writes into `out`."""
    from audits.engines import gx_engine
    from audits.rulebook.book import load_rulebook

    stages = stages or Stages()
    book = load_rulebook(rules_dir)
    gx_engine.warm_up_in_background()
    finding = stages.start("查找文件")
    found = find_documents(inputs)
    finding.advance(len(found.documents))
    finding.set_total(len(found.documents))
    if not found.documents:
        stages.close()
        raise NoDocuments(f"输入中没有可审核的文档：{'、'.join(map(str, inputs))}" + (f"（{len(found.skipped)} 个文件都不是文档，已跳过）" if found.skipped else "（没有文件）"))
    parsing = stages.start("解析", len(found.documents))
    frames, _ = parse_batch(found.documents, rules_dir / "templates", workers=workers, on_progress=parsing.advance)
    docs = frames.documents
    if docs.filter((pl.col("status") != "failed") | (pl.col("problems") != NOT_A_REPORT)).is_empty():
        stages.close()
        raise NoDocuments(f"输入中没有年度报告：读到的 {docs.height} 个文件都不是政府信息公开工作年度报告（{'、'.join(map(str, inputs))}）")
    extra = {"unreported": unreported(settings, frames)} if settings is not None else None
    findings, _, statuses = audit_batch(frames, book, out, extra=extra, stages=stages)
    return AuditResult(frames, findings, out, found.skipped, parsed=frames.documents.height, statuses=statuses)


def unreported(settings, frames: Frames) -> list[str]:
    """Agencies on the roster (config `roster`) with no report in this batch."""
    if not settings.roster or not Path(settings.roster).is_file():
        return []
    import csv

    with open(settings.roster, encoding="utf-8-sig", newline="") as handle:
        roster = [row["agency"].strip() for row in csv.DictReader(handle) if row.get("agency")]
    present = set(frames.documents["agency_id"].drop_nulls().to_list())
    return [name for name in roster if agency_key(name) not in present]
