"""Great Expectations runs the report-level kinds over one frame with one row per report.

Each rule measures one column in Polars (vectorised over the batch: days late, the period read,
the contacts counted, ...); Great Expectations then judges every column with one suite in one
validation, on pandas (GX has no Polars support). Claims have one row per matching sentence and
are validated the same way in a second batch. The validation results are saved as JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import polars as pl

from audits import checks as k
from audits.engines.base import finding
from audits.frames import KEY, Frames
from audits.model import Finding
from audits.rulebook import Rule, Rulebook, applies_expr

BODY_SECTIONS = ("preamble", "overview", "active", "applications", "review_litigation", "problems", "other")


@dataclass
class Batch:
    """What every measure reads: the frames, the documents, the layouts, and the body's sentences
    (split once per run, shared by the claim, negation, mention and enumeration rules)."""

    frames: Frames
    docs: pl.DataFrame
    book: Rulebook
    sentences: pl.DataFrame

    def sentences_in(self, sections: list[str] | None) -> pl.DataFrame:
        return self.sentences.filter(pl.col("section").is_in(sections)) if sections else self.sentences


@dataclass
class Measure:
    """One rule's column: `value` per report, judged by `expectation`; `evidence` explains a failure."""

    frame: pl.DataFrame  # source, value, evidence, line, context (json), severity (optional)
    expectation: Callable[[str], Any]  # column name → GX expectation


@lru_cache(maxsize=1)
def _gx():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    return gx, gxe, context


def run(rules: list[Rule], frames: Frames, book: Rulebook, out: Path | None = None) -> list[Finding]:
    if not rules or frames.documents.is_empty():
        return []
    docs = frames.documents.with_columns(pl.col("published").cast(pl.Utf8).alias("published_text"))
    batch = Batch(frames, docs, book, _sentences(frames))
    measures: dict[str, Measure] = {}
    claim_rules = [r for r in rules if isinstance(r.check, k.ClaimCheck)]
    for rule in rules:
        if rule in claim_rules:
            continue
        m = MEASURES[rule.check.kind](rule, batch)
        applicable = docs.filter(applies_expr(rule)).select("source")
        measures[rule.id] = Measure(m.frame.join(applicable, on="source", how="semi"), m.expectation)
    by_id = {r.id: r for r in rules}
    findings, result = _judge(measures, docs, by_id, "reports")
    results = [result]
    if claim_rules:
        more, result = _judge({r.id: _claim(r, batch) for r in claim_rules}, docs, by_id, "claims", per_row=True)
        findings += more
        results.append(result)
    if out is not None:
        _save(results, out)
    return findings


def _judge(measures: dict[str, Measure], docs: pl.DataFrame, by_id: dict[str, Rule], name: str, per_row: bool = False) -> tuple[list[Finding], dict]:
    """One wide frame (a column per rule), one suite, one validation.

    Report-level rules have one row per report (keyed by `source`); with `per_row` (claims) each
    rule may have several rows per report, keyed by a row id.
    """
    gx, _, _ = _gx()
    index = "row_id" if per_row else "source"
    if per_row:
        long = pl.concat([m.frame.with_columns(pl.lit(rid).alias("rule_id")) for rid, m in measures.items()], how="diagonal_relaxed")
        long = long.with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Utf8))
        keyed = {rid: long.filter(pl.col("rule_id") == rid) for rid in measures}
        wide = long.select("row_id")
    else:
        keyed = {rid: m.frame for rid, m in measures.items()}
        wide = docs.select("source")
    for rid, frame in keyed.items():
        wide = wide.join(frame.select(index, pl.col("value").alias(rid)), on=index, how="left")
    suite = gx.ExpectationSuite(name=f"audits-{name}")
    for rid, m in measures.items():
        expectation = m.expectation(rid)
        expectation.meta = {"rule_id": rid}
        suite.add_expectation(expectation)
    failed = _validate(wide, suite, name, index)
    findings = []
    for rid, keys in failed["failures"].items():
        rows = keyed[rid].filter(pl.col(index).is_in(keys)).join(docs, on="source", how="left")
        findings.extend(_finding(by_id[rid], row) for row in rows.iter_rows(named=True))
    return findings, failed["result"]


def _validate(wide: pl.DataFrame, suite, name: str, index: str) -> dict:
    """GX over `wide` converted to pandas; failures are the `index` values of the failing rows.

    GX reports failing rows by their pandas position (the default index): asking it for the values
    of an index column instead makes it look each failing row up one by one.
    """
    _, _, context = _gx()
    source = context.data_sources.add_or_update_pandas(f"audits-{name}")
    asset = source.add_dataframe_asset(f"{name}-{id(wide)}")
    batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(batch_parameters={"dataframe": wide.to_pandas()})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    keys = wide[index]
    failures: dict[str, list[str]] = {}
    for r in result.results:
        if not r.success:
            rid = r.expectation_config.meta["rule_id"]
            failures[rid] = keys.gather(r.result.get("unexpected_index_list") or []).cast(pl.Utf8).to_list()
    return {"failures": failures, "result": _record(name, result)}


def _record(name: str, result) -> dict:
    """What gx_validation.json keeps of a validation: per expectation its verdict and counts, with
    GX's partial lists (the full lists of failing rows are the findings); `to_json_dict` would
    deep-copy every index of every failure first."""
    full = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")
    return {
        "suite": f"audits-{name}",
        "success": result.success,
        "statistics": result.statistics,
        "results": [
            {
                "rule_id": r.expectation_config.meta["rule_id"],
                "expectation": r.expectation_config.type,
                "kwargs": r.expectation_config.kwargs,
                "success": r.success,
                "result": {k: v for k, v in r.result.items() if k not in full},
            }
            for r in result.results
        ],
    }


def _save(results: list[dict], out: Path) -> None:
    from audits.outputs import write_text

    write_text(out / "gx_validation.json", json.dumps(results, ensure_ascii=False, indent=1, default=str))


def _finding(rule: Rule, row: dict) -> Finding:
    context = json.loads(row.get("context") or "{}")
    cells = tuple(context.pop("_cells", ()))
    return finding(
        rule, row, context, row.get("evidence") or "", severity=row.get("severity") or None, cells=cells, line=row.get("line")
    )


# Measures -----------------------------------------------------------------------------------


def _measure(frame: pl.DataFrame, expectation) -> Measure:
    for column, dtype in (("evidence", pl.Utf8), ("line", pl.Int32), ("context", pl.Utf8), ("severity", pl.Utf8)):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype).alias(column))
    return Measure(frame, expectation)


def _ctx(**fields: pl.Expr) -> pl.Expr:
    """A JSON context column for the message template (`{name}` placeholders)."""
    return pl.struct(**fields).struct.json_encode().alias("context")


def _in_set(values: list) -> Callable[[str], Any]:
    return lambda column: _gx()[1].ExpectColumnValuesToBeInSet(column=column, value_set=values)


def _between(low=None, high=None) -> Callable[[str], Any]:
    return lambda column: _gx()[1].ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)


def _parse(rule, b: Batch) -> Measure:
    docs = b.docs
    frame = docs.select(
        "source",
        pl.col("problems").fill_null("").alias("value"),
        pl.col("problems").alias("evidence"),
        pl.when(pl.col("status") == "failed").then(pl.lit("error")).otherwise(pl.lit("warning")).alias("severity"),
        _ctx(problems=pl.col("problems"), status=pl.col("status")),
    )
    return _measure(frame, _in_set([""]))


def _sections(rule, b: Batch) -> Measure:
    frames, docs, book = b.frames, b.docs, b.book
    expected = pl.DataFrame(
        [
            {"template": name, "order": i, "key": s.key, "want": s.numeral, "title": s.title}
            for name, layout in book.layouts.items()
            for i, s in enumerate(layout.sections)
        ],
        schema={"template": pl.Utf8, "order": pl.Int32, "key": KEY, "want": pl.Utf8, "title": pl.Utf8},
    )
    # A report of no known template is held to the first layout's sections.
    default = next(iter(book.layouts))
    audited = docs.filter(pl.col("status") != "failed").select(
        "source", pl.when(pl.col("template").is_in(list(book.layouts))).then(pl.col("template")).otherwise(pl.lit(default)).alias("template")
    )
    found = frames.sections.join(audited.select("source"), on="source", how="semi")
    outline = found.group_by("source", maintain_order=True).agg(
        pl.format("{}、{}（第{}行）", pl.col("numeral").replace("", None).fill_null("（无序号）"), pl.col("title"), pl.col("line")).str.join("；").alias("outline")
    )
    printed = found.unique(["source", "key"], keep="last", maintain_order=True).select("source", "key", pl.col("numeral").alias("got"), "line")
    table = audited.join(expected, on="template").join(printed, on=["source", "key"], how="left").sort("source", "order")
    if rule.check.numbering:
        per_doc = table.filter(pl.col("got").is_not_null() & (pl.col("got") != pl.col("want"))).group_by("source", maintain_order=True).agg(
            pl.format("{}印为“{}”，应为“{}”", pl.col("title"), pl.col("got").replace("", "无序号"), pl.col("want")).str.join("；").alias("value"),
            pl.col("line").first(),
        )
        evidence, field = pl.format("报告的标题结构：{}", pl.col("outline").fill_null("")), "problems"
    else:
        per_doc = table.filter(pl.col("got").is_null()).group_by("source", maintain_order=True).agg(
            pl.format("{}、{}", pl.col("want"), pl.col("title")).str.join("、").alias("value"),
            pl.lit(None, pl.Int32).alias("line"),
        )
        evidence, field = pl.format("按标题用语查找六个部分；找到：{}", pl.col("outline").fill_null("无")), "missing"
    frame = audited.select("source").join(per_doc, on="source", how="left").join(outline, on="source", how="left").select(
        "source",
        pl.col("value").fill_null(""),
        pl.col("line").cast(pl.Int32),
        evidence.alias("evidence"),
        _ctx(**{field: pl.col("value").fill_null("")}),
    )
    return _measure(frame, _in_set([""]))


def _period(rule, b: Batch) -> Measure:
    frames, docs = b.frames, b.docs
    first = frames.snippets.filter(pl.col("kind") == "period").group_by("source", maintain_order=True).first()
    frame = docs.filter(pl.col("status") != "failed").select("source", "report_year").join(first, on="source", how="left")
    expected = pl.format("{}-01-01/{}-12-31", pl.col("report_year"), pl.col("report_year"))
    status = (
        pl.when(pl.col("value").is_null()).then(pl.lit("missing"))
        .when(pl.col("value") == "unreadable").then(pl.lit("unreadable"))
        .when(pl.col("report_year").is_not_null() & (pl.col("value") != expected)).then(pl.lit("wrong"))
        .otherwise(pl.lit("ok"))
    )
    frame = frame.select(
        "source",
        status.alias("value"),
        "line",
        pl.when(pl.col("value").is_null())
        .then(pl.lit("全文未找到统计期限表述（查找“统计期限”“统计时限”“所列数据”“统计数据”等用语）"))
        .otherwise(pl.format("第{}行：“{}”", pl.col("line"), pl.col("text")))
        .alias("evidence"),
        _ctx(
            problem=pl.when(pl.col("value").is_null()).then(pl.lit("未说明统计期限"))
            .when(pl.col("value") == "unreadable").then(pl.lit("统计期限表述中的日期残缺，无法读出"))
            .otherwise(pl.format("统计期限为 {}，应为 {}", pl.col("value"), expected)),
            year=pl.col("report_year"),
        ),
    )
    return _measure(frame, _in_set(["ok"]))


def _contact(rule, b: Batch) -> Measure:
    frames, docs = b.frames, b.docs
    accept = list(rule.check.accept)
    found = frames.snippets.filter(pl.col("kind").is_in(accept)).group_by("source").agg(pl.len().alias("n"), pl.col("value").first().alias("first"))
    frame = docs.filter(pl.col("status") != "failed").select("source").join(found, on="source", how="left").select(
        "source",
        pl.col("n").fill_null(0).alias("value"),
        pl.lit("全文未找到电话、电子邮箱或通信地址（查找电话号码、邮箱格式和“地址”用语）").alias("evidence"),
        _ctx(n=pl.col("n").fill_null(0)),
    )
    return _measure(frame, _between(low=1))


def _deadline(rule, b: Batch) -> Measure:
    docs = b.docs
    deadline = pl.lit(None, pl.Date)
    for kind, month_day in rule.check.deadlines.items():
        month, day = (int(x) for x in month_day.split("-"))
        deadline = pl.when(pl.col("agency_kind") == kind).then(pl.date(pl.col("report_year") + 1, month, day)).otherwise(deadline)
    frame = docs.filter(pl.col("published").is_not_null() & pl.col("report_year").is_not_null()).with_columns(deadline.alias("deadline"))
    frame = frame.select(
        "source",
        (pl.col("published") - pl.col("deadline")).dt.total_days().alias("value"),
        pl.format("发布日期 {}（页面标注），期限 {}（{}）", pl.col("published"), pl.col("deadline"), pl.col("agency_kind")).alias("evidence"),
        pl.when(pl.col("agency_kind") == "township").then(pl.lit("warning")).otherwise(pl.lit(None)).alias("severity"),
        _ctx(
            published=pl.col("published").cast(pl.Utf8),
            deadline=pl.col("deadline").cast(pl.Utf8),
            days=(pl.col("published") - pl.col("deadline")).dt.total_days(),
        ),
    )
    return _measure(frame, _between(high=0))


def _template(rule, b: Batch) -> Measure:
    docs, book = b.docs, b.book
    years = {name: layout.report_years for name, layout in book.layouts.items()}
    frame = docs.filter(pl.col("template") != "unknown").select("source", "template", "report_year")
    if rule.check.flag == "mixed":
        value = (pl.col("template") != "mixed").cast(pl.Int8)
        evidence = pl.lit("表三“（六）其他处理”印为单独一行（2019 年版格式），其余表格为 2021 年版格式")
    else:
        expected = pl.lit(None, pl.Utf8)
        for name, span in years.items():
            cond = pl.col("report_year") >= span.from_
            if span.to is not None:
                cond &= pl.col("report_year") <= span.to
            expected = pl.when(cond).then(pl.lit(name)).otherwise(expected)
        value = ((pl.col("template") == expected) | (pl.col("template") == "mixed") | expected.is_null()).cast(pl.Int8)
        evidence = pl.format("{} 年度报告使用了 {} 年版格式的表格", pl.col("report_year"), pl.col("template"))
    frame = frame.select("source", value.alias("value"), evidence.alias("evidence"), _ctx(template=pl.col("template"), year=pl.col("report_year")))
    return _measure(frame, _in_set([1]))


def _lexicon(rule, b: Batch) -> Measure:
    frames, docs = b.frames, b.docs
    c = rule.check
    hits = pl.sum_horizontal([pl.col("text").str.contains(w, literal=True).cast(pl.Int32) for w in c.words]) if c.words else pl.lit(0)
    pattern = pl.any_horizontal([pl.col("text").str.contains(p) for p in c.patterns]) if c.patterns else pl.lit(False)
    # One Aho-Corasick pass keeps the few lines with any lexicon word; words are counted on those.
    candidate = pl.col("text").str.contains_any(c.words) if c.words else pl.lit(False)
    bad = frames.lines.filter(candidate | pattern).filter((hits >= c.min_hits) | pattern).group_by("source", maintain_order=True).agg(
        pl.len().alias("n"), pl.col("no").first().alias("line"), pl.col("text").first().str.slice(0, 120).alias("sample")
    )
    frame = docs.select("source").join(bad, on="source", how="left").select(
        "source",
        pl.col("n").fill_null(0).alias("value"),
        "line",
        pl.format("第{}行：“{}”", pl.col("line"), pl.col("sample")).alias("evidence"),
        _ctx(n=pl.col("n"), line=pl.col("line")),
    )
    return _measure(frame, _between(high=0))


def _sentences(frames: Frames) -> pl.DataFrame:
    """The body's sentences (source, line, text, section), from the lines frame, tables left out."""
    body = frames.documents.select("source", "body_start", "body_end")
    # The streaming engine splits the lines on both cores and keeps their order, in which each
    # report's lines ascend (as build_frames writes them): what join_asof below needs.
    lines = (
        frames.lines.lazy()
        .join(body.lazy(), on="source", maintain_order="left")
        .filter(pl.col("no").is_between(pl.col("body_start"), pl.col("body_end")) & ~pl.col("text").str.starts_with("|"))
        .select("source", pl.col("no").alias("line"), pl.col("text").str.extract_all(r"[^。；;!?！？]+[。；;!?！？]?").alias("text"))
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


def _negation(rule, b: Batch) -> Measure:
    docs = b.docs
    c = rule.check
    phrase = "|".join(re.escape(p) for p in c.phrases)
    negated = "|".join(re.escape(n) for n in c.negations)
    s = b.sentences.with_columns(pl.col("text").str.extract(f"^(.{{0,{c.window}}}?)(?:{phrase})", 1).alias("before"))
    bad = s.filter(pl.col("before").is_not_null() & ~pl.col("before").str.contains(negated))
    agg = bad.group_by("source", maintain_order=True).agg(pl.len().alias("n"), pl.col("line").first(), pl.col("text").first())
    frame = docs.select("source").join(agg, on="source", how="left").select(
        "source",
        pl.col("n").fill_null(0).alias("value"),
        "line",
        pl.format("第{}行：“{}”（句中无“未”“没有”等否定词）", pl.col("line"), pl.col("text")).alias("evidence"),
        _ctx(sentence=pl.col("text")),
    )
    return _measure(frame, _between(high=0))


def _mention(rule, b: Batch) -> Measure:
    docs = b.docs
    c = rule.check
    text = b.sentences_in([c.section]).group_by("source").agg(pl.col("text").str.join("").alias("body"), pl.col("line").min().alias("line"))
    # A report whose section has no sentences is not judged here (SEC-MISSING reports a missing section).
    frame = docs.filter(pl.col("status") != "failed").select("source").join(text, on="source", how="inner")
    missing = [pl.when(~pl.col("body").str.contains("|".join(map(re.escape, words)))).then(pl.lit(name)) for name, words in c.groups.items()]
    frame = frame.with_columns(pl.concat_str(missing, separator="、", ignore_nulls=True).fill_null("").alias("missing"))
    if c.unless_any:
        frame = frame.filter(~pl.col("body").str.contains("|".join(map(re.escape, c.unless_any))))
    frame = frame.select(
        "source",
        pl.col("missing").alias("value"),
        "line",
        pl.format("在“{}”部分查找：{}；未见：{}", pl.lit(c.section), pl.lit("；".join(f"{n}（{'/'.join(w)}）" for n, w in c.groups.items())), pl.col("missing")).alias("evidence"),
        _ctx(missing=pl.col("missing")),
    )
    return _measure(frame, _in_set([""]))


_ORDINALS = "一二三四五六七八九十"


def _enumeration(rule, b: Batch) -> Measure:
    docs = b.docs
    # Paragraphs (lines) that enumerate with 一是…二是…; only those with a gap go through Python.
    item = f"[{_ORDINALS}]是"
    paragraphs = (
        b.sentences
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
    frame = docs.select("source").join(paragraphs, on="source", how="left").select(
        "source",
        pl.col("gap").fill_null("").alias("value"),
        "line",
        pl.format("第{}行附近：{}", pl.col("line"), pl.col("gap")).alias("evidence"),
        _ctx(gap=pl.col("gap")),
    )
    return _measure(frame, _in_set([""]))


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


def _signoff(rule, b: Batch) -> Measure:
    docs = b.docs
    frame = docs.filter(pl.col("status") != "failed").select(
        "source",
        (pl.col("signed").is_not_null() & pl.col("signed_raw").str.contains("年")).cast(pl.Int8).alias("value"),
        pl.when(pl.col("signed").is_not_null())
        .then(pl.format("落款日期印为“{}”，年月日字样丢失，推定为 {}", pl.col("signed_raw"), pl.col("signed")))
        .when(pl.col("signed_raw") != "")
        .then(pl.format("落款日期印为“{}”，无法还原为日期", pl.col("signed_raw")))
        .otherwise(pl.lit("报告末尾未见落款（机关名称和日期）"))
        .alias("evidence"),
        _ctx(raw=pl.col("signed_raw")),
    )
    return _measure(frame, _in_set([1]))


def _claim(rule: Rule, b: Batch) -> Measure:
    frames, docs = b.frames, b.docs
    c = rule.check
    s = b.sentences_in(c.sections or None)
    s = s.filter(pl.col("text").str.contains(c.pattern))
    if c.unless:
        s = s.filter(~pl.col("text").str.contains(c.unless))
    if "(?P<n>" in c.pattern:
        s = s.with_columns(pl.col("text").str.extract(c.pattern.replace("(?P<n>", "("), _group_index(c.pattern)).alias("said"))
        s = s.with_columns(pl.col("said").map_elements(_to_number, return_dtype=pl.Float64).alias("claimed"))
    else:
        s = s.with_columns(pl.lit(c.value, pl.Float64).alias("claimed"))
    s = s.join(docs.filter(applies_expr(rule)).select("source"), on="source", how="semi")
    figure_parts = [tuple(f.split(".")) for f in c.figure]
    wanted = frames.cells.filter(
        pl.any_horizontal([(pl.col("table") == t) & (pl.col("row") == r) & (pl.col("col") == col) for t, r, col in figure_parts])
    )
    # A figure with a blank cell is unknown, not zero: such a claim is not judged.
    figures = wanted.group_by("source").agg(pl.col("value").sum().alias("figure"), pl.len().alias("n_cells"), pl.col("value").null_count().alias("blanks"))
    s = s.join(figures.filter((pl.col("n_cells") == len(figure_parts)) & (pl.col("blanks") == 0)), on="source", how="inner")
    scope = pl.col("text").str.contains("|".join(map(re.escape, c.scope_words))) if c.scope_words else pl.lit(False)
    value = pl.col("claimed") - pl.col("figure") if c.compare == "equal" else pl.min_horizontal(pl.col("claimed") - pl.col("figure"), pl.lit(0))
    frame = s.select(
        "source",
        value.alias("value"),
        pl.col("figure"),
        "line",
        pl.format("第{}行：“{}”；表格 {} = {}", pl.col("line"), pl.col("text"), pl.lit(" + ".join(c.figure)), pl.col("figure")).alias("evidence"),
        pl.when(scope).then(pl.lit("warning")).otherwise(pl.lit(None)).alias("severity"),
        pl.struct(
            claimed=pl.col("claimed"), figure=pl.col("figure"), sentence=pl.col("text"), _cells=pl.lit(pl.Series([c.figure]))
        ).struct.json_encode().alias("context"),
    )
    return _measure(frame, _between(low=0, high=0) if c.compare == "equal" else _between(low=0))


def _group_index(pattern: str) -> int:
    """The number of the capture group named `n` once names are dropped (polars has no names)."""
    before = pattern[: pattern.index("(?P<n>")]
    return len(re.findall(r"\((?!\?)", before)) + len(re.findall(r"\(\?P<", before)) + 1


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


MEASURES: dict[str, Callable[..., Measure]] = {
    "parse": _parse,
    "sections": _sections,
    "period": _period,
    "contact": _contact,
    "deadline": _deadline,
    "template": _template,
    "lexicon": _lexicon,
    "negation": _negation,
    "mention": _mention,
    "enumeration": _enumeration,
    "signoff": _signoff,
}
