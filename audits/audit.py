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


# What `audits review` records (确认 / 驳回), and the words of older or other writers of the log.
DECISION_STATES = {"确认": "confirmed", "confirm": "confirmed", "confirmed": "confirmed", "驳回": "dismissed", "dismiss": "dismissed", "dismissed": "dismissed"}


def with_decisions(findings: pl.DataFrame, decisions: dict[str, dict]) -> pl.DataFrame:
    """The findings with each one's latest reviewer decision as data: `decision_state` (confirmed,
    dismissed, or empty when none), `decision_by`, `decision_at`, `decision_comment`, and `decision`
    written out in one line for the files (`驳回（张三，2025-02-03）：机构合并，已核实`)."""
    rows = []
    for fp, d in decisions.items():
        state = DECISION_STATES.get(str(d.get("decision") or "").strip().lower())
        if state is None:
            continue  # a decision this version does not know is not guessed at
        by, at, comment = str(d.get("by") or ""), str(d.get("at") or ""), str(d.get("comment") or "")
        rows.append((fp, state, by or None, at or None, comment or None, f"{d['decision']}（{by}，{at[:10]}）：{comment}"))
    schema = {"fingerprint": pl.Utf8, "decision_state": pl.Utf8, "decision_by": pl.Utf8, "decision_at": pl.Utf8, "decision_comment": pl.Utf8, "decision": pl.Utf8}
    table = pl.DataFrame(rows, schema=schema, orient="row")
    return findings.drop([c for c in schema if c != "fingerprint" and c in findings.columns]).join(table, on="fingerprint", how="left", maintain_order="left")


def audit_batch(frames: Frames, book, out: Path, memory: Memory | None = None, extra: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """Rules over the batch's frames, then every output file; returns the findings, the resolved
    ones (jobs) and each report's state for each rule."""
    import json

    from audits.engines.run import run_rules
    from audits.findings import findings_frame
    from audits.jobs.history import finding_states, fingerprints
    from audits.outputs import CELL_COLUMNS, DOCUMENT_COLUMNS, FINDING_COLUMNS, output_set, write_table, write_text, write_workbook
    from audits.render import EXPORTS, render_all, run_info
    from audits.rulebook import catalogue

    memory = memory or Memory()
    out.mkdir(parents=True, exist_ok=True)
    judgement = run_rules(book, frames, memory.history)
    findings = findings_frame(judgement.findings)
    findings = findings.with_columns(fingerprints(findings, frames.documents))
    resolved = None
    if memory.previous is not None:
        findings, resolved = finding_states(findings, memory.previous, frames.documents)
    if memory.decisions:
        findings = with_decisions(findings, memory.decisions)
    exports = EXPORTS + ([("resolved.csv", "已解决的问题（CSV）")] if resolved is not None else [])
    run = run_info(book, frames.documents.height, exports)
    # Every file of the run appears together, once all are written (outputs.output_set).
    with output_set():
        write_text(out / "gx_validation.json", json.dumps(judgement.validations, ensure_ascii=False, indent=1, default=str))
        pages = render_all(frames, findings, judgement.statuses, book, out, extra, run)
        write_text(out / "rules.html", catalogue.render(book, run))
        documents = frames.documents.join(pages, on="source", how="left")
        write_table(findings, out, "findings", FINDING_COLUMNS)
        if resolved is not None:
            write_table(resolved, out, "resolved", [c for c in FINDING_COLUMNS if c in resolved.columns])
        write_table(documents, out, "documents", DOCUMENT_COLUMNS)
        write_table(frames.cells, out, "cells", CELL_COLUMNS)
        write_workbook(out / "findings.xlsx", findings, documents, {r.id: r.title for r in book.rules})
    return findings, resolved, judgement.statuses


def run_audit(inputs: list[Path], rules_dir: Path, out: Path, on_progress=None, workers: int | None = None, settings=None) -> AuditResult:
    """`audits run`: the whole audit of the given files (or the samples); writes into `out`."""
    from audits.engines import gx_engine
    from audits.rulebook.book import load_rulebook

    book = load_rulebook(rules_dir)
    gx_engine.warm_up_in_background()
    found = find_documents(inputs)
    frames, _ = parse_batch(found.documents, rules_dir / "templates", workers=workers, on_progress=on_progress)
    extra = {"unreported": unreported(settings, frames), "regions": roster_regions(settings)} if settings is not None else None
    findings, _, statuses = audit_batch(frames, book, out, extra=extra)
    return AuditResult(frames, findings, out, found.skipped, parsed=frames.documents.height, statuses=statuses)


def roster(settings) -> list[dict]:
    """The rows of the roster (config `roster`: agency, region, agency_kind), or none."""
    if settings is None or not settings.roster or not Path(settings.roster).is_file():
        return []
    import csv

    with open(settings.roster, encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.DictReader(handle) if (row.get("agency") or "").strip()]


def unreported(settings, frames: Frames) -> list[str]:
    """Agencies on the roster (config `roster`) with no report in this batch."""
    present = set(frames.documents["agency_id"].drop_nulls().to_list())
    return [name for name in (row["agency"].strip() for row in roster(settings)) if agency_key(name) not in present]


def roster_regions(settings) -> dict:
    """agency identity → Region, as the roster gives them."""
    from audits.regions import given_regions

    return given_regions([(row["agency"], row.get("region") or "") for row in roster(settings)], "名录")
