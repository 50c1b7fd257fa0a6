"""Copied text: a section repeated from the same agency's earlier report, and passages taken from
another agency's report with its name left in.

Text is compared as reviewers read it for copying: Han characters and Latin letters only (numbers,
punctuation and spaces left out, so a report copied with its numbers changed still reads as
copied). Findings carry both passages, the differences marked, for the page to show side by side.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterator, Literal

import numpy as np
import polars as pl
from pydantic import Field

from audits.engines.verdicts import Between
from audits.frames import KEY
from audits.kinds.base import NOT_APPLICABLE, UNDETERMINED, Batch, Kind, Measure, Problem, Scope, unjudged
from audits.kinds.narrative import FULL_SENTENCE, _sections_problems, name_relation, narrative, narrative_sentences

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
        texts = section_texts(batch).filter(pl.col("section").is_in(self.sections))
        mine = texts.join(pairs, on="source").filter(pl.col("text").str.len_chars() >= self.min_chars)
        theirs = texts.select(pl.col("source").alias("previous"), "section", pl.col("text").alias("earlier"))
        both = mine.join(theirs, on=["previous", "section"])
        # Sampled runs (content-defined, so a run both texts have is sampled in both) estimate the
        # share; only pairs the estimate does not rule out are measured exactly.
        estimate = _sampled_share(both["text"].to_list(), both["earlier"].to_list())
        both = both.with_columns(pl.Series("estimate", estimate, dtype=pl.Float64))
        close = both.filter(pl.col("estimate") >= self.threshold - _MARGIN)
        exact = [coverage(a, b) for a, b in zip(close["text"].to_list(), close["earlier"].to_list())]
        close = close.with_columns(pl.Series("share", exact, dtype=pl.Float64))
        judged = (
            both.join(close.select("source", "section", "share"), on=["source", "section"], how="left")
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
            texts = narrative(batch).join(
                pl.concat([wanted.select("source", "section"), wanted.select(pl.col("previous").alias("source"), "section")]).unique(),
                on=["source", "section"],
            )
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
_SAMPLE = 4  # one run in this many (by hash) is sampled for the estimate
_MARGIN = 0.4  # pairs whose estimate is this far below the threshold are not measured exactly


def section_texts(batch: Batch) -> pl.DataFrame:
    """(source, section, text): each section's prose as compared (Han and Latin letters only)."""

    def compute() -> pl.DataFrame:
        return (
            narrative(batch)
            .sort("source", "line", "start")
            .group_by("source", "section", maintain_order=True)
            .agg(compared(pl.col("text")).str.join("").alias("text"))
        )

    return batch.shared(("section_texts",), compute)


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


def run_hashes(texts: list[str], run: int = RUN) -> tuple[np.ndarray, np.ndarray]:
    """(text index, hash) of every run of `run` characters of each text, vectorised (numpy)."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    if not len(texts) or lengths.sum() == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    chars = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    n = len(chars) - run + 1
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(run):
            h = h * np.uint64(1000003) + chars[j : j + n]
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    ends = np.cumsum(lengths)
    # A run must lie inside one text.
    valid = np.arange(n) + run <= ends[owner[:n]]
    return owner[:n][valid], h[valid]


def _sampled_share(texts: list[str], others: list[str]) -> list[float]:
    """For each pair, the share of `texts[i]`'s sampled runs that `others[i]` also has."""
    if not texts:
        return []
    a_id, a_h = run_hashes(texts)
    b_id, b_h = run_hashes(others)
    keep_a, keep_b = a_h % np.uint64(_SAMPLE) == 0, b_h % np.uint64(_SAMPLE) == 0
    a = pl.DataFrame({"i": a_id[keep_a], "h": a_h[keep_a]}).unique()
    b = pl.DataFrame({"i": b_id[keep_b], "h": b_h[keep_b]}).unique()
    counts = a.group_by("i").len().join(a.join(b, on=["i", "h"], how="semi").group_by("i").len(), on="i", how="left", suffix="_same")
    shares = dict(zip(counts["i"].to_list(), (counts["len_same"].fill_null(0) / counts["len"]).to_list()))
    # A text too short to have a sampled run is measured exactly.
    return [shares.get(i, 1.0) for i in range(len(texts))]


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
    """Two passages for the page, each a title and its text as segments `[text, differs]`: a
    sentence (or, in short passages, a run of characters) the other passage does not have differs."""
    a, b = mine[1], theirs[1]
    if max(len(a), len(b)) <= 400:
        return [{"title": mine[0], "segments": _char_diff(a, b)}, {"title": theirs[0], "segments": _char_diff(b, a)}]
    return [{"title": mine[0], "segments": _sentence_diff(a, b)}, {"title": theirs[0], "segments": _sentence_diff(b, a)}]


def _sentence_diff(text: str, other: str) -> list[list]:
    keys = {re.sub(r"[^\u3400-\u9fffA-Za-z]", "", s) for s in re.findall(FULL_SENTENCE, other)}
    out: list[list] = []
    for line in text.split("\n"):
        for s in re.findall(FULL_SENTENCE, line):
            differs = re.sub(r"[^\u3400-\u9fffA-Za-z]", "", s) not in keys
            if out and out[-1][1] == differs:
                out[-1][0] += s
            else:
                out.append([s, differs])
        if out:
            out[-1][0] += "\n"
    return out


def _char_diff(text: str, other: str) -> list[list]:
    matcher = difflib.SequenceMatcher(None, text, other, autojunk=False)
    out: list[list] = []
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if i2 > i1:
            out.append([text[i1:i2], tag != "equal"])
    return out


# Passages taken from another agency's report ----------------------------------------------------

_PLACE_END = re.compile(r"(省|自治区|市|自治州|州|盟|地区|区|县|旗|镇|乡|街道)")
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

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        everyone = batch.frames.documents.filter(pl.col("agency").fill_null("") != "").select("source", "agency", "agency_id", "report_year")
        forms = sorted({f for a in everyone["agency"].unique().to_list() for f in name_forms(a)})
        s = narrative_sentences(batch, full=True).join(everyone, on="source").with_columns(compared(pl.col("text")).alias("key"))
        s = s.filter(pl.col("key").str.len_chars() >= self.min_chars)
        # Only passages that name some agency or place of the batch can carry another's name.
        s = s.filter(pl.col("text").str.contains_any(forms)) if forms else s.clear()
        pairs = self._near_pairs(s)
        found = self._named(pairs)
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

    def _near_pairs(self, s: pl.DataFrame) -> pl.DataFrame:
        """Pairs of passages of different agencies whose texts are near-duplicates."""
        keys = s.select("key").unique(maintain_order=True).with_row_index("k")
        if keys.height < 2:
            return pl.DataFrame()
        import rensa

        texts = keys["key"].to_list()
        owner, hashes = run_hashes(texts, 5)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(texts)))]).astype(np.uint64)
        digests = np.asarray(rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, self.num_perm, 20250101).to_rows(), dtype=np.uint64)
        rows = self.num_perm // self.bands
        with np.errstate(over="ignore"):
            bands = []
            for b in range(self.bands):
                h = np.zeros(len(texts), dtype=np.uint64)
                for r in range(rows):
                    h = h * np.uint64(0x100000001B3) + digests[:, b * rows + r]
                bands.append(pl.DataFrame({"k": np.arange(len(texts), dtype=np.uint32), "band": np.full(len(texts), b, dtype=np.uint8), "h": h}))
        buckets = pl.concat(bands)
        where = s.join(keys, on="key").select("k", "source", "agency_id")
        # A bucket holding passages of too many agencies is common wording, not a copy.
        spread = buckets.join(where.select("k", "agency_id").unique(), on="k").group_by("band", "h").agg(pl.col("agency_id").n_unique().alias("n"))
        buckets = buckets.join(spread.filter((pl.col("n") >= 2) & (pl.col("n") <= self.max_agencies)), on=["band", "h"], how="semi")
        candidates = buckets.join(buckets, on=["band", "h"], suffix="_b").filter(pl.col("k") < pl.col("k_b")).select("k", "k_b").unique()
        sims = [_jaccard(texts[a], texts[b]) for a, b in candidates.iter_rows()]
        close = candidates.with_columns(pl.Series("jaccard", sims, dtype=pl.Float64)).filter(pl.col("jaccard") >= self.similarity)
        # The same text in several agencies' reports (and not in too many) pairs with itself.
        spread_key = where.group_by("k").agg(pl.col("agency_id").n_unique().alias("n"))
        same = spread_key.filter((pl.col("n") >= 2) & (pl.col("n") <= self.max_agencies)).select("k", pl.col("k").alias("k_b"), pl.lit(1.0).alias("jaccard"))
        both = pl.concat([close, close.select(pl.col("k_b").alias("k"), pl.col("k").alias("k_b"), "jaccard"), same.cast({"k": pl.UInt32, "k_b": pl.UInt32})])
        if both.is_empty():
            return pl.DataFrame()
        a = s.join(keys, on="key").select("k", "source", "line", "text", "agency", "agency_id", "report_year")
        b = a.select(
            pl.col("k").alias("k_b"), pl.col("source").alias("other_source"), pl.col("text").alias("other_text"),
            pl.col("agency").alias("other"), pl.col("agency_id").alias("other_id"), pl.col("report_year").alias("other_year"),
        )
        return both.join(a, on="k").join(b, on="k_b").filter(pl.col("agency_id") != pl.col("other_id"))

    @staticmethod
    def _named(pairs: pl.DataFrame) -> pl.DataFrame:
        """Per passage that names what its near-duplicate's agency is and its own is not: the name."""
        schema = {"source": KEY, "line": pl.Int32, "text": pl.Utf8, "agency": pl.Utf8, "report_year": pl.Int32, "other": pl.Utf8,
                  "other_year": pl.Int32, "other_text": pl.Utf8, "jaccard": pl.Float64, "named": pl.Utf8, "foreign": pl.Int32}
        out = []
        for row in pairs.iter_rows(named=True) if not pairs.is_empty() else []:
            named = [f for f in name_forms(row["other"]) if f in row["text"] and f in row["other_text"] and name_relation(f, row["agency"]) == "other"]
            year = row["other_year"]
            if not named and year and row["report_year"] and year != row["report_year"]:
                said = f"{year}年"
                if said in row["text"] and said in row["other_text"] and f"{row['report_year']}年" not in row["text"]:
                    named = [said]
            if named:
                out.append({**{k: row[k] for k in ("source", "line", "text", "agency", "report_year", "other", "other_year", "other_text", "jaccard")},
                            "named": max(named, key=len), "foreign": 1})
        frame = pl.DataFrame(out, schema=schema)
        return frame.sort("source", "line", pl.col("jaccard"), descending=[False, False, True]).unique(["source", "line", "text"], keep="first", maintain_order=True)


def _jaccard(a: str, b: str, run: int = 5) -> float:
    x = {a[i : i + run] for i in range(len(a) - run + 1)}
    y = {b[i : i + run] for i in range(len(b) - run + 1)}
    return len(x & y) / len(x | y) if x or y else 0.0
