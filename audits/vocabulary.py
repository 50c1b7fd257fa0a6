"""The reviewer's words: every Chinese label a page, a message or the command line shows, in one place.

Categories, severities, agency kinds and templates are fixed lists; tables, rows, columns and
sections are named as the template layouts print them (rules/templates/*.yaml), so a new format
year brings its own labels. Counts are shown as integers ("3", never "3.0").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import polars as pl

# The categories of spec/outputs.md, in the order reviewers read them.
CATEGORIES: dict[str, str] = {
    "table_identity": "表格勾稽",
    "cross_year": "跨年度核对",
    "table_completeness": "表格完整性",
    "mandatory_section": "必备内容",
    "date_range": "统计期限",
    "contact_info": "联系方式",
    "claim_contradiction": "正文与表格矛盾",
    "timeliness": "发布时限",
    "template_version": "格式版本",
    "content_integrity": "内容完整与安全",
    "parse_error": "文件读取",
}
SEVERITIES: dict[str, str] = {"error": "错误", "warning": "警告", "info": "提示"}
AGENCY_KINDS: dict[str, str] = {"department": "政府部门", "government": "人民政府（管委会）", "township": "乡镇（街道）"}
TEMPLATES: dict[str, str] = {
    "2019": "2019 年版",
    "2021": "2021 年版",
    "mixed": "新旧混用",
    "pre2019": "统一格式之前",
    "unknown": "未识别",
}
STATUSES: dict[str, str] = {"parsed": "完整读取", "partial": "部分读取", "failed": "无法读取"}
TABLE_NUMERALS: dict[str, str] = {"active": "二", "applications": "三", "review_litigation": "四"}
FINDING_STATES: dict[str, str] = {"new": "新发现", "open": "仍存在", "resolved": "已解决"}
DECISIONS: dict[str, str] = {"confirmed": "已确认", "dismissed": "已驳回"}
# What each verdict of a report means, as the index's legend says it.
VERDICTS: dict[str, str] = {
    "需整改": "至少有一项错误（未被驳回）：报告不符合格式或法规，应当整改。",
    "待核实": "没有错误，但至少有一项警告（未被驳回）：可能有误，需要人工核实。",
    "合格": "没有错误或警告（可能有提示）：未发现需要整改或核实的问题。",
    "无法判断": "报告无法读取，或读出的表格少于三张：多数检查无法进行，需人工查看原文。",
    "旧格式": "2019 年统一格式之前的报告：统一格式的各项检查不适用，只检查能否读取、页面有无被植入的内容。",
}


def number(value) -> str:
    """A figure as a reviewer reads it: integers without a decimal point, "空" for nothing."""
    if value is None:
        return "空"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "空"
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def number_expr(column: pl.Expr) -> pl.Expr:
    """`number` for a whole column, as the output files write it (null stays null): integral values
    without ".0" while a float holds them exactly (below 2**53); beyond that, as Polars prints them."""
    exact = column.abs() < 2.0**53
    return (
        pl.when(column.is_null() | column.is_nan())
        .then(pl.lit(None, pl.Utf8))
        .when((column == column.round(0)) & exact)
        .then(column.cast(pl.Int64, strict=False).cast(pl.Utf8))
        .otherwise(column.cast(pl.Utf8))
    )


@dataclass(frozen=True)
class Labels:
    """Tables, rows, columns and sections named as the layouts print them.

    A report's own template names its cells first; a row only another template has (a mixed
    report's single (六)其他处理) is named by that template. Names are remembered: a large batch
    asks for the same few hundred again and again.
    """

    layouts: dict  # template → audits.layouts.Layout (not imported: the layouts' expressions use `number`)
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def _order(self) -> list:
        # The newest format first: its labels are the ones most reports print.
        return sorted(self.layouts.values(), key=lambda layout: layout.report_years.from_, reverse=True)

    def _layouts_for(self, template: str | None) -> list:
        own = self.layouts.get(template or "")
        return ([own] if own else []) + [layout for layout in self._order if layout is not own]

    def table(self, table: str) -> str:
        """`表三`: how reviewers refer to a table."""
        return f"表{TABLE_NUMERALS.get(table, '')}" if table in TABLE_NUMERALS else self.table_title(table)

    def table_title(self, table: str) -> str:
        for layout in self._order:
            if table in layout.tables:
                return layout.tables[table].title
        return table

    def row(self, table: str, row: str, template: str | None = None) -> str:
        """The row's printed label, with its group where numerals repeat (（三）不予公开 1.属于国家秘密)."""
        key = ("row", table, row, template)
        if key not in self.memo:
            self.memo[key] = self._row(table, row, template)
        return self.memo[key]

    def _row(self, table: str, row: str, template: str | None) -> str:
        for layout in self._layouts_for(template):
            spec = layout.tables.get(table)
            if spec is None:
                continue
            for r in spec.rows:
                if r.key == row:
                    group = next((g.label for g in spec.groups if g.key == r.group), "")
                    return f"{group} {r.label}" if group else r.label
        return row

    def col(self, table: str, col: str, template: str | None = None) -> str:
        key = ("col", table, col, template)
        if key not in self.memo:
            self.memo[key] = self._col(table, col, template)
        return self.memo[key]

    def _col(self, table: str, col: str, template: str | None) -> str:
        for layout in self._layouts_for(template):
            spec = layout.tables.get(table)
            if spec is not None and col in spec.col_labels:
                return spec.col_labels[col]
        return col

    def cell(self, table: str, row: str, col: str, template: str | None = None) -> str:
        """`表三 · 一、本年新收政府信息公开申请数量 · 自然人`."""
        return f"{self.table(table)} · {self.row(table, row, template)} · {self.col(table, col, template)}"

    def section(self, key: str, template: str | None = None) -> str:
        """`六、其他需要报告的事项`."""
        for layout in self._layouts_for(template):
            for s in layout.sections:
                if s.key == key:
                    return f"{s.numeral}、{s.title}"
        return key
