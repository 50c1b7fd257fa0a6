"""Identities over one table's cells, within a report or against the same agency's previous report.

Both pivot a table once per batch (one row per report and column, or per report and row, with a
column per cell name) and share the pivot; pandera judges `left op right` on each row.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property
from typing import Iterator, Literal

import polars as pl
from pydantic import Field

from audits.engines.verdicts import Compare
from audits.frames import KEY
from audits.kinds.base import UNDETERMINED, Batch, Kind, Measure, Problem, Scope, unjudged
from audits.model import CellRef
from audits.parse.digits import parse_number
from audits.rulebook.expressions import Expression, ExpressionError, parse_expression
from audits.vocabulary import number

LEAVES = "leaves"
PREVIOUS = "prev_"


class Identity(Kind):
    kind: Literal["identity"]
    table: str
    for_each: Literal["col", "row"]
    expr: str
    rows: list[str] = Field(default_factory=list)  # for_each row: only these rows (all when empty)
    tolerance: float = 0.0

    engine = "pandera"
    verdicts = (Compare,)
    reads = "cells"
    title = "表内勾稽关系"
    description = (
        "同一张表内的算术关系，如“本年新收 + 上年结转 = 办理结果总计 + 结转下年度”。"
        "for_each: col 时对表的每一列成立，表达式中的名称是行键（leaves 表示模板中各项办理结果之和）；"
        "for_each: row 时对每一行成立，名称是列键（rows 可限定只核对哪些行）。"
        "比较符为 =、<= 或 >=；空白单元格按 0 计算，结论降为警告并注明。"
    )
    example = "kind: identity\ntable: review_litigation\nfor_each: row\nexpr: maintain + correct + other + pending = total"

    @cached_property
    def expression(self) -> Expression:
        return parse_expression(self.expr, comparison=True)

    @property
    def across_years(self) -> bool:
        return False

    # Load ----------------------------------------------------------------------------------

    def placeholders(self) -> dict[str, str]:
        label = "col_label" if self.for_each == "col" else "row_label"
        fixed = {
            "table_name": "表名（如“表三”）",
            label: "所核对的列名或行名，按报告格式印出（如“自然人”“行政复议”）",
            "lhs": "左边各项代入数值（如“10 + 1 + 0 + 0”）",
            "rhs": "右边各项代入数值",
        }
        try:
            names = self.expression.names
        except ExpressionError:
            names = ()
        return fixed | {n: "该单元格的数值（空白按 0）" for n in names}

    def references(self, scope: Scope) -> Iterator[Problem]:
        if self.table not in scope.tables():
            yield Problem(("table",), f"{scope.where()}格式中没有表 {self.table}（可用：{'、'.join(sorted(scope.tables()))}）")
            return
        for i, row in enumerate(self.rows):
            if row not in scope.rows(self.table):
                yield Problem(("rows", i), f"表 {self.table} 没有行 {row}")
        try:
            expression = parse_expression(self.expr, comparison=True)
        except ExpressionError as exc:
            yield Problem(("expr",), str(exc), exc.offset)
            return
        allowed = self._names(scope)
        what = "行" if self.for_each == "col" else "列"
        for name in expression.names:
            if name not in allowed:
                known = "、".join(sorted(n for n in allowed if not n.startswith(PREVIOUS)))
                yield Problem(("expr",), f"表 {self.table} 没有名为 {name} 的{what}（可用：{known}）", expression.offsets[name])

    def _names(self, scope: Scope) -> set[str]:
        if self.for_each == "col":
            names = scope.rows(self.table) | ({LEAVES} if scope.leaves(self.table) else set())
        else:
            names = scope.cols(self.table, self.rows or None)
        return names | {PREVIOUS + n for n in names if n != LEAVES} if self.across_years else names

    # Measure -------------------------------------------------------------------------------

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        wide = pivot(batch, self.table, self.for_each).join(docs.select("source"), on="source", how="semi")
        names = [n for n in self.expression.names if n != LEAVES]
        leaves = sorted({r.key for layout in batch.layouts.values() for r in layout.tables[self.table].rows if r.leaf}) if LEAVES in self.expression.names else []
        return self._judge(batch, docs, wide, names, leaves)

    def _judge(self, batch: Batch, docs: pl.DataFrame, wide: pl.DataFrame, names: list[str], leaves: list[str]) -> Measure:
        each = _axes(self.for_each)[0]
        wide = _with_names(wide, set(names) | set(leaves))
        present = lambda n: pl.col(f"v:{n}").is_not_null() | pl.col(f"f:{n}").is_not_null()  # noqa: E731
        eligible = pl.all_horizontal([present(n) for n in names] or [pl.lit(True)])
        if leaves:
            wide = wide.with_columns(
                pl.sum_horizontal([pl.col(n) for n in leaves]).alias(LEAVES),
                pl.any_horizontal([present(n) for n in leaves]).alias("has:leaves"),
            )
            eligible &= pl.col("has:leaves")
        # A side printed entirely blank cannot be held to the other: that is CELL-BLANK's finding,
        # not an identity failure (上海 2019 leaves every 总计 of table 三's result rows empty).
        for side in (0, 1):
            side_names = self.expression.side_names(side)
            printed = [pl.col(f"v:{n}").is_not_null() for n in side_names if n != LEAVES]
            if LEAVES in side_names:
                printed += [pl.col(f"v:{n}").is_not_null() for n in leaves]
            eligible &= pl.any_horizontal(printed)
        if self.rows:
            eligible &= pl.col(each).cast(pl.Utf8).is_in(self.rows)
        judged = wide.filter(eligible).with_columns(
            self.expression.side_polars(0).alias("left"), self.expression.side_polars(1).alias("right")
        )
        table_name = batch.labels.table(self.table)
        printed_tables = batch.frames.documents.filter(pl.col("tables_found").str.contains(self.table, literal=True)).select("source")
        missing = unjudged(docs, judged["source"], UNDETERMINED, pl.lit(""))
        missing = missing.with_columns(
            pl.when(pl.col("source").is_in(printed_tables["source"].implode()))
            .then(pl.lit(f"{table_name}中本规则所涉单元格缺失或整边空白，无法核对"))
            .otherwise(pl.lit(f"未找到{table_name}"))
            .alias("reason")
        )
        verdict = Compare("left", self.expression.op, "right", self.tolerance + 1e-9)
        notes = batch.frames.notes.filter(pl.col("table") == self.table)
        return Measure(judged, (verdict,), lambda failing: self._explain(batch, failing, each, leaves, notes), missing)

    # Explain -------------------------------------------------------------------------------

    def _explain(self, batch: Batch, failing: pl.DataFrame, each: str, leaves: list[str], notes: pl.DataFrame) -> list[dict]:
        runs = _digit_runs(notes)
        names = list(self.expression.names)
        label_kind = "col_label" if self.for_each == "col" else "row_label"
        facts = []
        for row in failing.iter_rows(named=True):
            involved = [n for n in names if n != LEAVES]
            if LEAVES in names:
                involved += [n for n in leaves if row.get(f"v:{n}") is not None or row.get(f"f:{n}")]
            cells = [self._cell(n, row, each) for n in involved]
            flags = {c.flag for c in cells}
            caveats, severity = [], None
            if "blank" in flags:
                # NOTE: the failure may be no more than an unfilled cell; a person must look.
                severity = "warning"
                caveats.append("空白单元格按 0 计算（结论含推定）")
            if "ambiguous" in flags:
                # NOTE: a finding resting on a guessed cell says which cell is a guess and what else
                # it could be; it is never more than a warning (cross-year rules included).
                severity = "warning"
                guesses = [self._guess(batch, c, row, n) for n, c in zip(involved, cells) if c.flag == "ambiguous"]
                caveats.append("所涉单元格" + "、".join(guesses) + "由连写数字推测拆分（存在多种拆分），结论待人工核实")
            if "ocr" in flags:
                # NOTE: OCR may misread a digit; the finding keeps its severity but says which cells
                # a reviewer should compare with the scan.
                read = [batch.labels.cell(c.table, c.row, c.col, row.get("template")) for c in cells if c.flag == "ocr"]
                caveats.append("所涉单元格" + "、".join(read) + "由扫描页文字识别（OCR）读出，请对照原件核实")
            if "inconsistent" in flags:
                rows = sorted({(c.row if each == "col" else row[each]) for c in cells if c.flag == "inconsistent"} | {""})
                printed = [d for r in rows for d in runs.get((row["source"], r), [])]
                if printed:
                    caveats.append("原文连写数字: " + "；".join(printed))
            values = {n: row.get(n) for n in names}
            template = row.get("template")
            label = batch.labels.col(self.table, row[each], template) if each == "col" else batch.labels.row(self.table, row[each], template)
            facts.append(
                {
                    "source": row["source"],
                    "detail": self.expression.failure_written(values),
                    "cells": cells,
                    "caveats": caveats,
                    "severity": severity,
                    "observed": number(row["left"]),
                    "expected": number(row["right"]),
                    "p.table_name": batch.labels.table(self.table),
                    f"p.{label_kind}": label,
                    "p.lhs": self.expression.side_written(0, values),
                    "p.rhs": self.expression.side_written(1, values),
                    **{f"p.{n}": number(row.get(n)) for n in names},
                }
            )
        return facts

    def _guess(self, batch: Batch, cell: CellRef, row: dict, name: str) -> str:
        """`上一年度表二 · 行政规范性文件 · 现行有效件数（读作 40，也可能是 440、3440）`."""
        label = batch.labels.cell(cell.table, cell.row, cell.col, row.get("template"))
        readings = (number(parse_number(o, signed=True)) if o else "空" for o in str(row.get(f"o:{name}") or "").split("|") if row.get(f"o:{name}"))
        others = [o for o in dict.fromkeys(readings) if o != number(cell.value)]
        also = f"，也可能是 {'、'.join(others)}" if others else ""
        return f"{'上一年度' if cell.previous else ''}{label}（读作 {number(cell.value)}{also}）"

    def _cell(self, name: str, row: dict, each: str) -> CellRef:
        key = name.removeprefix(PREVIOUS)
        r, c = (key, row[each]) if each == "col" else (row[each], key)
        return CellRef(self.table, r, c, row.get(f"v:{name}"), "", row.get(f"f:{name}") or "", name.startswith(PREVIOUS))


class CrossYear(Identity):
    kind: Literal["cross_year"]  # type: ignore[assignment]

    title = "跨年度核对"
    description = (
        "本年度报告与同一机关上一年度报告之间的关系。表达式中以 prev_ 开头的名称是上一年度报告的单元格，"
        "如“carried_over = prev_carried_forward”。上一年度报告取自同一批次，或定时任务以往运行的记录。"
        "其余写法同 identity。"
    )
    example = "kind: cross_year\ntable: applications\nfor_each: col\nexpr: carried_over = prev_carried_forward"

    @property
    def across_years(self) -> bool:
        return True

    def placeholders(self) -> dict[str, str]:
        return {k: (v.replace("该单元格", "上一年度该单元格") if k.startswith(PREVIOUS) else v) for k, v in super().placeholders().items()}

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        each, across = _axes(self.for_each)
        key = ["agency_id", "report_year", each]
        wide = pivot(batch, self.table, self.for_each)
        printed = [c for c in wide.columns if c.startswith(("v:", "f:", "o:"))]
        earlier = wide.select(*key, *(pl.col(c).alias(f"{c[:2]}{PREVIOUS}{c[2:]}") for c in printed))
        if batch.history is not None and not batch.history.is_empty():
            stored = batch.history.filter(pl.col("table") == self.table).with_columns(pl.col("row", "col", "flag").cast(KEY))
            earlier = pl.concat([earlier, _pivot(stored, key, across, PREVIOUS)], how="diagonal_relaxed")
        # The batch's own report of a year comes before the stored one.
        previous = earlier.unique(key, keep="first", maintain_order=True).with_columns(pl.col("report_year") + 1)
        wide = wide.join(docs.select("source"), on="source", how="semi").join(previous, on=key, how="inner")
        measure = self._judge(batch, docs, wide, list(self.expression.names), [])
        paired = wide.select("source").unique()
        alone = pl.col("source").is_in(paired["source"].implode()).not_()
        measure.unjudged = measure.unjudged.with_columns(
            pl.when(alone).then(pl.lit(f"批次和以往运行中都没有同一机关上一年度报告的{batch.labels.table(self.table)}，无法核对")).otherwise(pl.col("reason")).alias("reason")
        )
        return measure


# Pivots -------------------------------------------------------------------------------------


def _axes(for_each: str) -> tuple[str, str]:
    """(the key each row of the pivot is for, the key whose names become its columns)."""
    return ("col", "row") if for_each == "col" else ("row", "col")


def pivot(batch: Batch, table: str, for_each: str) -> pl.DataFrame:
    """One table's cells, one row per report and `for_each` key, with the document columns the
    rules need; made once per batch and shared by every identity and cross-year rule."""

    def compute() -> pl.DataFrame:
        each, across = _axes(for_each)
        cells = batch.frames.cells.filter(pl.col("table") == table)
        docs = batch.frames.documents.select("source", "agency_id", "report_year", "template")
        return _pivot(cells, ["source", each], across, "").join(docs, on="source", how="left")

    return batch.shared(("pivot", table, for_each), compute)


def _pivot(cells: pl.DataFrame, index: list[str], across: str, prefix: str) -> pl.DataFrame:
    """One row per `index`, with `v:<prefix><name>` (value) and `f:<prefix><name>` (flag) per name."""
    names = cells[across].unique().to_list()
    values = ["value", "flag"] + (["options"] if "options" in cells.columns else [])
    wide = cells.pivot(on=across, index=index, values=values, aggregate_function="first")
    renamed = {f"value_{n}": f"v:{prefix}{n}" for n in names} | {f"flag_{n}": f"f:{prefix}{n}" for n in names}
    if "options" in values:
        renamed |= {f"options_{n}": f"o:{prefix}{n}" for n in names}
    return wide.rename(renamed)


def _with_names(wide: pl.DataFrame, names: set[str]) -> pl.DataFrame:
    """A column per name: the value with a blank or absent cell as 0 (`v:`/`f:` keep what was printed)."""
    absent = sorted(n for n in names if f"v:{n}" not in wide.columns)
    wide = wide.with_columns(*(pl.lit(None, pl.Float64).alias(f"v:{n}") for n in absent), *(pl.lit(None, pl.Utf8).alias(f"f:{n}") for n in absent))
    return wide.with_columns(pl.col(f"v:{n}").fill_null(0).alias(n) for n in sorted(names))


def _digit_runs(notes: pl.DataFrame) -> dict[tuple[str, str], list[str]]:
    """What the parser noted about split digit runs, by (source, row); "" is a whole-table run."""
    runs: dict[tuple[str, str], list[str]] = defaultdict(list)
    inconsistent = notes.filter((pl.col("kind") == "split") & pl.col("detail").str.contains("不符合勾稽关系"))
    for source, row, detail in inconsistent.select("source", "row", "detail").iter_rows():
        runs[(source, row)].append(detail)
    return runs
