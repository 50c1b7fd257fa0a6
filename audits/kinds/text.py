"""Kinds over the narrative: claims against the tables, injected words, lost negations, what a section
mentions, enumerations. All read the body's sentences, split once per batch and shared.
"""

from __future__ import annotations

import re
from typing import Iterator, Literal

import polars as pl
from pydantic import Field

from audits.engines.verdicts import Between, Compare, InSet
from audits.kinds.base import NOT_APPLICABLE, UNDETERMINED, Batch, Kind, Measure, Problem, Scope, unjudged
from audits.model import CellRef
from audits.parse import sentences as sentence
from audits.vocabulary import number

_ORDINALS = "一二三四五六七八九十"
_CLAUSE = r"[^，,：:]+[，,：:]?"  # a sentence's clauses (Claim.within)


def body_sentences(batch: Batch) -> pl.DataFrame:
    """The body's sentences (source, line, text, section) from the lines frame, tables left out."""

    def compute() -> pl.DataFrame:
        frames = batch.frames
        body = frames.documents.select("source", "body_start", "body_end")
        # The streaming engine splits the lines on both cores and keeps their order, in which each
        # report's lines ascend (as build_frames writes them): what join_asof below needs.
        lines = (
            frames.lines.lazy()
            .join(body.lazy(), on="source", maintain_order="left")
            .filter(pl.col("no").is_between(pl.col("body_start"), pl.col("body_end")) & ~pl.col("text").str.starts_with("|"))
            .select("source", pl.col("no").alias("line"), sentence.split_expr(pl.col("text")).alias("text"))
            .explode("text")
            .with_columns(pl.col("text").str.strip_chars())
            .filter(pl.col("text").is_not_null() & (pl.col("text") != ""))
            .collect(engine="streaming")
        )
        starts = frames.sections.select("source", pl.col("line").cast(pl.Int32), pl.col("key").alias("section")).sort("source", "line")
        # NOTE: a line that holds several section headings (crawler text puts a whole report on one
        # line) gives its sentences no section: rules about one section then do not judge that report.
        packed = starts.group_by("source", "line").len().filter(pl.col("len") > 1).select("source", "line", pl.lit(True).alias("packed"))
        return (
            lines.join_asof(starts, on="line", by="source", strategy="backward", check_sortedness=False)
            .join(packed, on=["source", "line"], how="left")
            .with_columns(
                pl.when(pl.col("packed").is_null()).then(pl.col("section").fill_null("preamble")).otherwise(pl.lit(None)).alias("section")
            )
            .drop("packed")
        )

    return batch.shared(("sentences",), compute)


def _named_group(pattern: str, name: str) -> bool:
    """Whether the regex engine that runs the rules (Polars') sees a group called `name`."""
    fields = pl.select(pl.lit("").str.extract_groups(pattern)).to_series().dtype.fields
    return any(f.name == name for f in fields)


def regex_problem(loc: tuple, pattern: str) -> Problem | None:
    """Why Polars' regex engine (Rust `regex`, which the rules run on) refuses `pattern`, or None;
    the problem points at the place in the pattern that the engine points at."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except Exception as exc:  # noqa: BLE001 - Polars reports a bad pattern as a ComputeError
        lines = str(exc).splitlines()
        reason = next((line.removeprefix("error:").strip() for line in lines if line.startswith("error:")), lines[0] if lines else "")
        caret = next((line for line in lines if line.strip().startswith("^")), "")
        offset = max(len(caret) - len(caret.lstrip()) - 4, 0) if caret else 0
        return Problem(loc, f"正则表达式无效（规则按 Rust regex 语法执行，不支持环视和反向引用）：{reason}", offset)
    return None


class Claim(Kind):
    kind: Literal["claim"]
    pattern: str
    figure: list[str]
    value: float | None = None
    sections: list[str] = Field(default_factory=list)  # only sentences in these sections
    unless: str = ""  # a sentence matching this is not the claim (e.g. "含上年结转")
    compare: Literal["equal", "at_least"] = "equal"
    scope_words: list[str] = Field(default_factory=list)  # these make the finding a warning
    # clause: pattern and unless are matched within one clause of the sentence (up to ，,：: or its
    # end), so that a negation and its object must stand in the same clause, and a clause that names
    # another subject (补正、答复、复议) says nothing about the claim's.
    within: Literal["sentence", "clause"] = "sentence"

    engine = "great_expectations"
    verdicts = (Compare,)
    reads = "sentences"
    title = "正文与表格一致"
    description = (
        "正文中与 pattern（正则表达式，Rust regex 语法）匹配的句子说出一个数字，应与表格中 figure 各单元格之和相等"
        "（compare: at_least 时不小于）。pattern 中名为 n 的分组是句中的数字（阿拉伯或汉字数字）；没有 n 时，句子说的是 value。"
        "unless 匹配的句子不算；sections 限定部分；句中有 scope_words 的词（如“全市”）时只作警告。所涉单元格留空时不判断。"
        "within: clause 时，pattern 与 unless 都只在句中的一个分句（以逗号、冒号分开）内匹配：否定词与其对象须在同一分句，"
        "分句中出现 unless 的词（如“补正”“答复”“复议”）即不算，句中其他分句不受影响。"
    )
    example = (
        "kind: claim\n"
        'pattern: "不予公开(?:的)?(?:申请)?(?P<n>[0-9]+|[一二三四五六七八九十百两]+)\\\\s*件"\n'
        "figure: [applications.deny_state_secret.total, applications.deny_third_party.total]"
    )

    def placeholders(self) -> dict[str, str]:
        return {"claimed": "正文说的数字", "figure": "表格中所涉单元格之和", "sentence": "正文的句子"}

    def references(self, scope: Scope) -> Iterator[Problem]:
        bad = [p for p in (regex_problem((f,), getattr(self, f)) for f in ("pattern", "unless") if getattr(self, f)) if p]
        yield from bad
        if not any(p.loc == ("pattern",) for p in bad) and self.value is None and not _named_group(self.pattern, "n"):
            yield Problem(("pattern",), "pattern 中没有名为 n 的分组（?P<n>…），也没有给出 value：句子说的数字无从读出")
        for i, figure in enumerate(self.figure):
            parts = figure.split(".")
            if len(parts) != 3:
                yield Problem(("figure", i), f"单元格键 {figure} 应为 表.行.列")
            elif parts[0] not in scope.tables():
                yield Problem(("figure", i), f"{scope.where()}格式中没有表 {parts[0]}")
            elif parts[1] not in scope.rows(parts[0]):
                yield Problem(("figure", i), f"表 {parts[0]} 没有行 {parts[1]}")
            elif parts[2] not in scope.cols(parts[0], [parts[1]]):
                yield Problem(("figure", i), f"表 {parts[0]} 的行 {parts[1]} 没有列 {parts[2]}")
        for i, key in enumerate(self.sections):
            if key not in scope.sections():
                yield Problem(("sections", i), f"没有名为 {key} 的部分（可用：{'、'.join(sorted(scope.sections()))}）")

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        s = body_sentences(batch).join(docs.select("source"), on="source", how="semi")
        if self.sections:
            s = s.filter(pl.col("section").is_in(self.sections))
        s = s.with_columns(pl.col("text").alias("sentence"))
        if self.within == "clause":
            # Only sentences the pattern matches somewhere are cut into clauses.
            s = s.filter(pl.col("text").str.contains(self.pattern)).with_columns(pl.col("text").str.extract_all(_CLAUSE)).explode("text")
        s = s.filter(pl.col("text").str.contains(self.pattern))
        if self.unless:
            s = s.filter(~pl.col("text").str.contains(self.unless))
        if _named_group(self.pattern, "n"):
            s = s.with_columns(pl.col("text").str.extract_groups(self.pattern).struct.field("n").alias("said"))
            s = s.with_columns(pl.col("said").map_elements(_to_number, return_dtype=pl.Float64).alias("claimed"))
        else:
            s = s.with_columns(pl.lit(self.value, pl.Float64).alias("claimed"))
        if self.within == "clause":
            s = s.unique(["source", "line", "sentence", "claimed"], keep="first", maintain_order=True)  # one per sentence
        parts = [tuple(f.split(".")) for f in self.figure]
        wanted = batch.frames.cells.filter(
            pl.any_horizontal([(pl.col("table") == t) & (pl.col("row") == r) & (pl.col("col") == c) for t, r, c in parts])
        )
        # A figure with a blank cell is unknown, not zero: such a claim is not judged.
        figures = wanted.group_by("source").agg(pl.col("value").sum().alias("figure"), pl.len().alias("n_cells"), pl.col("value").null_count().alias("blanks"))
        known = figures.filter((pl.col("n_cells") == len(parts)) & (pl.col("blanks") == 0))
        judged = s.join(known, on="source", how="inner")
        rest = pl.concat(
            [
                unjudged(s.select("source").unique(), judged["source"], UNDETERMINED, "表格中所涉单元格缺失或留空，无法与正文核对"),
                unjudged(docs, s["source"], NOT_APPLICABLE, "正文没有此类表述"),
            ]
        )
        scope = pl.col("sentence").str.contains("|".join(map(re.escape, self.scope_words))) if self.scope_words else pl.lit(False)
        op = "=" if self.compare == "equal" else ">="

        def explain(failing: pl.DataFrame) -> list[dict]:
            values = wanted.join(failing.select("source").unique(), on="source", how="semi")
            by_source: dict = {}
            for c in values.iter_rows(named=True):
                by_source.setdefault(c["source"], {})[(c["table"], c["row"], c["col"])] = c
            facts = []
            for row in failing.with_columns(scope.alias("scoped")).iter_rows(named=True):
                printed = by_source.get(row["source"], {})
                cells = [CellRef(t, r, c, printed[(t, r, c)]["value"], "", str(printed[(t, r, c)]["flag"])) for t, r, c in parts]
                facts.append(
                    {
                        "source": row["source"],
                        "line": row["line"],
                        "quote": row["sentence"],
                        "detail": f"表中合计 {number(row['figure'])}" if len(parts) > 1 else None,
                        "cells": cells,
                        "severity": "warning" if row["scoped"] else None,
                        "observed": number(row["claimed"]),
                        "expected": number(row["figure"]),
                        "p.claimed": number(row["claimed"]),
                        "p.figure": number(row["figure"]),
                        "p.sentence": row["sentence"],
                    }
                )
            return facts

        return Measure(judged, (Compare("claimed", op, "figure"),), explain, rest)


def _to_number(text: str | None) -> float | None:
    if text is None:
        return None
    if text.isdigit():
        return float(text)
    import cn2an

    try:
        return float(cn2an.cn2an(text, "smart"))
    except (ValueError, KeyError):
        return None


class Lexicon(Kind):
    kind: Literal["lexicon"]
    words: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    min_hits: int = 3  # distinct lexicon words on one line that make it spam

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "lines"
    title = "注入内容"
    description = "一行中出现 min_hits 个以上不同的 words 词语（注入的垃圾信息），或与 patterns 中任一正则表达式匹配（网页代码残留），即不通过。查找整页，包括页眉页脚。"
    example = "kind: lexicon\nmin_hits: 3\nwords: [久久, 国产, 中文字幕]"

    def placeholders(self) -> dict[str, str]:
        return {"n": "命中的行数", "line": "第一处所在的行号"}

    def references(self, scope: Scope) -> Iterator[Problem]:
        for i, pattern in enumerate(self.patterns):
            problem = regex_problem(("patterns", i), pattern)
            if problem:
                yield problem

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        lines = batch.frames.lines
        hits = pl.sum_horizontal([pl.col("text").str.contains(w, literal=True).cast(pl.Int32) for w in self.words]) if self.words else pl.lit(0)
        pattern = pl.any_horizontal([pl.col("text").str.contains(p) for p in self.patterns]) if self.patterns else pl.lit(False)
        # One Aho-Corasick pass keeps the few lines with any lexicon word; words are counted on those.
        candidate = pl.col("text").str.contains_any(self.words) if self.words else pl.lit(False)
        bad = lines.filter(candidate | pattern).filter((hits >= self.min_hits) | pattern).group_by("source", maintain_order=True).agg(
            pl.len().alias("n"), pl.col("no").first().alias("line"), pl.col("text").first().str.slice(0, 120).alias("sample")
        )
        judged = docs.select("source").join(bad, on="source", how="left").with_columns(pl.col("n").fill_null(0))
        explain = lambda failing: failing.select(  # noqa: E731
            "source", "line", pl.col("sample").alias("quote"), pl.col("n").cast(pl.Utf8).alias("p.n"), pl.col("line").cast(pl.Utf8).alias("p.line")
        )
        return Measure(judged, (Between("n", high=0),), explain)


class Negation(Kind):
    kind: Literal["negation"]
    phrases: list[str]
    negations: list[str]
    window: int = 30

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "sentences"
    title = "否定词缺失"
    description = "年报中总是以否定形式出现的事件（如“泄露国家秘密的事件”），句中 phrases 之前 window 个字内没有 negations 中的否定词，即不通过。"
    example = "kind: negation\nphrases: [泄露国家秘密的事件]\nnegations: [未, 没有, 无]"

    def placeholders(self) -> dict[str, str]:
        return {"sentence": "疑似漏写否定词的句子"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        phrase = "|".join(re.escape(p) for p in self.phrases)
        negated = "|".join(re.escape(n) for n in self.negations)
        s = body_sentences(batch).join(docs.select("source"), on="source", how="semi")
        s = s.with_columns(pl.col("text").str.extract(f"^(.{{0,{self.window}}}?)(?:{phrase})", 1).alias("before"))
        bad = s.filter(pl.col("before").is_not_null() & ~pl.col("before").str.contains(negated))
        agg = bad.group_by("source", maintain_order=True).agg(pl.len().alias("n"), pl.col("line").first(), pl.col("text").first())
        judged = docs.select("source").join(agg, on="source", how="left").with_columns(pl.col("n").fill_null(0))
        explain = lambda failing: failing.select(  # noqa: E731
            "source", "line", pl.col("text").alias("quote"), pl.lit(["句中无“未”“没有”等否定词"]).alias("caveats"), pl.col("text").alias("p.sentence")
        )
        return Measure(judged, (Between("n", high=0),), explain)


class Mention(Kind):
    kind: Literal["mention"]
    section: str
    groups: dict[str, list[str]]  # what is looked for → the words that show it
    unless_any: list[str] = Field(default_factory=list)  # skip the report when the section says one of these

    engine = "great_expectations"
    verdicts = (InSet,)
    reads = "sentences"
    title = "部分应提及的内容"
    description = "section 所指的部分应提及 groups 中的每一项（一项中任一词语出现即算提及）；该部分出现 unless_any 中的词时不核对。找不到该部分时无法判断。"
    example = "kind: mention\nsection: other\ngroups:\n  信息处理费: [信息处理费, 收费]"

    def placeholders(self) -> dict[str, str]:
        return {"missing": "未提及的项目"}

    def references(self, scope: Scope) -> Iterator[Problem]:
        if self.section not in scope.sections():
            yield Problem(("section",), f"没有名为 {self.section} 的部分（可用：{'、'.join(sorted(scope.sections()))}）")

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        title = batch.labels.section(self.section)
        text = body_sentences(batch).filter(pl.col("section") == self.section).group_by("source").agg(
            pl.col("text").str.join("").alias("body"), pl.col("line").min().alias("line")
        )
        frame = docs.select("source").join(text, on="source", how="inner")
        missing = [pl.when(~pl.col("body").str.contains("|".join(map(re.escape, words)))).then(pl.lit(name)) for name, words in self.groups.items()]
        frame = frame.with_columns(pl.concat_str(missing, separator="、", ignore_nulls=True).fill_null("").alias("missing"))
        judged = frame.filter(~pl.col("body").str.contains("|".join(map(re.escape, self.unless_any)))) if self.unless_any else frame
        rest = pl.concat(
            [
                unjudged(frame, judged["source"], NOT_APPLICABLE, f"“{title}”部分另有说明，不在此核对"),
                # A report whose section has no sentences is SEC-MISSING's business, not this rule's.
                unjudged(docs, frame["source"], UNDETERMINED, f"未找到“{title}”部分，或该部分没有可读的文字"),
            ]
        )
        looked = "；".join(f"{n}（{'/'.join(w)}）" for n, w in self.groups.items())
        explain = lambda failing: failing.select(  # noqa: E731
            "source", "line", pl.format("在“{}”部分查找：{}；未见：{}", pl.lit(title), pl.lit(looked), pl.col("missing")).alias("detail"), pl.col("missing").alias("p.missing")
        )
        return Measure(judged, (InSet("missing", ("",)),), explain, rest)


class Enumeration(Kind):
    kind: Literal["enumeration"]

    engine = "great_expectations"
    verdicts = (InSet,)
    reads = "sentences"
    title = "分项列举序号"
    description = "同一段中的“一是、二是……”应从“一是”开始、依次不跳号。"
    example = "kind: enumeration"

    def placeholders(self) -> dict[str, str]:
        return {"gap": "跳号的位置，如“三是”之后直接是“五是”"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        # Paragraphs (lines) that enumerate with 一是…二是…; only those with a gap go through Python.
        item = f"[{_ORDINALS}]是"
        paragraphs = (
            body_sentences(batch)
            .join(docs.select("source"), on="source", how="semi")
            .filter(pl.col("text").str.contains(item))
            .group_by("source", "line", maintain_order=True)
            .agg(pl.col("text").str.extract_all(item).list.explode(keep_nulls=False, empty_as_null=False).alias("items"))
            .filter(pl.col("items").list.len() >= 2)
            .filter(_has_gap(pl.col("items")))
            .with_columns(pl.col("items").map_elements(_enumeration_gap, return_dtype=pl.Utf8).alias("gap"))
            .filter(pl.col("gap").is_not_null())
            .group_by("source", maintain_order=True)
            .agg(pl.col("gap", "line").first())
        )
        judged = docs.select("source").join(paragraphs, on="source", how="left").with_columns(pl.col("gap").fill_null(""))
        explain = lambda failing: failing.select(  # noqa: E731
            "source", "line", pl.format("第{}行附近：{}", pl.col("line"), pl.col("gap")).alias("detail"), pl.col("gap").alias("p.gap")
        )
        return Measure(judged, (InSet("gap", ("",)),), explain)


def _has_gap(items: pl.Expr) -> pl.Expr:
    """A list of items (一是, 三是, …) that skips a number or does not start at 一, in Polars."""
    numbers = items.list.eval(pl.element().str.head(1).replace_strict({c: i + 1 for i, c in enumerate(_ORDINALS)}, return_dtype=pl.Int32))
    return (numbers.list.first() > 1) | (numbers.list.diff(null_behavior="drop").list.max() > 1)


def _enumeration_gap(items: pl.Series) -> str | None:
    """"一是…三是" → the jump, in words; None when the items run without a gap."""
    seen = [_ORDINALS.index(item[0]) + 1 for item in items]
    for a, b in zip(seen, seen[1:]):
        if b > a + 1:
            return f"“{_ORDINALS[a - 1]}是”之后直接是“{_ORDINALS[b - 1]}是”"
    if seen[0] > 1:
        return f"列举从“{_ORDINALS[seen[0] - 1]}是”开始"
    return None
