"""Every rule once over the batch: measure (Polars), judge (the kind's engine), build the findings.

Each report gets a state for each rule — failed, passed, not applicable or undetermined, with why —
so that a rule that could not be evaluated is never shown as passed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import polars as pl

from audits.findings import build
from audits.frames import KEY, Frames
from audits.kinds import Batch, Measure
from audits.kinds.base import NOT_APPLICABLE, UNDETERMINED
from audits.model import Finding
from audits.rulebook.book import Rule, Rulebook

FAILED, PASSED = "failed", "passed"
STATUS_SCHEMA = {"source": KEY, "rule_id": pl.Utf8, "state": pl.Utf8, "reason": pl.Utf8}


@dataclass
class Judgement:
    findings: list[Finding]
    statuses: pl.DataFrame  # source, rule_id, state, reason: every report × every rule
    validations: list[dict] = field(default_factory=list)  # what gx_validation.json keeps


def run_rules(book: Rulebook, frames: Frames, history: pl.DataFrame | None = None, on_judged=None) -> Judgement:
    """Every rule of `book` over the batch's frames (and earlier runs' cells for cross-year rules).
    `on_judged(n)` is told as rules are judged (from two threads)."""
    on_judged = on_judged or (lambda n: None)
    from audits.engines import gx_engine, pandera_engine

    batch = Batch(frames, book.layouts, history, book.earlier)
    by_engine: dict[str, list[Rule]] = {}
    for rule in book.rules:
        by_engine.setdefault(rule.engine, []).append(rule)

    def gx_part() -> tuple[dict[str, Measure], dict[str, list[int]], list[dict]]:
        measures = {r.id: _measure(r, batch) for r in by_engine.get("great_expectations", [])}
        failures, records = gx_engine.judge({rid: (m.judged, m.verdicts) for rid, m in measures.items()}) if measures else ({}, [])
        on_judged(len(measures))  # GX validates its rules in one suite
        return measures, failures, records

    # The engines share nothing but the (read-only) frames, so they run side by side: most of
    # pandera's work is in Polars, which releases the GIL, while GX holds it in pandas and Python.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx") as pool:
        gx_future = pool.submit(gx_part)
        measures, failures = {}, {}
        for rule in by_engine.get("pandera", []):
            measures[rule.id] = measure = _measure(rule, batch)
            failures[rule.id] = pandera_engine.judge(measure.judged, measure.verdicts)
            on_judged(1)
        gx_measures, gx_failures, validations = gx_future.result()
    measures |= gx_measures
    failures |= gx_failures

    docs = {str(r["source"]): r for r in frames.documents.select("source", "agency", "report_year", "template").iter_rows(named=True)}
    findings: list[Finding] = []
    statuses = []
    for rule in book.rules:
        measure = measures[rule.id]
        failing = measure.judged[failures.get(rule.id, [])]
        if not failing.is_empty():
            findings += build(rule, measure.explain(failing), docs, batch.labels)
        statuses.append(_statuses(rule, measure, failing, frames.documents))
    return Judgement(findings, pl.concat(statuses) if statuses else pl.DataFrame(schema=STATUS_SCHEMA), validations)


def _measure(rule: Rule, batch: Batch) -> Measure:
    """The rule's measure over the reports it applies to; the others are marked not applicable, and
    reports that could not be read undetermined (unless reading is the rule's business)."""
    kind = type(rule.check)
    docs = batch.frames.documents
    earlier = pl.col("template").is_in(list(batch.earlier)) & pl.lit(not rule.applies_to.earlier_formats)
    applicable = docs.filter(rule.applies_to.expr() & ~earlier)
    outside = docs.join(applicable.select("source"), on="source", how="anti")
    before_unified = "、".join(f.title for f in batch.earlier.values())
    reason = pl.when(earlier).then(pl.lit(f"报告采用统一格式施行之前的格式（{before_unified}），不按统一格式核对")).otherwise(pl.lit(rule.applies_to.describe()))
    skipped = [outside.select(pl.col("source").cast(KEY), pl.lit(NOT_APPLICABLE).alias("state"), reason.alias("reason"))]
    if not kind.judges_unreadable:
        skipped.append(_state(applicable.filter(pl.col("status") == "failed"), UNDETERMINED, "文件无法读取，未能核对"))
        applicable = applicable.filter(pl.col("status") != "failed")
    measure = rule.check.measure(batch, applicable)
    unexpected = [v for v in measure.verdicts if type(v) not in kind.verdicts]
    if unexpected:
        raise TypeError(f"kind {kind.name()} measured verdicts it does not declare: {unexpected}")
    measure.unjudged = pl.concat([measure.unjudged.select(_STATE_COLUMNS), *skipped], how="vertical_relaxed")
    return measure


_STATE_COLUMNS = ["source", "state", "reason"]


def _state(docs: pl.DataFrame, state: str, reason: str) -> pl.DataFrame:
    return docs.select(pl.col("source").cast(KEY), pl.lit(state).alias("state"), pl.lit(reason).alias("reason"))


def _statuses(rule: Rule, measure: Measure, failing: pl.DataFrame, documents: pl.DataFrame) -> pl.DataFrame:
    """Each report's state for the rule: failed over passed over not judged; a report the measure
    forgot is undetermined, never passed."""
    failed = failing.select(pl.col("source").cast(KEY)).unique().with_columns(pl.lit(FAILED).alias("state"), pl.lit("").alias("reason"))
    passed = measure.judged.select(pl.col("source").cast(KEY)).unique().with_columns(pl.lit(PASSED).alias("state"), pl.lit("").alias("reason"))
    forgotten = _state(documents, UNDETERMINED, "本规则未对此报告作出判断")
    ordered = pl.concat([failed, passed, measure.unjudged.select(_STATE_COLUMNS), forgotten], how="vertical_relaxed")
    return ordered.unique("source", keep="first", maintain_order=True).select(pl.col("source"), pl.lit(rule.id).alias("rule_id"), "state", "reason")
