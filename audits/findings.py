"""Findings are data: built from a measure's facts, their message and evidence rendered from them.

The facts of a finding (the cells it rests on, the sentence it quotes and its line, what was
observed and expected, the kind's placeholders) come from the measure's `explain`. The message is
the rule's template filled with the placeholders; the evidence is written from the facts in a
fixed order: what was found, the quoted sentence with its line, the cells by their printed labels
with their values, and any caveats. Nothing downstream parses either back.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from audits.model import CellRef, Finding
from audits.rulebook.book import PLACEHOLDER, Rule
from audits.vocabulary import Labels, number

SHOWN_CELLS = 12  # cells written into the evidence (the finding keeps every one)


def build(rule: Rule, facts: pl.DataFrame | list[dict], docs: dict[str, dict], labels: Labels) -> list[Finding]:
    """One finding per row of facts (`docs`: source → its document row)."""
    rows = facts.iter_rows(named=True) if isinstance(facts, pl.DataFrame) else facts
    out = []
    for row in rows:
        doc = docs[str(row["source"])]
        template = doc.get("template")
        cells = tuple(_cell(c) for c in row.get("cells") or ())
        placeholders = {k[2:]: v for k, v in row.items() if k.startswith("p.")}
        line = row.get("line")
        quote = row.get("quote") or ""
        out.append(
            Finding(
                source=str(row["source"]),
                agency=doc.get("agency") or "",
                report_year=doc.get("report_year"),
                rule_id=rule.id,
                category=rule.category,
                severity=row.get("severity") or rule.severity,
                message=render_message(rule.message, placeholders),
                evidence=_evidence(row.get("detail"), quote, line, cells, row.get("caveats") or [], labels, template),
                cells=cells,
                line=line,
                quote=quote,
                observed=row.get("observed") or "",
                expected=row.get("expected") or "",
                passages=tuple(row.get("passages") or ()),
            )
        )
    return out


def _cell(c) -> CellRef:
    """A cell fact: a CellRef already, or a dict (a struct read back from Polars)."""
    if isinstance(c, CellRef):
        return c
    return CellRef(c["table"], c["row"], c["col"], c.get("value"), c.get("raw") or "", str(c.get("flag") or ""), bool(c.get("previous")))


def render_message(template: str, placeholders: dict) -> str:
    """`{name}` → its value (placeholders were checked against the kind's when the rules loaded)."""
    return PLACEHOLDER.sub(lambda m: number(placeholders.get(m.group(1))), template)


def _evidence(detail, quote: str, line, cells: tuple[CellRef, ...], caveats: list[str], labels: Labels, template) -> str:
    parts = [detail] if detail else []
    if quote:
        parts.append(f"第{line}行：“{quote}”")
    shown = [c for c in cells if c.col][:SHOWN_CELLS]
    if shown:
        listed = "，".join(f"{_name(c, labels, template)} = {c.raw or number(c.value)}" for c in shown)
        more = sum(1 for c in cells if c.col) - len(shown)
        parts.append(listed + (f" 等 {len(shown) + more} 个" if more else ""))
    parts.extend(caveats)
    return "；".join(parts)


def _name(cell: CellRef, labels: Labels, template) -> str:
    name = labels.cell(cell.table, cell.row, cell.col, template)
    return f"上一年度{name}" if cell.previous else name


FINDING_SCHEMA = {
    "source": pl.Utf8, "agency": pl.Utf8, "report_year": pl.Int32, "rule_id": pl.Utf8, "category": pl.Utf8,
    "severity": pl.Utf8, "message": pl.Utf8, "evidence": pl.Utf8, "cells": pl.Utf8, "line": pl.Int32,
    "quote": pl.Utf8, "observed": pl.Utf8, "expected": pl.Utf8, "passages": pl.Utf8,
}


def findings_frame(findings: list[Finding]) -> pl.DataFrame:
    """The findings as the output files hold them: the spec's columns, then cells (keys joined with
    `;`), line, quote, observed, expected, passages (JSON, for copied text); errors first within each report."""
    rows = [
        (f.source, f.agency, f.report_year, f.rule_id, f.category, f.severity, f.message, f.evidence,
         ";".join(c.key for c in f.cells), f.line, f.quote, f.observed, f.expected,
         json.dumps(list(f.passages), ensure_ascii=False) if f.passages else None)
        for f in findings
    ]
    order = pl.col("severity").replace_strict({"error": 0, "warning": 1, "info": 2}, default=3)
    # Every column that tells two findings apart decides their order, so that a run gives the same
    # files whatever order the engines (or the cluster's chunks) produced them in.
    keys = ["source", order, "rule_id", "cells", "line", "message", "evidence", "quote"]
    return pl.DataFrame(rows, schema=FINDING_SCHEMA, orient="row").sort(keys, nulls_last=True, maintain_order=True)


# Across runs: a finding's identity, and which are new, still open or resolved -------------------


def fingerprints(findings: pl.DataFrame, documents: pl.DataFrame) -> pl.Series:
    """A finding's stable identity: agency, report year, rule, and the cells or sentence involved.

    Not the message, the run or the file path, so it survives re-runs and re-downloads.
    """
    ids = dict(zip(documents["source"].to_list(), documents["agency_id"].to_list()))
    values = []
    for row in findings.iter_rows(named=True):
        subject = row["cells"] or row["quote"] or ""
        key = "|".join([ids.get(row["source"]) or row["source"], str(row["report_year"]), row["rule_id"], subject])
        values.append(hashlib.sha1(key.encode("utf-8")).hexdigest()[:16])
    return pl.Series("fingerprint", values, dtype=pl.Utf8)


def finding_states(current: pl.DataFrame, previous: pl.DataFrame, audited: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`current` with `state` (new / open), and the previous findings now resolved.

    A previous finding is resolved only when its agency and year were read again and it is gone. A
    report that could not be read this time (download failed, file unreadable) resolves nothing:
    its agency's previous findings stay open, carried over to the document that failed.
    """
    keys = ["agency_id", "report_year"]
    before = set(previous["fingerprint"].to_list())
    now = current.with_columns(pl.when(pl.col("fingerprint").is_in(list(before))).then(pl.lit("open")).otherwise(pl.lit("new")).alias("state"))
    gone = previous.filter(~pl.col("fingerprint").is_in(current["fingerprint"].to_list()))
    read = audited.filter(pl.col("status") != "failed").select(keys).unique()
    unread = (
        audited.filter(pl.col("status") == "failed").join(read, on=keys, how="anti")
        .unique(keys, keep="first", maintain_order=True)
        .select(*keys, pl.col("source").cast(pl.Utf8), "agency")
    )
    kept = gone.drop("source").join(unread, on=keys).with_columns(pl.lit("open").alias("state"))
    # What the store does not keep (the cells, the line) is left empty on the carried findings.
    now = pl.concat([now, kept], how="diagonal_relaxed").select(now.columns).sort("source", maintain_order=True)
    resolved = gone.join(read, on=keys, how="semi").with_columns(pl.lit("resolved").alias("state"))
    return now, resolved
