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
  have different years (an agency page with several years, and cross-year rules with pairs);
- each report names its own agency in its text: wherever the parsed report printed its agency, its
  region or its department (title, lines, section titles, snippets, notes), the replica prints its
  own (`vary` off: the base report's names, as parsed);
- 0.5 % of reports (`vary`): copied from another agency's report with that agency's names left in
  their text (the replica of the same base report one copy earlier, another agency).
"""

from __future__ import annotations

import math
import random
import re
import time

import polars as pl

from audits.frames import Frames

FRAME_NAMES = ("documents", "cells", "sections", "lines", "snippets", "notes")
# Where a report prints names: the text columns of each frame.
TEXT_COLUMNS = {"documents": ("title",), "sections": ("title",), "lines": ("text",), "snippets": ("text", "value"), "notes": ("detail",)}
# Marks put in the base reports' texts where they print their agency, region or department; each
# replica's own names replace them. Control characters: no parsed text holds them.
MARKS = {"_agency": "\x01A\x02", "_region": "\x01R\x02", "_rest": "\x01D\x02"}
COPIED = (200, 37)  # report g with g % 200 == 37 prints the names of another agency's report


def agency_pool(count: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """`count` distinct generated agencies: (name, region, the rest)."""
    from benchmarks.synth import new_agency

    rng = random.Random(seed)
    names: dict[str, tuple[str, str, str]] = {}
    while len(names) < count:
        agency = new_agency(rng)
        names.setdefault(agency[0], agency)
    return list(names.values())


def _agency_columns(agencies: list[tuple[str, str, str]]) -> pl.DataFrame:
    from audits.parse.report import agency_kind

    try:
        from audits.identity import agency_key
    except ImportError:  # older checkouts have no agency identity
        agency_key = None
    names = [a[0] for a in agencies]
    data = {
        "_a": list(range(len(names))), "agency": names, "agency_kind": [agency_kind(n) for n in names],
        "_agency": names, "_region": [a[1] for a in agencies], "_rest": [a[2] for a in agencies],
    }
    if agency_key is not None:
        data["agency_id"] = [agency_key(n) for n in names]
    return pl.DataFrame(data, schema_overrides={"_a": pl.Int64})


def name_parts(agency: str | None) -> tuple[str, str, str]:
    """(name, region, the rest) of a parsed agency name, split as the synthetic reports were made."""
    from benchmarks.synth import _ADMIN

    agency = agency or ""
    m = _ADMIN.match(agency)
    region, rest = (m.group(1), m.group(2)) if m else ("", agency)
    return agency, region, rest


def _name_pattern(agency: str | None) -> re.Pattern | None:
    """The names a base report prints for itself, longest first: its agency, its region (2+
    characters), its department (3+ characters, not a bare 人民政府, which names other governments too)."""
    name, region, rest = name_parts(agency)
    forms = {}
    if len(name) >= 2:
        forms[name] = MARKS["_agency"]
    if region and region != name and len(region) >= 2:
        forms[region] = MARKS["_region"]
    if len(rest) >= 3 and rest != name and rest != "人民政府":
        forms[rest] = MARKS["_rest"]
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))), forms


def mark_names(frames: Frames) -> Frames:
    """The base frames with each report's own names in its texts replaced by MARKS (Python, over
    the few hundred base reports only)."""
    patterns = {str(s): _name_pattern(a) for s, a in frames.documents.select(pl.col("source").cast(pl.Utf8), "agency").iter_rows()}

    def mark(source: str, text: str | None) -> str | None:
        found = patterns.get(source)
        if text is None or found is None:
            return text
        pattern, forms = found
        return pattern.sub(lambda m: forms[m.group(0)], text)

    out = {}
    for name in FRAME_NAMES:
        frame = getattr(frames, name)
        columns = [c for c in TEXT_COLUMNS.get(name, ()) if c in frame.columns]
        if columns:
            sources = frame["source"].cast(pl.Utf8).to_list()
            frame = frame.with_columns(
                pl.Series(c, [mark(s, t) for s, t in zip(sources, frame[c].to_list())], dtype=frame.schema[c]) for c in columns
            )
        out[name] = frame
    return Frames(**out)


def replicate(frames: Frames, n: int, agencies: int | None = None, vary: bool = True) -> tuple[Frames, dict]:
    """Frames of `n` reports from `frames` (see the module doc); returns them and what was done."""
    t0 = time.perf_counter()
    original_frames = frames
    frames = mark_names(frames)
    base = frames.documents.height
    copies = math.ceil(n / base)
    index = frames.documents.select("source").with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64))
    own = pl.DataFrame([name_parts(a) for a in frames.documents["agency"].to_list()], schema=list(MARKS), orient="row")
    index = pl.concat([index, own], how="horizontal")
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
            .drop(list(MARKS))
        )

    docs = grow(frames.documents).join(index.lazy().select("_i", *MARKS), on="_i", how="left")
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
            .drop(list(MARKS))
            .join(pool.lazy(), on="_a", how="left")
            .drop("_rank", "_a")
        )
        done["agencies"] = agencies
    # The names each report prints: its own, or (copied) those of the replica one copy earlier.
    names = docs.select("_g", *MARKS).collect()
    if vary:
        every, at = COPIED
        earlier = names.select((pl.col("_g") + base).alias("_g"), *(pl.col(c).alias(c + "_from") for c in MARKS))
        copied = (pl.col("_g") % every == at) & (pl.col("_g") >= base)
        names = names.join(earlier, on="_g", how="left").select(
            "_g", *(pl.when(copied).then(pl.col(c + "_from")).otherwise(pl.col(c)).alias(c) for c in MARKS)
        )
        done["varied"]["copied_from_another_agency"] = f"{100 / every:g}%"
    docs = docs.drop(list(MARKS))

    def printed(lf: pl.LazyFrame, name: str) -> pl.LazyFrame:
        columns = TEXT_COLUMNS.get(name, ())
        if not columns:
            return lf
        lf = lf.join(names.lazy(), on="_g", how="left")
        for column in columns:
            text = pl.col(column)
            for part, mark in MARKS.items():
                text = text.str.replace_all(mark, pl.col(part).fill_null(""), literal=True)
            lf = lf.with_columns(text.alias(column))
        return lf.drop(list(MARKS))

    drop = ["_i", "_r", "_g", "_k", "_o"]
    out = {}
    for name, lf in zip(FRAME_NAMES, (docs, cells, sections, lines, snippets, notes)):
        original = getattr(original_frames, name).columns
        lf = printed(lf, name)
        df = lf.sort("_g", "_o").drop([c for c in drop if c in lf.collect_schema().names()]).collect()
        out[name] = df.select(original).cast(dict(getattr(original_frames, name).schema))  # as build_frames types them
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
