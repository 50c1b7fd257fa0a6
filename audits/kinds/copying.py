"""Copied text: a section repeated from the same agency's earlier report, and passages taken from
another agency's report with its name left in.

Text is compared as reviewers read it for copying: Han characters and Latin letters only (numbers,
punctuation and spaces left out, so a report copied with its numbers changed still reads as
copied). Findings carry both passages, the differences marked, for the page to show side by side.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator, Literal

import numpy as np
import polars as pl
from pydantic import Field

from audits.engines.verdicts import Between
from audits.frames import KEY
from audits.kinds.base import NOT_APPLICABLE, UNDETERMINED, Batch, Kind, Measure, Problem, Scope, unjudged
from audits.kinds.narrative import _sections_problems, name_relation, narrative, sentences_of

COMPARED = r"[^\p{Han}A-Za-z]"  # what comparison leaves out


def compared(text: pl.Expr) -> pl.Expr:
    """The text as compared: Han characters and Latin letters only."""
    return text.str.replace_all(COMPARED, "")


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


# Sections repeated from the agency's earlier report -------------------------------------------


class RepeatedSections(Kind):
    kind: Literal["repeated_sections"]
    sections: list[str]
    threshold: float = Field(0.9, gt=0, le=1)  # share of this year's text found in the earlier report
    min_chars: int = 60  # a shorter section (in compared characters) is not judged
    within_years: int = Field(1, ge=1)  # the earlier report may be this many years back

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "sentences"
    title = "部分内容照搬本机关此前报告"
    description = (
        "sections 所列部分与同一机关此前报告（批次中 within_years 年内最近的一份）的同一部分比较，去掉数字、标点和空格后，"
        "本年该部分中落在与此前报告相同的连续 8 字以上片段里的字数比例即重复率；重复率超过 threshold 即不通过。"
        "本年该部分少于 min_chars 个字不判断；找不到此前报告时不适用。"
    )
    example = "kind: repeated_sections\nsections: [overview, problems]\nthreshold: 0.9\nmin_chars: 60"

    def placeholders(self) -> dict[str, str]:
        return {
            "section": "所比较的部分（如“五、存在的主要问题及改进情况”）",
            "share": "重复率（如“96%”）",
            "previous_year": "所比较的此前报告的年度",
        }

    def references(self, scope: Scope) -> Iterator[Problem]:
        yield from _sections_problems(self.sections, scope)

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        pairs = earlier_reports(batch, docs, self.within_years)
        involved = pl.concat([pairs["source"], pairs["previous"].alias("source")]).unique()
        texts = section_texts(batch, self.sections, involved)
        mine = texts.join(pairs, on="source").filter(pl.col("text").str.len_chars() >= self.min_chars)
        theirs = texts.select(pl.col("source").alias("previous"), "section", pl.col("text").alias("earlier"))
        both = mine.join(theirs, on=["previous", "section"])
        # Each distinct pair of texts is measured once (a section copied unchanged into several
        # reports, or the same report compared twice, is one pair).
        distinct = both.select("text", "earlier").unique(maintain_order=True)
        measured = distinct.with_columns(shares(distinct["text"].to_list(), distinct["earlier"].to_list(), self.threshold - _MARGIN))
        judged = (
            both.join(measured, on=["text", "earlier"], how="left")
            .with_columns(pl.col("text").str.len_chars().alias("chars"))
            .select("source", "section", "previous", "report_year", "previous_year", "chars", "share", "estimate")
            .sort("source", "section")
        )
        rest = pl.concat(
            [
                unjudged(pairs, judged["source"], UNDETERMINED, "所比较的部分在本报告或此前报告中没有找到，或字数太少"),
                unjudged(docs, pairs["source"], NOT_APPLICABLE, f"批次中没有同一机关此前 {self.within_years} 年内的报告"),
            ]
        )

        def explain(failing: pl.DataFrame) -> list[dict]:
            wanted = failing.select("source", "previous", "section")
            shown = pl.concat([wanted.select("source", "section"), wanted.select(pl.col("previous").alias("source"), "section")]).unique()
            texts = narrative(batch, pl.col("source").is_in(shown["source"].implode()), self.sections).join(shown, on=["source", "section"])
            grouped = texts.sort("source", "line", "start").group_by("source", "section", maintain_order=True).agg(pl.col("text"), pl.col("line").min())
            by = {(str(r["source"]), r["section"]): r for r in grouped.iter_rows(named=True)}
            facts = []
            for row in failing.iter_rows(named=True):
                mine_text = by.get((str(row["source"]), row["section"]), {"text": [], "line": None})
                their_text = by.get((str(row["previous"]), row["section"]), {"text": [], "line": None})
                section = batch.labels.section(row["section"])
                facts.append(
                    {
                        "source": row["source"],
                        "line": mine_text["line"],
                        "detail": f"“{section}”共 {row['chars']} 字（不计数字、标点、空格），其中 {_percent(row['share'])} 的文字在 {row['previous_year']} 年度报告的同一部分中连续 {RUN} 字以上原样出现",
                        "observed": _percent(row["share"]),
                        "expected": f"不超过 {_percent(self.threshold)}",
                        "passages": side_by_side(
                            (f"本报告（{row['report_year']} 年度）", "\n".join(mine_text["text"])),
                            (f"{row['previous_year']} 年度报告", "\n".join(their_text["text"])),
                        ),
                        "p.section": section,
                        "p.share": _percent(row["share"]),
                        "p.previous_year": str(row["previous_year"]),
                    }
                )
            return facts

        return Measure(judged, (Between("share", high=self.threshold),), explain, rest)


RUN = 8  # characters: a run this long found in the other text is repeated text
_SAMPLE = 8  # about one run in this many (by its first character) is sampled for the estimate
_MARGIN = 0.4  # pairs whose estimate is this far below the threshold are not measured exactly
_SAMPLED_ENOUGH = 16  # a text with fewer sampled runs is measured exactly, not estimated


def section_texts(batch: Batch, sections: list[str] | None = None, sources: pl.Series | None = None) -> pl.DataFrame:
    """(source, section, text): each section's prose as compared (Han and Latin letters only); of
    the `sections` and `sources` named (all when None)."""

    def compute(pieces: pl.DataFrame) -> pl.DataFrame:
        return (
            pieces.group_by("source", "section", maintain_order=True)
            .agg(compared(pl.col("text")).str.join("").alias("text"))
        )

    if sections is None and sources is None:
        return batch.shared(("section_texts",), lambda: compute(narrative(batch)))
    where = pl.col("source").is_in(sources.implode()) if sources is not None else None
    return compute(narrative(batch, where, sections))


def coverage(text: str, other: str, run: int = RUN) -> float:
    """The share of `text`'s characters that lie in a run of `run` characters also found in `other`."""
    if not text:
        return 0.0
    runs = {other[i : i + run] for i in range(len(other) - run + 1)}
    hit = bytearray(len(text))
    for i in range(len(text) - run + 1):
        if text[i : i + run] in runs:
            hit[i : i + run] = b"\x01" * run
    return sum(hit) / len(text)


def _mix(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(29))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        return h ^ (h >> np.uint64(32))


@lru_cache(maxsize=4)
def _sampled_characters(sample: int) -> np.ndarray:
    """Per Unicode code point, whether a run starting with it is sampled (one in `sample`, by hash)."""
    points = np.arange(0x110000, dtype=np.uint64)
    return _mix(points * np.uint64(0x9E3779B97F4A7C15)) % np.uint64(sample) == 0


def window_hashes(texts: list[str], run: int = RUN, sample: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text index, start, hash) of the runs of `run` characters of each text, vectorised (numpy).

    With `sample` > 1 only the runs whose first character falls in one of `sample` classes (by a
    hash of the character): about one run in `sample`, and the same runs of the same text in any
    text, so two texts' sampled runs can be compared. Hashes are 64-bit (collisions ~2⁻⁶⁴).
    """
    empty = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint64)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    n = int(lengths.sum()) - run + 1
    if n <= 0:
        return empty
    chars = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    ends = np.cumsum(lengths)
    keep = np.ones(n, dtype=bool)
    # A run lies inside one text: none starts in the last run - 1 characters of a text.
    tails = (ends[:, None] - np.arange(1, run, dtype=np.int64)[None, :]).reshape(-1)
    keep[tails[(tails >= 0) & (tails < n)]] = False
    if sample > 1:
        keep &= _sampled_characters(sample)[chars[:n]]
    at = np.flatnonzero(keep)
    h = np.zeros(len(at), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(run):
            h = h * np.uint64(1000003) + chars[at + j]
    owner = np.searchsorted(ends, at, side="right")
    starts = at - (ends - lengths)[owner]
    return owner, starts, _mix(h)


def run_hashes(texts: list[str], run: int = RUN) -> tuple[np.ndarray, np.ndarray]:
    """(text index, hash) of every run of `run` characters of each text."""
    owner, _, h = window_hashes(texts, run)
    return owner, h


def shares(texts: list[str], others: list[str], worth: float) -> list[pl.Series]:
    """`estimate` and `share` for each pair (texts[i], others[i]): the share of the text's characters
    in runs of RUN characters also found in the other text, estimated on sampled runs, and measured
    exactly (`coverages`) where the estimate is at least `worth` or rests on too few runs."""
    if not texts:
        return [pl.Series("estimate", [], pl.Float64), pl.Series("share", [], pl.Float64)]
    distinct = list(dict.fromkeys(texts + others))
    index = {t: i for i, t in enumerate(distinct)}
    pairs = pl.DataFrame({"i": np.arange(len(texts)), "a": [index[t] for t in texts], "b": [index[t] for t in others]})
    owner, _, hashes = window_hashes(distinct, RUN, _SAMPLE)
    sampled = pl.DataFrame({"t": owner, "h": hashes}).unique()
    runs = sampled.group_by("t").len("runs")
    same = pairs.join(sampled.rename({"t": "a"}), on="a").join(sampled.rename({"t": "b"}), on=["b", "h"], how="semi").group_by("i").len("same")
    estimated = (
        pairs.join(runs.rename({"t": "a"}), on="a", how="left", maintain_order="left")
        .join(same, on="i", how="left", maintain_order="left")
        .with_columns(pl.col("runs").fill_null(0), (pl.col("same").fill_null(0) / pl.col("runs")).fill_nan(None).alias("estimate"))
    )
    # A text compared with itself (a section copied unchanged) is covered whole, or not at all when
    # shorter than a run: no need to measure it.
    identical = pl.col("a") == pl.col("b")
    whole = pl.DataFrame({"a": np.arange(len(distinct)), "chars": [len(t) for t in distinct]})
    exact = estimated.filter(~identical & ((pl.col("runs") < _SAMPLED_ENOUGH) | (pl.col("estimate") >= worth)))
    measured = pl.concat(
        [
            coverages(exact.select("i", "a", "b"), distinct),
            estimated.filter(identical).join(whole, on="a").select("i", pl.when(pl.col("chars") >= RUN).then(1.0).otherwise(0.0).alias("share")),
        ]
    )
    out = estimated.join(measured, on="i", how="left", maintain_order="left")
    return [out["estimate"], out["share"]]


def coverages(pairs: pl.DataFrame, texts: list[str], run: int = RUN) -> pl.DataFrame:
    """(i, share): `coverage` of each pair (i, a, b) of indexes into `texts`, in Polars over 64-bit
    run hashes: the runs of text a found in text b, the characters they cover counted once."""
    if pairs.is_empty():
        return pl.DataFrame(schema={"i": pl.Int64, "share": pl.Float64})
    used = pl.concat([pairs["a"], pairs["b"]]).unique().sort().to_list()
    owner, starts, hashes = window_hashes([texts[t] for t in used], run)
    windows = pl.DataFrame({"t": np.asarray(used, dtype=np.int64)[owner], "at": starts, "h": hashes})
    hits = (
        pairs.select("i", "a", "b")
        .join(windows.rename({"t": "a"}), on="a")
        .join(windows.select(pl.col("t").alias("b"), "h").unique(), on=["b", "h"], how="semi")
        .select("i", "at")
        .unique()
        .sort("i", "at")
        # A run covers `run` characters from its start, up to where the next found run starts.
        .with_columns(pl.min_horizontal(pl.col("at").shift(-1).over("i") - pl.col("at"), pl.lit(run)).fill_null(run).alias("covered"))
        .group_by("i")
        .agg(pl.col("covered").sum())
    )
    lengths = pl.DataFrame({"a": np.asarray(used, dtype=np.int64), "chars": [len(texts[t]) for t in used]})
    return (
        pairs.select("i", "a")
        .join(lengths, on="a", how="left")
        .join(hits, on="i", how="left")
        .select("i", pl.when(pl.col("chars") > 0).then(pl.col("covered").fill_null(0) / pl.col("chars")).otherwise(0.0).alias("share"))
    )


def earlier_reports(batch: Batch, docs: pl.DataFrame, within_years: int) -> pl.DataFrame:
    """(source, previous, report_year, previous_year): each report of `docs` with the same agency's
    latest earlier report in the batch, at most `within_years` years before."""
    everyone = batch.frames.documents.filter((pl.col("agency_id").fill_null("") != "") & pl.col("report_year").is_not_null() & (pl.col("status") != "failed"))
    mine = everyone.join(docs.select("source"), on="source", how="semi").select("source", "agency_id", "report_year")
    theirs = everyone.select(pl.col("source").alias("previous"), "agency_id", pl.col("report_year").alias("previous_year"))
    return (
        mine.join(theirs, on="agency_id")
        .filter((pl.col("previous_year") < pl.col("report_year")) & (pl.col("previous_year") >= pl.col("report_year") - within_years))
        .sort("source", "previous_year", descending=[False, True])
        .unique("source", keep="first", maintain_order=True)
        .select("source", "previous", "report_year", "previous_year")
    )


def side_by_side(mine: tuple[str, str], theirs: tuple[str, str]) -> list[dict]:
    """Two passages for the page, each a title and its text; the page marks their differences
    (`audits.passages.marked`), so a measure does not diff every copy it finds."""
    return [{"title": mine[0], "text": mine[1]}, {"title": theirs[0], "text": theirs[1]}]


# Passages taken from another agency's report ----------------------------------------------------

# 市 of 市场 (市场监督管理局) is a market, not a city: cut there, every market bureau would be named
# by 场监督管理局 and its county by 海庆县市.
_PLACE_END = re.compile(r"(省|自治区|市(?!场)|自治州|州|盟|地区|区|县|旗|镇|乡|街道)")
# Forms too common to say which agency a passage came from.
_GENERIC = {"人民政府", "政府", "管委会", "办公室", "委员会", "街道办事处"}


def name_forms(agency: str) -> list[str]:
    """The ways a report names its agency or its place: the full name; what follows the last
    place word (财政金融局 of 平潭综合实验区财政金融局); each place prefix (淮安市, 淮安市洪泽区)."""
    agency = re.sub(r"\s+", "", agency or "")
    if len(agency) < 3:
        return []
    forms = {agency, agency.replace("人民政府", "政府")}
    ends = [m.end() for m in _PLACE_END.finditer(agency)]
    if ends:
        tail = agency[ends[-1]:]
        if len(tail) >= 3 and tail not in _GENERIC:
            forms.add(tail)
        forms.update(agency[:e] for e in ends if e >= 3)
    return sorted(f for f in forms if len(f) >= 3)


class CopiedPassages(Kind):
    kind: Literal["copied_passages"]
    similarity: float = Field(0.7, gt=0, le=1)  # Jaccard similarity of their 5-character runs
    min_chars: int = 30  # shorter passages (compared characters) are not compared
    max_agencies: int = 20  # a passage near-identical in more agencies' reports is common wording
    num_perm: int = 64
    bands: int = 16

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "sentences"
    title = "照搬其他机关报告的段落"
    description = (
        "批次中不同机关报告里近乎相同的句段（MinHash/LSH 找出候选，再按 5 字片段的 Jaccard 相似度不低于 similarity 确认），"
        "本报告的那一段写有对方机关的名称、地名或对方报告的年份而不是本机关的，即不通过。"
        "只是共用的规范用语（不含对方名称）不算；同一句段出现在 max_agencies 个以上机关的报告中视为通用写法，不比较。"
    )
    example = "kind: copied_passages\nsimilarity: 0.7\nmin_chars: 30"

    def placeholders(self) -> dict[str, str]:
        return {"named": "段落中对方的机关名称、地名或年份", "other": "对方机关", "other_year": "对方报告的年度"}

    def references(self, scope: Scope) -> Iterator[Problem]:
        if self.num_perm % self.bands:
            yield Problem(("bands",), f"num_perm（{self.num_perm}）应能被 bands（{self.bands}）整除")

    def passages(self, batch: Batch) -> pl.DataFrame:
        """(source, line, section, text, agency, agency_id, report_year, key): the passages compared,
        `key` their text as compared. Only passages that name some agency or place of the batch can
        carry another's name: only lines naming one are cut into passages."""
        everyone = batch.frames.documents.filter(pl.col("agency").fill_null("") != "").select("source", "agency", "agency_id", "report_year")
        names = agency_forms(everyone["agency"])["form"].unique().sort().to_list()
        named = pl.col("text").str.contains_any(names) if names else pl.lit(False)
        s = sentences_of(narrative(batch, named), full=True)
        s = s.join(everyone, on="source", maintain_order="left").with_columns(compared(pl.col("text")).alias("key"))
        return s.filter((pl.col("key").str.len_chars() >= self.min_chars) & named)

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        forms = agency_forms(batch.frames.documents.filter(pl.col("agency").fill_null("") != "")["agency"])
        found = self._copied(self.passages(batch), forms)
        mine = found.join(docs.select("source"), on="source", how="semi")
        judged = docs.select(pl.col("source").cast(KEY)).join(mine, on="source", how="left").with_columns(pl.col("foreign").fill_null(0))

        def explain(failing: pl.DataFrame) -> list[dict]:
            facts = []
            for row in failing.iter_rows(named=True):
                facts.append(
                    {
                        "source": row["source"],
                        "line": row["line"],
                        "quote": row["text"],
                        "detail": f"与“{row['other']}”{row['other_year']} 年度报告中的段落近乎相同（相似度 {_percent(row['jaccard'])}），本报告的段落写有“{row['named']}”",
                        "observed": row["named"],
                        "expected": row["agency"],
                        "passages": side_by_side((f"本报告（{row['report_year']} 年度）", row["text"]), (f"{row['other']}（{row['other_year']} 年度）", row["other_text"])),
                        "p.named": row["named"],
                        "p.other": row["other"],
                        "p.other_year": str(row["other_year"]),
                    }
                )
            return facts

        return Measure(judged, (Between("foreign", high=0),), explain)

    def _copied(self, s: pl.DataFrame, forms: pl.DataFrame) -> pl.DataFrame:
        """Per passage of `s` near-identical to a passage of another agency's report that names
        what that agency is and this one's is not: the name, the other passage, their similarity."""
        schema = {"source": KEY, "line": pl.Int32, "text": pl.Utf8, "agency": pl.Utf8, "report_year": pl.Int32, "other": pl.Utf8,
                  "other_year": pl.Int32, "other_text": pl.Utf8, "jaccard": pl.Float64, "named": pl.Utf8, "foreign": pl.Int32}
        keys = s.select("key").unique(maintain_order=True).with_row_index("k")
        if keys.height < 2:
            return pl.DataFrame(schema=schema)
        texts = keys["key"].to_list()
        owner, hashes = run_hashes(texts, SHINGLE)
        where = s.join(keys, on="key").select("k", "source", "line", "text", "agency", "agency_id", "report_year")
        agencies = where.select("k", "agency_id").unique()
        # Candidates: passages sharing an LSH bucket. A bucket holding passages of too many
        # agencies is common wording, not a copy.
        buckets = lsh_buckets(owner, hashes, len(texts), self.num_perm, self.bands)
        spread = buckets.join(agencies, on="k").group_by("band", "h").agg(pl.col("agency_id").n_unique().alias("n"))
        buckets = buckets.join(spread.filter((pl.col("n") >= 2) & (pl.col("n") <= self.max_agencies)), on=["band", "h"], how="semi")
        candidates = buckets.join(buckets, on=["band", "h"], suffix="_b").filter(pl.col("k") < pl.col("k_b")).select("k", "k_b").unique()
        # The same text in several agencies' reports (and not in too many) pairs with itself.
        spread_key = agencies.group_by("k").agg(pl.col("agency_id").n_unique().alias("n"))
        same = spread_key.filter((pl.col("n") >= 2) & (pl.col("n") <= self.max_agencies)).select("k", pl.col("k").alias("k_b"))
        pairs = pl.concat([candidates, candidates.select(pl.col("k_b").alias("k"), pl.col("k").alias("k_b")), same])
        other = where.select(
            pl.col("k").alias("k_b"), pl.col("source").alias("other_source"), pl.col("text").alias("other_text"),
            pl.col("agency").alias("other"), pl.col("agency_id").alias("other_id"), pl.col("report_year").alias("other_year"),
        )
        rows = pairs.join(where, on="k").join(other, on="k_b").filter(pl.col("agency_id") != pl.col("other_id")).with_row_index("_row")
        named = self._named(rows, forms)
        # Exact similarity, only of the pairs whose passage names the other agency.
        measured = jaccard(named.select("k", "k_b").unique(), owner, hashes).filter(pl.col("jaccard") >= self.similarity)
        found = named.join(measured, on=["k", "k_b"]).with_columns(pl.lit(1, pl.Int32).alias("foreign"))
        # One finding per passage: its closest near-duplicate (then by name, year, report: the same every run).
        return (
            found.sort(["source", "line", "jaccard", "other", "other_year", "other_source"], descending=[False, False, True, False, False, False])
            .unique(["source", "line", "text"], keep="first", maintain_order=True)
            .select(list(schema))
            .cast(schema)
        )

    @staticmethod
    def _named(rows: pl.DataFrame, forms: pl.DataFrame) -> pl.DataFrame:
        """The `rows` (pairs of passages) whose passage names what the other passage's agency is
        and its own is not, with `named`: the longest such name of the other agency or place; for a
        passage naming none, the other report's year when both print it and this one does not print
        its own."""
        printed = (
            rows.select("_row", "agency", "other", "text", "other_text")
            .join(forms.rename({"agency": "other"}), on="other")
            .filter(pl.col("text").str.contains(pl.col("form"), literal=True) & pl.col("other_text").str.contains(pl.col("form"), literal=True))
        )
        # Whether a name is this report's own agency or place is judged once per name and agency.
        relations = printed.select("form", "agency").unique()
        relations = relations.with_columns(pl.Series("relation", [name_relation(f, a) for f, a in relations.iter_rows()], dtype=pl.Utf8))
        by_name = (
            printed.join(relations, on=["form", "agency"])
            .filter(pl.col("relation") == "other")
            .sort("_row", pl.col("form").str.len_chars(), "form", descending=[False, True, False])
            .unique("_row", keep="first")
            .select("_row", pl.col("form").alias("named"))
        )
        said, own = pl.format("{}年", pl.col("other_year")), pl.format("{}年", pl.col("report_year"))
        by_year = rows.join(by_name, on="_row", how="anti").filter(
            pl.col("other_year").is_not_null() & pl.col("report_year").is_not_null() & (pl.col("other_year") != pl.col("report_year"))
            & pl.col("text").str.contains(said, literal=True) & pl.col("other_text").str.contains(said, literal=True)
            & ~pl.col("text").str.contains(own, literal=True)
        ).select("_row", said.alias("named"))
        return rows.join(pl.concat([by_name, by_year]), on="_row")


SHINGLE = 5  # characters: passages are compared as sets of runs this long


def agency_forms(agencies: pl.Series) -> pl.DataFrame:
    """(agency, form): the names each agency of the batch goes by (`name_forms`), once per agency."""
    distinct = agencies.drop_nulls().unique().sort().to_list()
    rows = [(a, f) for a in distinct for f in name_forms(a)]
    return pl.DataFrame(rows, schema={"agency": pl.Utf8, "form": pl.Utf8}, orient="row")


def lsh_buckets(owner: np.ndarray, hashes: np.ndarray, count: int, num_perm: int, bands: int, seed: int = 20250101) -> pl.DataFrame:
    """(k, band, h): the LSH bucket of each of `count` texts in each band of its MinHash signature
    (`num_perm` values over the text's run hashes `hashes`, text index `owner`, ascending)."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=count))]).astype(np.uint64)
    import rensa

    digests = np.asarray(rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, num_perm, seed).to_rows(), dtype=np.uint64)
    rows = num_perm // bands
    with np.errstate(over="ignore"):
        h = np.zeros((count, bands), dtype=np.uint64)
        for r in range(rows):
            h = h * np.uint64(0x100000001B3) + digests[:, r::rows][:, :bands]
    return pl.DataFrame({
        "k": np.repeat(np.arange(count, dtype=np.uint32), bands),
        "band": np.tile(np.arange(bands, dtype=np.uint8), count),
        "h": h.reshape(-1),
    })


def jaccard(pairs: pl.DataFrame, owner: np.ndarray, hashes: np.ndarray) -> pl.DataFrame:
    """`pairs` (k, k_b) with the exact Jaccard similarity of the two texts' sets of runs (by their
    64-bit hashes)."""
    texts = pl.concat([pairs["k"], pairs["k_b"]]).unique().cast(pl.UInt32)
    # Only the runs of the texts paired: all of them (7 million at 20,000 reports) made this step
    # the rule's peak of memory.
    runs = pl.DataFrame({"k": owner.astype(np.uint32), "h": hashes}).filter(pl.col("k").is_in(texts.implode())).unique()
    sizes = runs.group_by("k").len("n")
    shared = (
        pairs.join(runs, on="k")
        .join(runs.rename({"k": "k_b"}), on=["k_b", "h"], how="semi")
        .group_by("k", "k_b")
        .len("both")
    )
    return (
        pairs.join(sizes, on="k", how="left")
        .join(sizes.rename({"k": "k_b", "n": "n_b"}), on="k_b", how="left")
        .join(shared, on=["k", "k_b"], how="left")
        .with_columns(pl.col("both").fill_null(0))
        .select("k", "k_b", (pl.col("both") / (pl.col("n").fill_null(0) + pl.col("n_b").fill_null(0) - pl.col("both"))).fill_nan(0.0).alias("jaccard"))
    )


def _jaccard(a: str, b: str, run: int = 5) -> float:
    x = {a[i : i + run] for i in range(len(a) - run + 1)}
    y = {b[i : i + run] for i in range(len(b) - run + 1)}
    return len(x & y) / len(x | y) if x or y else 0.0
