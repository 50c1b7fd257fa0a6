"""Frames of many reports made from the frames of a few hundred parsed ones, in Polars.

Parsing 50,000 files to benchmark the rules or the HTML would measure the parser again; instead a
few hundred synthetic reports are parsed once and their frames replicated: replica r of report i
gets the source `…#r` and global index g = r·B + i (B base reports), so every report is distinct.
Some values are varied by g (deterministically) so that rules have something to find:

- 5 % of reports: one table cell is off by one (identity rules);
- 2 % of reports: published 100 days later (timeliness);
- 2.5 % of reports: no phone, e-mail or address snippet (contact);
- 1 % of reports: the fifth section (存在的主要问题) is missing (sections);
- agencies come from a pool of `agencies` generated names, assigned so that one agency's reports
  have different years (an agency page with several years, and cross-year rules with pairs).
"""

from __future__ import annotations

import math
import random
import time

import polars as pl

from audits.frames import Frames

FRAME_NAMES = ("documents", "cells", "sections", "lines", "snippets", "notes")


def agency_pool(count: int, seed: int = 7) -> list[str]:
    """`count` distinct generated agency names."""
    from benchmarks.synth import new_agency

    rng = random.Random(seed)
    names: dict[str, None] = {}
    while len(names) < count:
        names.setdefault(new_agency(rng)[0], None)
    return list(names)


def _agency_columns(names: list[str]) -> pl.DataFrame:
    from audits.parse.report import agency_kind

    try:
        from audits.identity import agency_key
    except ImportError:  # older checkouts have no agency identity
        agency_key = None
    data = {"_a": list(range(len(names))), "agency": names, "agency_kind": [agency_kind(n) for n in names]}
    if agency_key is not None:
        data["agency_id"] = [agency_key(n) for n in names]
    return pl.DataFrame(data, schema_overrides={"_a": pl.Int64})


def replicate(frames: Frames, n: int, agencies: int | None = None, vary: bool = True) -> tuple[Frames, dict]:
    """Frames of `n` reports from `frames` (see the module doc); returns them and what was done."""
    t0 = time.perf_counter()
    base = frames.documents.height
    copies = math.ceil(n / base)
    index = frames.documents.select("source").with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64))
    reps = pl.DataFrame({"_r": list(range(copies))}, schema={"_r": pl.Int64})
    g = pl.col("_r") * base + pl.col("_i")
    new_source = pl.concat_str([pl.col("source"), pl.lit("#"), pl.col("_r").cast(pl.Utf8).str.zfill(5)])

    def grow(frame: pl.DataFrame, extra: list[pl.Expr] | None = None) -> pl.LazyFrame:
        # `_o` keeps each report's rows in their parsed order (joins do not promise an order, and
        # some rules read sentences in order).
        lf = frame.lazy().with_row_index("_o")
        if extra:
            lf = lf.with_columns(extra)
        return (
            lf.join(index.lazy(), on="source", how="inner")
            .join(reps.lazy(), how="cross")
            .filter(g < n)
            .with_columns(g.alias("_g"), new_source.alias("source"))
        )

    docs = grow(frames.documents)
    cells = grow(frames.cells, [pl.int_range(pl.len()).over("source").alias("_k")])
    sections = grow(frames.sections)
    lines = grow(frames.lines)
    snippets = grow(frames.snippets)
    notes = grow(frames.notes)
    done = {"base_reports": base, "copies": copies}
    if vary:
        g_ = pl.col("_g")
        bump = ((g_ % 20) == 3) & (pl.col("_k") == (g_ * 7) % 150) & pl.col("value").is_not_null()
        cells = cells.with_columns(pl.when(bump).then(pl.col("value") + 1).otherwise(pl.col("value")).alias("value"))
        docs = docs.with_columns(
            pl.when((g_ % 50) == 11).then(pl.col("published") + pl.duration(days=100)).otherwise(pl.col("published")).alias("published")
        )
        snippets = snippets.filter(~(((g_ % 40) == 17) & pl.col("kind").is_in(["phone", "email", "address"])))
        sections = sections.filter(~(((g_ % 100) == 23) & (pl.col("position") == 4)))
        done["varied"] = {"cell_off_by_one": "5%", "published_late": "2%", "no_contact": "2.5%", "section_missing": "1%"}
    if agencies:
        pool = _agency_columns(agency_pool(agencies))
        # One agency's reports have different years: the reports of each year take the next free
        # places around a circle of A agencies (year after year), so a year's reports never share
        # an agency while a year has at most A reports, and every agency gets about n/A reports.
        per_year = (
            docs.group_by("report_year").agg(pl.len().alias("_n")).sort("report_year", nulls_last=True)
            .with_columns((pl.col("_n").cum_sum() - pl.col("_n")).alias("_offset")).drop("_n")
        )
        docs = (
            docs.with_columns(pl.int_range(pl.len()).over("report_year", order_by="_g").alias("_rank"))
            .join(per_year, on="report_year", how="left", nulls_equal=True)
            .with_columns(((pl.col("_rank") + pl.col("_offset")) % agencies).alias("_a"))
            .drop("_offset")
            .drop([c for c in pool.columns if c != "_a" and c in frames.documents.columns])
            .join(pool.lazy(), on="_a", how="left")
            .drop("_rank", "_a")
        )
        done["agencies"] = agencies
    drop = ["_i", "_r", "_g", "_k", "_o"]
    out = {}
    for name, lf in zip(FRAME_NAMES, (docs, cells, sections, lines, snippets, notes)):
        original = getattr(frames, name).columns
        df = lf.sort("_g", "_o").drop([c for c in drop if c in lf.collect_schema().names()]).collect()
        out[name] = df.select(original).cast(dict(getattr(frames, name).schema))  # as build_frames types them
    result = Frames(**out)
    done["reports"] = result.documents.height
    done["distinct_sources"] = result.documents["source"].n_unique()
    done["distinct_agencies"] = result.documents["agency"].n_unique()
    done["seconds"] = round(time.perf_counter() - t0, 2)
    done["rows"] = {name: getattr(result, name).height for name in FRAME_NAMES}
    done["mb"] = round(sum(getattr(result, name).estimated_size("mb") for name in FRAME_NAMES), 1)
    return result, done


def base_frames(n_base: int, seed: int, workers: int = 2) -> tuple[Frames, dict]:
    """Parse the first `n_base` synthetic reports once (generating them if needed)."""
    from audits.workers import parse_batch
    from benchmarks import synth
    from benchmarks.common import TEMPLATES_DIR

    out = synth.default_dir(n_base, seed)
    synth.generate(n_base, out, seed, jobs=2, quiet=True)
    t0 = time.perf_counter()
    result = parse_batch(synth.files(out), TEMPLATES_DIR, workers=workers)
    frames = result[0] if isinstance(result, tuple) else result
    return frames, {"base_reports": frames.documents.height, "parse_s": round(time.perf_counter() - t0, 2), "dir": str(out)}
