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
from audits.parse.report import NOT_A_REPORT
from audits.progress import Stages
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


def audit_batch(
    frames: Frames, book, out: Path, memory: Memory | None = None, extra: dict | None = None, stages: Stages | None = None, workers: int | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """Rules over the batch's frames, then every output file, replacing `out` as one set; returns the
    findings, the resolved ones (jobs) and each report's state for each rule. `workers`: the
    processes a large batch's pages may use (as for parsing; default the cores)."""
    from audits.engines.run import run_rules
    from audits.findings import finding_states, findings_frame, fingerprints
    from audits.outputs import output_set
    from audits.settle import settle_batch

    memory = memory or Memory()
    stages = stages or Stages()
    # Readings of run-together rows that the agency's other reports settle; in place, so that what
    # the caller keeps (a job's results store) is what the rules judged.
    settled = settle_batch(frames, book.layouts, memory.history)
    frames.cells, frames.notes = settled.cells, settled.notes
    judging = stages.start("规则", len(book.rules))
    judgement = run_rules(book, frames, memory.history, on_judged=judging.advance)
    findings = findings_frame(judgement.findings)
    findings = findings.with_columns(fingerprints(findings, frames.documents))
    resolved = None
    if memory.previous is not None:
        findings, resolved = finding_states(findings, memory.previous, frames.documents)
    if memory.decisions:
        findings = with_decisions(findings, memory.decisions)
    run = {"documents": frames.documents.height, "findings": findings.height, "rules": len(book.rules), "rules_version": book.version}
    with output_set(out, run) as staging:
        _write_outputs(staging, frames, findings, resolved, judgement, book, extra, stages, workers)
    stages.close()
    return findings, resolved, judgement.statuses


def _write_outputs(folder: Path, frames: Frames, findings: pl.DataFrame, resolved, judgement, book, extra: dict | None, stages: Stages, workers: int | None) -> None:
    import json

    from audits.outputs import CELL_COLUMNS, DOCUMENT_COLUMNS, FINDING_COLUMNS, write_table, write_text, write_workbook
    from audits.render import EXPORTS, render_all, run_info
    from audits.rulebook import catalogue

    exports = EXPORTS + ([("resolved.csv", "已解决的问题（CSV）")] if resolved is not None else [])
    run = run_info(book, frames.documents.height, exports)
    # The renderer writes every page in one call and reports nothing as it goes: the stage shows
    # how many agencies' pages are being written and ends when all are.
    rendering = stages.start("页面", None)
    pages = render_all(frames, findings, judgement.statuses, book, folder, extra, run, processes=workers)
    rendering.advance(pages["html"].n_unique() if "html" in pages.columns else 0)
    rendering.set_total(rendering.done)
    documents = frames.documents.join(pages, on="source", how="left")
    tables = [(findings, "findings", FINDING_COLUMNS)]
    if resolved is not None:
        tables.append((resolved, "resolved", [c for c in FINDING_COLUMNS if c in resolved.columns]))
    tables += [(documents, "documents", DOCUMENT_COLUMNS), (frames.cells, "cells", CELL_COLUMNS)]
    writing = stages.start("输出", 3 + 2 * len(tables))
    write_text(folder / "gx_validation.json", json.dumps(judgement.validations, ensure_ascii=False, indent=1, default=str))
    writing.advance()
    write_text(folder / "rules.html", catalogue.render(book, run))
    writing.advance()
    for frame, stem, columns in tables:
        write_table(frame, folder, stem, columns)
        writing.advance(2)  # its CSV and its Parquet
    write_workbook(folder / "findings.xlsx", findings, documents, {r.id: r.title for r in book.rules})
    writing.advance()


class NoDocuments(ValueError):
    """The inputs hold no annual report to audit (spec: exit status 2, with a message saying so)."""


def run_audit(inputs: list[Path], rules_dir: Path, out: Path, workers: int | None = None, settings=None, stages: Stages | None = None, cluster=None) -> AuditResult:
    """`audits run`: the whole audit of the given files (or the samples); writes into `out`. With
    `cluster` (`audits.cluster.connect`), the files are parsed on the cluster's workers."""
    from audits.engines import gx_engine
    from audits.rulebook.book import load_rulebook

    gx_engine.warm_up_in_background()  # first: a small run waits for this import more than for anything
    stages = stages or Stages()
    book = load_rulebook(rules_dir)
    finding = stages.start("查找文件")
    found = find_documents(inputs)
    finding.advance(len(found.documents))
    finding.set_total(len(found.documents))
    if not found.documents:
        stages.close()
        raise NoDocuments(f"输入中没有可审核的文档：{'、'.join(map(str, inputs))}" + (f"（{len(found.skipped)} 个文件都不是文档，已跳过）" if found.skipped else "（没有文件）"))
    parsing = stages.start("解析", len(found.documents))
    budget = settings.limits.budget() if settings is not None else Budget()
    frames, _ = parse_batch(found.documents, rules_dir / "templates", workers=workers, on_progress=parsing.advance, budget=budget, cluster=cluster)
    frames, attached = fold_attachments(frames)
    docs = frames.documents
    if docs.filter((pl.col("status") != "failed") | (pl.col("problems") != NOT_A_REPORT)).is_empty():
        stages.close()
        raise NoDocuments(f"输入中没有年度报告：读到的 {docs.height} 个文件都不是政府信息公开工作年度报告（{'、'.join(map(str, inputs))}）")
    extra = {"unreported": unreported(settings, frames), "regions": roster_regions(settings)} if settings is not None else None
    findings, _, statuses = audit_batch(frames, book, out, extra=extra, stages=stages, workers=workers)
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
