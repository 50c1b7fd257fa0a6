"""Report-level kinds: one measured value per report, judged by Great Expectations.

Reading, sections, the statistics period, contacts, the publication deadline, the template and the
sign-off: each measure is Polars over the documents, sections and snippets frames.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterator, Literal

import polars as pl
from pydantic import Field

from audits.engines.verdicts import Between, Compare, InSet, NotInSet
from audits.frames import KEY
from audits.kinds.base import UNDETERMINED, Batch, Kind, Measure, Problem, Scope, unjudged
from audits.vocabulary import AGENCY_KINDS


class Parse(Kind):
    kind: Literal["parse"]

    engine = "great_expectations"
    verdicts = (InSet,)
    reads = "documents"
    title = "文件读取"
    description = "文件无法读取、只读出一部分，或内容不是年度报告时，说明原因（读取失败为错误，部分读取为警告）。"
    example = "kind: parse"
    judges_unreadable = True

    def placeholders(self) -> dict[str, str]:
        return {"problems": "读取中发现的问题"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        judged = docs.select("source", "status", pl.col("problems").fill_null("").alias("problems"))
        explain = lambda failing: failing.select(  # noqa: E731
            "source",
            pl.col("problems").alias("detail"),
            pl.when(pl.col("status") == "failed").then(pl.lit("error")).otherwise(pl.lit("warning")).alias("severity"),
            pl.col("problems").alias("p.problems"),
        )
        return Measure(judged, (InSet("problems", ("",)),), explain)


class Sections(Kind):
    kind: Literal["sections"]
    numbering: bool = False

    engine = "great_expectations"
    verdicts = (InSet,)
    reads = "sections"
    title = "六个部分"
    description = "报告格式规定的六个部分按用语查找，应全部出现且按顺序；numbering: true 时核对各部分标题的序号（一至六）。"
    example = "kind: sections\nnumbering: true"

    def placeholders(self) -> dict[str, str]:
        if self.numbering:
            return {"problems": "序号印错的部分，如“存在的主要问题及改进情况印为“四”，应为“五””"}
        return {"missing": "缺少的部分，如“六、其他需要报告的事项”"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        expected = pl.DataFrame(
            [
                {"template": name, "order": i, "key": s.key, "want": s.numeral, "title": s.title}
                for name, layout in batch.layouts.items()
                for i, s in enumerate(layout.sections)
            ],
            schema={"template": pl.Utf8, "order": pl.Int32, "key": KEY, "want": pl.Utf8, "title": pl.Utf8},
        )
        # A report of no known template is held to the first layout's sections.
        default = next(iter(batch.layouts))
        audited = docs.select(
            "source", pl.when(pl.col("template").is_in(list(batch.layouts))).then(pl.col("template")).otherwise(pl.lit(default)).alias("template")
        )
        found = batch.frames.sections.join(audited.select("source"), on="source", how="semi")
        outline = found.group_by("source", maintain_order=True).agg(
            pl.format("{}、{}（第{}行）", pl.col("numeral").replace("", None).fill_null("（无序号）"), pl.col("title"), pl.col("line")).str.join("；").alias("outline")
        )
        printed = found.unique(["source", "key"], keep="last", maintain_order=True).select("source", "key", pl.col("numeral").alias("got"), "line")
        table = audited.join(expected, on="template").join(printed, on=["source", "key"], how="left").sort("source", "order")
        if self.numbering:
            per_doc = table.filter(pl.col("got").is_not_null() & (pl.col("got") != pl.col("want"))).group_by("source", maintain_order=True).agg(
                pl.format("{}印为“{}”，应为“{}”", pl.col("title"), pl.col("got").replace("", "无序号"), pl.col("want")).str.join("；").alias("value"),
                pl.col("line").first(),
            )
            detail, field = pl.format("报告的标题结构：{}", pl.col("outline").fill_null("")), "problems"
        else:
            per_doc = table.filter(pl.col("got").is_null()).group_by("source", maintain_order=True).agg(
                pl.format("{}、{}", pl.col("want"), pl.col("title")).str.join("、").alias("value"),
                pl.lit(None, pl.Int32).alias("line"),
            )
            detail, field = pl.format("按标题用语查找六个部分；找到：{}", pl.col("outline").fill_null("无")), "missing"
        judged = audited.select("source").join(per_doc, on="source", how="left").join(outline, on="source", how="left").with_columns(
            pl.col("value").fill_null(""), pl.col("line").cast(pl.Int32)
        )
        explain = lambda failing: failing.select("source", "line", detail.alias("detail"), pl.col("value").alias(f"p.{field}"))  # noqa: E731
        return Measure(judged, (InSet("value", ("",)),), explain)


class Period(Kind):
    kind: Literal["period"]

    engine = "great_expectations"
    verdicts = (InSet,)
    reads = "snippets"
    title = "统计期限"
    description = "报告应说明统计期限，且为报告年度的 1 月 1 日至 12 月 31 日。找不到、日期残缺或年份不符都不通过。"
    example = "kind: period"

    def placeholders(self) -> dict[str, str]:
        return {"problem": "问题所在，如“未说明统计期限”“统计期限为 …，应为 …”", "year": "报告年度"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        # The first statement whose dates can be read (a report may name 统计数据 elsewhere first);
        # else the first, broken one.
        first = (
            batch.frames.snippets.filter(pl.col("kind") == "period")
            .sort("source", pl.col("value") == "unreadable", "line", maintain_order=True)
            .group_by("source", maintain_order=True)
            .first()
        )
        frame = docs.select("source", "report_year").join(first, on="source", how="left")
        expected = pl.format("{}-01-01/{}-12-31", pl.col("report_year"), pl.col("report_year"))
        status = (
            pl.when(pl.col("value").is_null()).then(pl.lit("missing"))
            .when(pl.col("value") == "unreadable").then(pl.lit("unreadable"))
            .when(pl.col("report_year").is_not_null() & (pl.col("value") != expected)).then(pl.lit("wrong"))
            .otherwise(pl.lit("ok"))
        )
        judged = frame.with_columns(status.alias("status"), expected.alias("expected"))

        def explain(failing: pl.DataFrame) -> pl.DataFrame:
            return failing.select(
                "source",
                "line",
                pl.col("text").alias("quote"),
                pl.when(pl.col("value").is_null()).then(pl.lit("全文未找到统计期限表述（查找“统计期限”“统计时限”“所列数据”“统计数据”等用语）")).alias("detail"),
                pl.when(pl.col("value") != "unreadable").then(pl.col("value").str.replace("/", " 至 ")).alias("observed"),
                pl.col("expected").str.replace("/", " 至 ").alias("expected"),
                pl.when(pl.col("value").is_null()).then(pl.lit("未说明统计期限"))
                .when(pl.col("value") == "unreadable").then(pl.lit("统计期限表述中的日期残缺，无法读出"))
                .otherwise(pl.format("统计期限为 {}，应为 {}", pl.col("value"), pl.col("expected")))
                .alias("p.problem"),
                pl.col("report_year").cast(pl.Utf8).alias("p.year"),
            )

        return Measure(judged, (InSet("status", ("ok",)),), explain)


class Contact(Kind):
    kind: Literal["contact"]
    accept: list[Literal["phone", "email", "address"]] = Field(default_factory=lambda: ["phone", "email", "address"])

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "snippets"
    title = "联系方式"
    description = "报告正文中至少有一种联系方式；accept 列出算数的种类（phone 电话、email 电子邮箱、address 通信地址）。仅有网址不算。"
    example = "kind: contact\naccept: [phone, email, address]"

    def placeholders(self) -> dict[str, str]:
        return {"n": "找到的联系方式个数"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        found = batch.frames.snippets.filter(pl.col("kind").is_in(list(self.accept))).group_by("source").agg(pl.len().alias("n"))
        judged = docs.select("source").join(found, on="source", how="left").with_columns(pl.col("n").fill_null(0))
        explain = lambda failing: failing.select(  # noqa: E731
            "source",
            pl.lit("全文未找到电话、电子邮箱或通信地址（查找电话号码、邮箱格式和“地址”用语）").alias("detail"),
            pl.col("n").cast(pl.Utf8).alias("p.n"),
        )
        return Measure(judged, (Between("n", low=1),), explain)


class Deadline(Kind):
    kind: Literal["deadline"]
    deadlines: dict[str, str]  # agency kind → "MM-DD" of the year after the report year

    engine = "great_expectations"
    verdicts = (Compare,)
    reads = "documents"
    title = "发布时限"
    description = "报告应在报告年度次年的期限前（含当日）发布；deadlines 按机关类型（department 政府部门、government 人民政府、township 乡镇街道）给出月-日。乡镇逾期只作警告。"
    example = 'kind: deadline\ndeadlines: {department: "01-31", government: "03-31", township: "01-31"}'

    def placeholders(self) -> dict[str, str]:
        return {"published": "发布日期", "deadline": "期限", "days": "逾期天数"}

    def references(self, scope: Scope) -> Iterator[Problem]:
        for kind, month_day in self.deadlines.items():
            if kind not in AGENCY_KINDS:
                yield Problem(("deadlines", kind), f"未知的机关类型 {kind}（可用：{'、'.join(AGENCY_KINDS)}）")
            try:
                month, day = (int(x) for x in month_day.split("-"))
                dt.date(2001, month, day)
            except ValueError:
                yield Problem(("deadlines", kind), f"期限应写作“月-日”，如 01-31：{month_day}")

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        deadline = pl.lit(None, pl.Date)
        for kind, month_day in self.deadlines.items():
            month, day = (int(x) for x in month_day.split("-"))
            deadline = pl.when(pl.col("agency_kind") == kind).then(pl.date(pl.col("report_year") + 1, month, day)).otherwise(deadline)
        frame = docs.with_columns(deadline.alias("deadline"))
        judged = frame.filter(pl.col("published").is_not_null() & pl.col("deadline").is_not_null())
        rest = unjudged(
            docs, judged["source"], UNDETERMINED,
            pl.when(pl.col("published").is_null()).then(pl.lit("页面未标注发布日期"))
            .when(pl.col("report_year").is_null()).then(pl.lit("未识别报告年度"))
            .otherwise(pl.lit("未识别机关类型，不知适用哪个期限")),
        )
        kinds = pl.col("agency_kind").replace_strict(AGENCY_KINDS, default=pl.col("agency_kind"), return_dtype=pl.Utf8)
        days = (pl.col("published") - pl.col("deadline")).dt.total_days()
        explain = lambda failing: failing.select(  # noqa: E731
            "source",
            pl.format("发布日期 {}（页面标注），期限 {}（{}）", pl.col("published"), pl.col("deadline"), kinds).alias("detail"),
            pl.when(pl.col("agency_kind") == "township").then(pl.lit("warning")).alias("severity"),
            pl.col("published").cast(pl.Utf8).alias("observed"),
            pl.col("deadline").cast(pl.Utf8).alias("expected"),
            pl.col("published").cast(pl.Utf8).alias("p.published"),
            pl.col("deadline").cast(pl.Utf8).alias("p.deadline"),
            days.cast(pl.Utf8).alias("p.days"),
        )
        return Measure(judged, (Compare("published", "<=", "deadline"),), explain, rest)


class Template(Kind):
    kind: Literal["template"]
    flag: Literal["outdated", "mixed", "earlier"]

    engine = "great_expectations"
    verdicts = (Compare, NotInSet)
    reads = "documents"
    title = "格式版本"
    description = (
        "flag: outdated 时，表格应使用适用于报告年度的格式（2019、2020 年度用 2019 年版，2021 年度起用 2021 年版）；"
        "flag: mixed 时，表格不应混用新旧两版；flag: earlier 时，指出采用统一格式施行之前的格式的报告（规则需 applies_to: {earlier_formats: true}）。"
    )
    example = "kind: template\nflag: outdated"

    def placeholders(self) -> dict[str, str]:
        return {"template": "报告使用的格式年份（如“2019”）", "year": "报告年度"} if self.flag != "earlier" else {"year": "报告年度", "format": "报告采用的格式"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        read = docs.filter(pl.col("template").is_in([*batch.layouts, "mixed"]))
        if self.flag == "earlier":
            names = {name: f.title for name, f in batch.earlier.items()}
            judged = docs
            verdict = NotInSet("template", tuple(names))
            detail = pl.format("{} 年度报告采用{}", pl.col("report_year").fill_null("本"), pl.col("template").replace_strict(names, default=""))
        elif self.flag == "mixed":
            judged = read
            verdict = NotInSet("template", ("mixed",))
            detail = pl.lit("表三“（六）其他处理”印为单独一行（2019 年版格式），其余表格为 2021 年版格式")
        else:
            expected = pl.lit(None, pl.Utf8)
            for name, layout in batch.layouts.items():
                span = layout.report_years
                cond = pl.col("report_year") >= span.from_
                if span.to is not None:
                    cond &= pl.col("report_year") <= span.to
                expected = pl.when(cond).then(pl.lit(name)).otherwise(expected)
            # A mixed report uses the year's format with one older part: TPL-MIXED's business, not this.
            judged = read.with_columns(expected.alias("expected")).filter(pl.col("expected").is_not_null()).with_columns(
                pl.when(pl.col("template") == "mixed").then(pl.col("expected")).otherwise(pl.col("template")).alias("used")
            )
            verdict = Compare("used", "=", "expected")
            detail = pl.format("{} 年度报告使用了 {} 年版格式的表格", pl.col("report_year"), pl.col("template"))
        rest = unjudged(docs, judged["source"], UNDETERMINED, "未识别报告使用的格式或报告年度")
        explain = lambda failing: failing.select(  # noqa: E731
            "source", detail.alias("detail"), pl.col("template").alias("p.template"), pl.col("report_year").cast(pl.Utf8).alias("p.year"),
            pl.col("template").replace_strict({n: f.title for n, f in batch.earlier.items()}, default="").alias("p.format"),
        )
        return Measure(judged, (verdict,), explain, rest)


class Signoff(Kind):
    kind: Literal["signoff"]

    engine = "great_expectations"
    verdicts = (InSet,)
    reads = "documents"
    title = "落款"
    description = "报告末尾应有落款（机关名称和日期），日期应完整（年、月、日字样齐全）。"
    example = "kind: signoff"

    def placeholders(self) -> dict[str, str]:
        return {"raw": "落款日期的原文"}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        judged = docs.select(
            "source", "signed", "signed_raw", (pl.col("signed").is_not_null() & pl.col("signed_raw").str.contains("年")).alias("complete")
        )
        explain = lambda failing: failing.select(  # noqa: E731
            "source",
            pl.when(pl.col("signed").is_not_null())
            .then(pl.format("落款日期印为“{}”，年月日字样丢失，推定为 {}", pl.col("signed_raw"), pl.col("signed")))
            .when(pl.col("signed_raw") != "")
            .then(pl.format("落款日期印为“{}”，无法还原为日期", pl.col("signed_raw")))
            .otherwise(pl.lit("报告末尾未见落款（机关名称和日期）"))
            .alias("detail"),
            pl.col("signed_raw").alias("p.raw"),
        )
        return Measure(judged, (InSet("complete", (True,)),), explain)
