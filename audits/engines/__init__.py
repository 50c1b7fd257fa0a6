"""The two validation backends behind one rule model; `checks.ENGINE_OF` says which runs what."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from audits.checks import ENGINE_OF
from audits.frames import Frames
from audits.model import Finding
from audits.rulebook import Rulebook


def run_rules(book: Rulebook, frames: Frames, out: Path | None = None, history: pl.DataFrame | None = None) -> list[Finding]:
    """Every rule once, over the frames of the whole batch (and earlier runs' cells for cross-year rules)."""
    from audits.engines import gx_engine, pandera_engine

    by_engine: dict[str, list] = {"pandera": [], "great_expectations": []}
    for rule in book.rules:
        by_engine[ENGINE_OF[rule.check.kind]].append(rule)
    # The engines share nothing but the (read-only) frames, so they run side by side: most of
    # pandera's work is in Polars, which releases the GIL, while GX holds it in pandas and Python.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx") as pool:
        gx_findings = pool.submit(gx_engine.run, by_engine["great_expectations"], frames, book, out)
        findings = pandera_engine.run(by_engine["pandera"], frames, book, history)
        return findings + gx_findings.result()
