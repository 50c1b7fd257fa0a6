"""One audit run: files → parsed reports → frames → rules → findings → HTML and output files.

`audits run` calls `run_audit`; scheduled jobs (`audits.jobs.run`) add fetching, the parse cache,
the results store, finding states and reviewer decisions around the same `audit_batch`.
Nothing here knows about the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from audits.frames import Frames
from audits.identity import agency_key
from audits.ingest import Skipped, discover
from audits.ingest.files import PAGE_ATTACHMENT
from audits.workers import Budget, parse_batch

PACKAGE = Path(__file__).resolve().parent
SAMPLES = PACKAGE / "samples"


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
    skipped: list[Skipped] = field(default_factory=list)
    resolved: pl.DataFrame | None = None
    parsed: int = 0
    reused: int = 0
    statuses: pl.DataFrame | None = None  # each report's state for each rule (source, rule_id, state, reason)


# Inputs -------------------------------------------------------------------------------------


def find_documents(inputs: list[Path]):
    return discover(inputs or [SAMPLES])


# Audit ----------------------------------------------------------------------------------------


@dataclass
class Memory:
    """What a scheduled job brings to a batch from earlier runs."""

    history: pl.DataFrame | None = None  # earlier runs' cells, for cross-year rules
    previous: pl.DataFrame | None = None  # the job's last run's findings, for states
    decisions: dict = field(default_factory=dict)  # fingerprint → latest reviewer decision


def audit_batch(frames: Frames, book, out: Path, memory: Memory | None = None, extra: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """Rules over the batch's frames, then every output file, replacing `out` as one set; returns the
    findings, the resolved ones (jobs) and each report's state for each rule."""
    from audits.engines.run import run_rules
    from audits.findings import findings_frame
    from audits.jobs.history import finding_states, fingerprints
    from audits.outputs import output_set

    memory = memory or Memory()
    judgement = run_rules(book, frames, memory.history)
    findings = findings_frame(judgement.findings)
    findings = findings.with_columns(fingerprints(findings, frames.documents))
    resolved = None
    if memory.previous is not None:
        findings, resolved = finding_states(findings, memory.previous, frames.documents)
    if memory.decisions:
        decided = {fp: f"{d['decision']}（{d['by']}，{d['at'][:10]}）：{d['comment']}" for fp, d in memory.decisions.items()}
        findings = findings.with_columns(pl.col("fingerprint").replace_strict(decided, default=None).alias("decision"))
    run = {"documents": frames.documents.height, "findings": findings.height, "rules": len(book.rules)}
    with output_set(out, run) as staging:
        _write_outputs(staging, frames, findings, resolved, judgement, book, extra)
    return findings, resolved, judgement.statuses


def _write_outputs(folder: Path, frames: Frames, findings: pl.DataFrame, resolved, judgement, book, extra: dict | None) -> None:
    import json

    from audits.outputs import CELL_COLUMNS, DOCUMENT_COLUMNS, FINDING_COLUMNS, write_table, write_text
    from audits.render import render_all
    from audits.rulebook import catalogue

    write_text(folder / "gx_validation.json", json.dumps(judgement.validations, ensure_ascii=False, indent=1, default=str))
    pages = render_all(frames, findings, judgement.statuses, book, folder, {**(extra or {}), "resolved": resolved})
    write_text(folder / "rules.html", catalogue.render(book))
    write_table(findings, folder, "findings", FINDING_COLUMNS)
    if resolved is not None:
        write_table(resolved, folder, "resolved", [c for c in FINDING_COLUMNS if c in resolved.columns])
    write_table(frames.documents.join(pages, on="source", how="left"), folder, "documents", DOCUMENT_COLUMNS)
    write_table(frames.cells, folder, "cells", CELL_COLUMNS)


def run_audit(inputs: list[Path], rules_dir: Path, out: Path, on_progress=None, workers: int | None = None, settings=None, cluster=None) -> AuditResult:
    """`audits run`: the whole audit of the given files (or the samples); writes into `out`. With
    `cluster` (`audits.cluster.connect`), the files are parsed on the cluster's workers."""
    from audits.engines import gx_engine
    from audits.rulebook.book import load_rulebook

    book = load_rulebook(rules_dir)
    gx_engine.warm_up_in_background()
    found = find_documents(inputs)
    budget = settings.limits.budget() if settings is not None else Budget()
    frames, _ = parse_batch(found.documents, rules_dir / "templates", workers=workers, on_progress=on_progress, budget=budget, cluster=cluster)
    frames, attached = fold_attachments(frames)
    extra = {"unreported": unreported(settings, frames)} if settings is not None else None
    findings, _, statuses = audit_batch(frames, book, out, extra=extra)
    return AuditResult(frames, findings, out, found.skipped + attached, parsed=frames.documents.height, statuses=statuses)


def fold_attachments(frames: Frames) -> tuple[Frames, list[Skipped]]:
    """A page read through its attachment makes the attachment's own document a repeat of it: that
    one is dropped from the batch and counted as skipped, so the report is audited once."""
    read = frames.documents.filter(pl.col("attachment") != "").select(pl.col("source").cast(pl.Utf8), "attachment")
    consumed = {str(Path(source).parent / name) for source, name in read.iter_rows()}
    repeats = [s for s in frames.documents["source"].cast(pl.Utf8).to_list() if s in consumed]
    if not repeats:
        return frames, []
    keep = ~pl.col("source").cast(pl.Utf8).is_in(repeats)
    folded = Frames(*(getattr(frames, name).filter(keep) for name in Frames.__dataclass_fields__))
    return folded, [Skipped(Path(s), PAGE_ATTACHMENT) for s in repeats]


def unreported(settings, frames: Frames) -> list[str]:
    """Agencies on the roster (config `roster`) with no report in this batch."""
    if not settings.roster or not Path(settings.roster).is_file():
        return []
    import csv

    with open(settings.roster, encoding="utf-8-sig", newline="") as handle:
        roster = [row["agency"].strip() for row in csv.DictReader(handle) if row.get("agency")]
    present = set(frames.documents["agency_id"].drop_nulls().to_list())
    return [name for name in roster if agency_key(name) not in present]
