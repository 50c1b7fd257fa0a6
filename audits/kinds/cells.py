"""Kinds over single cells and the tables' structure: value domains, completeness, a cell's condition."""

from __future__ import annotations

from typing import Iterator, Literal

import polars as pl

from audits.engines.verdicts import Between, Compare, Holds, InSet, NotInSet
from audits.frames import KEY
from audits.kinds.base import UNDETERMINED, Batch, Kind, Measure, Problem, Scope, unjudged
from audits.model import CellRef
from audits.rulebook.expressions import ExpressionError, parse_expression
from audits.vocabulary import number

NAMED = 6  # cells named in its message
# Document columns a `when:` condition may name.
DOCUMENT_NAMES = {"agency", "agency_kind", "report_year", "template", "status", "format", "published"}


def _cells_of(batch: Batch, docs: pl.DataFrame) -> pl.DataFrame:
    """The batch's cells of the reports in `docs`, with their template (most rules apply to all)."""
    cells = batch.frames.cells
    if docs.height < batch.frames.documents.height:
        cells = cells.join(docs.select("source"), on="source", how="semi")
    return cells.join(batch.frames.documents.select("source", "template"), on="source", how="left")


def _no_tables(docs: pl.DataFrame, cells: pl.DataFrame) -> pl.DataFrame:
    return unjudged(docs, cells["source"], UNDETERMINED, "未找到任何统计表")


def _per_table(batch: Batch, failing: pl.DataFrame) -> list[dict]:
    """One finding per report and table, however many of its cells fail: the first line, every cell."""
    grouped = failing.group_by(["source", "table"], maintain_order=True).agg(
        pl.col("line").first(),
        pl.col("template").first(),
        pl.col("row").cast(pl.Utf8),
        pl.col("col").cast(pl.Utf8),
        pl.col("value"),
        pl.col("raw").fill_null(""),
        pl.col("flag").cast(pl.Utf8),
    )
    facts = []
    for g in grouped.iter_rows(named=True):
        table, template = g["table"], g["template"]
        cells = [CellRef(table, *cell) for cell in zip(g["row"], g["col"], g["value"], g["raw"], g["flag"])]
        names = [f"{batch.labels.row(table, c.row, template)} · {batch.labels.col(table, c.col, template)}" for c in cells[:NAMED]]
        more = f" 等 {len(cells)} 个" if len(cells) > NAMED else ""
        facts.append(
            {
                "source": g["source"],
                "line": g["line"],
                "detail": f"第 {g['line']} 行起",
                "cells": cells,
                "p.table_name": batch.labels.table(table),
                "p.table_title": batch.labels.table_title(table),
                "p.count": len(cells),
                "p.cells": "，".join(names) + more,
                "p.value": number(cells[0].value),
            }
        )
    return facts


_TABLE_PLACEHOLDERS = {
    "table_name": "表名（如“表三”）",
    "table_title": "表的标题（如“收到和处理政府信息公开申请情况”）",
    "count": "不符合的单元格个数",
    "cells": "不符合的单元格（最多列出 6 个，按报告格式印出行名·列名）",
    "value": "第一个不符合的单元格的数值",
}


class ValueDomain(Kind):
    kind: Literal["value_domain"]
    tables: list[str]
    min: float = 0

    engine = "pandera"
    verdicts = (Between, Compare)
    reads = "cells"
    title = "数值取值范围"
    description = "所列表格的每个数值都应为不小于 min 的整数；模板中标为小数的列（收费金额、采购金额）可有小数，标为可带符号的列（2019 年版“本年增/减”）可为负。"
    example = "kind: value_domain\ntables: [active, applications, review_litigation]"

    def placeholders(self) -> dict[str, str]:
        return dict(_TABLE_PLACEHOLDERS)

    def references(self, scope: Scope) -> Iterator[Problem]:
        for i, table in enumerate(self.tables):
            if table not in scope.tables():
                yield Problem(("tables", i), f"{scope.where()}格式中没有表 {table}")

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        cells = _cells_of(batch, docs)
        decimal = _keys(batch, "decimal")
        signed = _keys(batch, "signed")
        value = pl.col("value")
        judged = cells.filter(pl.col("table").cast(pl.Utf8).is_in(self.tables) & value.is_not_null()).with_columns(
            pl.when(_is_key(decimal)).then(pl.lit(0.0)).otherwise(value - value.round(0)).alias("fraction"),
            pl.when(_is_key(signed)).then(pl.lit(None, pl.Float64)).otherwise(pl.lit(self.min, pl.Float64)).alias("low"),
        )
        verdicts = (Between("fraction", 0, 0), Compare("value", ">=", "low"))
        return Measure(judged, verdicts, lambda failing: _per_table(batch, failing), _no_tables(docs, judged))


def _keys(batch: Batch, attribute: str) -> set[tuple[str, str, str]]:
    return {(t, r.key, c) for layout in batch.layouts.values() for t, spec in layout.tables.items() for r in spec.rows for c in getattr(r, attribute)}


def _is_key(keys: set[tuple[str, str, str]]) -> pl.Expr:
    return pl.any_horizontal([(pl.col("table") == t) & (pl.col("row") == r) & (pl.col("col") == c) for t, r, c in sorted(keys)] or [pl.lit(False)])


class Completeness(Kind):
    kind: Literal["completeness"]
    target: Literal["table", "row", "blank", "unreadable", "ambiguous", "inconsistent"]

    engine = "pandera"
    verdicts = (NotInSet, InSet)
    reads = "cells"
    title = "表格完整性"
    description = (
        "报告格式中的表格、行或单元格缺失、留空、无法读作数字或读数存疑。target: table（缺表）、row（缺行）、"
        "blank（留空）、unreadable（不是数字）、ambiguous（连写数字有多种拆分）、inconsistent（任何拆分都不符合勾稽关系）。"
    )
    example = "kind: completeness\ntarget: blank"

    def placeholders(self) -> dict[str, str]:
        if self.target in ("table", "row"):
            return {
                "table_name": _TABLE_PLACEHOLDERS["table_name"],
                "table_title": _TABLE_PLACEHOLDERS["table_title"],
                "count": "缺少的行数",
                "rows": "缺少的行，按报告格式印出",
            }
        return dict(_TABLE_PLACEHOLDERS)

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        if self.target in ("table", "row"):
            return self._structure(batch, docs)
        cells = _cells_of(batch, docs)
        verdict = NotInSet("flag", (self.target,))
        return Measure(cells, (verdict,), lambda failing: _per_table(batch, failing), _no_tables(docs, cells))

    def _structure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        """Tables and rows the report's template has but the report does not print."""
        expected = [
            {"template": name, "table": table, "row": r.key, "order": i}
            for name, layout in batch.layouts.items()
            for table, spec in layout.tables.items()
            for i, r in enumerate(spec.rows)
        ]
        grid = pl.DataFrame(expected).with_columns(pl.col("table", "row").cast(KEY))
        # A mixed report is held to the rows every template shares (its (六) may be either form).
        common = grid.group_by("table", "row").agg(pl.len(), pl.col("order").first()).filter(pl.col("len") == len(batch.layouts)).drop("len")
        grid = pl.concat([grid, common.with_columns(pl.lit("mixed").alias("template")).select(grid.columns)])
        printed = batch.frames.cells.select("source", "table", "row").unique()
        tables_printed = printed.select("source", "table").unique().with_columns(pl.lit(True).alias("table_printed"))
        frame = (
            docs.select("source", "template")
            .join(grid, on="template", how="inner")
            .join(tables_printed, on=["source", "table"], how="left")
            .join(printed.with_columns(pl.lit(True).alias("row_printed")), on=["source", "table", "row"], how="left")
            .with_columns(pl.col("table_printed", "row_printed").fill_null(False))
            .sort("source", "table", "order")
        )
        if self.target == "row":
            frame = frame.filter(pl.col("table_printed"))
            verdict = InSet("row_printed", (True,))
        else:
            frame = frame.unique(["source", "table"], keep="first", maintain_order=True)
            verdict = InSet("table_printed", (True,))
        rest = unjudged(docs, frame["source"], UNDETERMINED, "未识别报告使用的格式（没有读出任何统计表），无法按模板核对")
        return Measure(frame, (verdict,), lambda failing: self._missing(batch, failing), rest)

    def _missing(self, batch: Batch, failing: pl.DataFrame) -> list[dict]:
        facts = []
        for (source, table), part in failing.group_by(["source", "table"], maintain_order=True):
            template = part["template"][0]
            title = batch.labels.table_title(table)
            rows = part["row"].cast(pl.Utf8).unique(maintain_order=True).to_list()
            labels = [batch.labels.row(table, r, template) for r in rows]
            fact = {
                "source": source,
                "p.table_name": batch.labels.table(table),
                "p.table_title": title,
                "p.count": len(rows),
                "p.rows": "、".join(labels),
            }
            if self.target == "table":
                fact["detail"] = f"{batch.labels.table(table)}“{title}”未找到"
                fact["cells"] = [CellRef(table)]
            else:
                fact["detail"] = f"{batch.labels.table(table)}“{title}”缺少行：{'、'.join(labels)}"
                fact["cells"] = [CellRef(table, r) for r in rows]
            facts.append(fact)
        return facts


class CellCondition(Kind):
    kind: Literal["cell_condition"]
    table: str
    row: str
    col: str
    expr: str  # over `value`, e.g. "value = 0"
    when: str = ""  # over document columns, e.g. "agency_kind = 'department'"

    engine = "pandera"
    verdicts = (Holds,)
    reads = "cells"
    title = "单元格条件"
    description = (
        "某一个单元格应满足的条件。expr 是关于 value（该单元格的数值）的表达式，如“value = 0”；"
        "when 可限定只核对哪些报告，是关于报告属性（agency_kind、report_year、template 等）的表达式。"
        "表达式只能用名称、数字、文字、+ - * /、比较和 and/or/not。单元格留空或缺失时不判断。"
    )
    example = "kind: cell_condition\ntable: active\nrow: regulations\ncol: made\nexpr: value = 0"

    def placeholders(self) -> dict[str, str]:
        return dict(_TABLE_PLACEHOLDERS)

    def references(self, scope: Scope) -> Iterator[Problem]:
        if self.table not in scope.tables():
            yield Problem(("table",), f"{scope.where()}格式中没有表 {self.table}")
            return
        if self.row not in scope.rows(self.table):
            yield Problem(("row",), f"表 {self.table} 没有行 {self.row}（可用：{'、'.join(sorted(scope.rows(self.table)))}）")
        elif self.col not in scope.cols(self.table, [self.row]):
            yield Problem(("col",), f"表 {self.table} 的行 {self.row} 没有列 {self.col}（可用：{'、'.join(sorted(scope.cols(self.table, [self.row])))}）")
        for field, allowed in (("expr", {"value"}), ("when", DOCUMENT_NAMES)):
            text = getattr(self, field)
            if field == "when" and not text:
                continue
            try:
                parse_expression(text, allowed=allowed)
            except ExpressionError as exc:
                yield Problem((field,), f"{exc}（可用的名称：{'、'.join(sorted(allowed))}）", exc.offset)

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        if self.when:
            docs = docs.filter(parse_expression(self.when).polars())
        cells = _cells_of(batch, docs)
        target = (pl.col("table") == self.table) & (pl.col("row") == self.row) & (pl.col("col") == self.col)
        judged = cells.filter(target & pl.col("value").is_not_null())
        cell = batch.labels.cell(self.table, self.row, self.col)
        rest = unjudged(docs, judged["source"], UNDETERMINED, f"未读出“{cell}”的数值")
        return Measure(judged, (Holds(parse_expression(self.expr)),), lambda failing: _per_table(batch, failing), rest)
