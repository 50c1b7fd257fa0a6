"""pandera (polars backend) runs the cell- and table-level kinds over the whole batch at once.

Each kind builds one wide Polars frame for the batch (e.g. one row per report and column of table
三); every rule of that kind becomes a pandera dataframe check whose error is the rule id; one
`validate(lazy=True)` per frame collects all failures, which become findings.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pandera.polars as pa
import polars as pl

from audits.checks import CellConditionCheck, CompletenessCheck, CrossYearCheck, IdentityCheck, ValueDomainCheck
from audits.engines.base import finding, number
from audits.frames import KEY, Frames
from audits.model import Finding
from audits.rulebook import Rule, Rulebook, applies_expr, identity_names, identity_sides

LEAVES = "leaves"
ROW_NUMBER = "__row"


def run(rules: list[Rule], frames: Frames, book: Rulebook, history: pl.DataFrame | None = None) -> list[Finding]:
    """All pandera kinds; `history` holds earlier runs' cells (agency_id, report_year, table, row, col, value, flag)."""
    docs = frames.documents.select("source", "agency", "agency_id", "report_year", "template", "agency_kind", "status")
    names = labels(book)
    findings: list[Finding] = []
    groups: dict[tuple[str, str, bool], list[Rule]] = defaultdict(list)
    for rule in rules:
        if isinstance(rule.check, (IdentityCheck, CrossYearCheck)):
            groups[(rule.check.table, rule.check.for_each, isinstance(rule.check, CrossYearCheck))].append(rule)
    wide_by_table = {}
    for (table, for_each, across_years), group in groups.items():
        if (table, for_each) not in wide_by_table:
            wide_by_table[(table, for_each)] = _wide(frames.cells.filter(pl.col("table") == table), for_each, docs)
        wide, notes = wide_by_table[(table, for_each)], frames.notes.filter(pl.col("table") == table)
        if wide.is_empty():
            continue
        if across_years:
            findings += _cross_year(group, table, for_each, wide, history, notes, names)
        else:
            findings += _identities(group, table, for_each, wide, notes, book, names)
    cell_rules = [r for r in rules if isinstance(r.check, (ValueDomainCheck, CellConditionCheck))]
    cell_rules += [r for r in rules if isinstance(r.check, CompletenessCheck) and r.check.target not in ("table", "row")]
    if cell_rules:
        findings += _cell_rules(cell_rules, frames, docs, book, names)
    structure = [r for r in rules if isinstance(r.check, CompletenessCheck) and r.check.target in ("table", "row")]
    if structure:
        findings += _structure_rules(structure, frames, docs, book)
    return findings


def labels(book: Rulebook) -> dict[str, dict[str, str]]:
    """Chinese names for messages: `table` → 表二…, `row:<table>`/`col:<table>` → the printed labels."""
    out: dict[str, dict[str, str]] = {"table": {}}
    for layout in book.layouts.values():
        numerals = {s.key: s.numeral for s in layout.sections}
        for table, spec in layout.tables.items():
            out["table"][table] = f"表{numerals.get(table, '')}"
            out.setdefault(f"row:{table}", {}).update({r.key: r.label for r in spec.rows})
            out.setdefault(f"col:{table}", {}).update(spec.col_labels)
    return out


def _validate(frame: pl.DataFrame, checks: dict[str, pl.Expr]) -> dict[str, pl.Series]:
    """Row numbers failing each check (rule id → row numbers), from one lazy pandera validation.

    The checks read the whole frame but hang on one row-number column: pandera then reports each
    failure as that number alone. (On a frame-wide check it would turn every failing row into a
    Python dict: seconds for the hundreds of thousands of blank cells of a large batch.)
    """
    if frame.is_empty() or not checks:
        return {}
    numbered = frame.with_row_index(ROW_NUMBER)
    schema = pa.DataFrameSchema(
        {ROW_NUMBER: pa.Column(checks=[pa.Check(lambda data, ok=ok: data.lazyframe.select(ok.alias("ok")), error=rid) for rid, ok in checks.items()])}
    )
    try:
        schema.validate(numbered, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.filter(pl.col("column") == ROW_NUMBER).group_by("check").agg(pl.col("index"))
        return {rid: index for rid, index in zip(cases["check"], cases["index"])}
    return {}


# Identities ---------------------------------------------------------------------------------


def _axes(for_each: str) -> tuple[str, str]:
    """(the key each row of the wide frame is for, the key whose names become its columns)."""
    return ("col", "row") if for_each == "col" else ("row", "col")


def _wide(cells: pl.DataFrame, for_each: str, docs: pl.DataFrame) -> pl.DataFrame:
    """One table's cells pivoted once per run (identity and cross-year rules share it), with the document columns."""
    each, across = _axes(for_each)
    return _pivot(cells, ["source", each], across, "").join(docs, on="source", how="left")


def _identities(rules: list[Rule], table: str, for_each: str, wide: pl.DataFrame, notes: pl.DataFrame, book: Rulebook, names_zh: dict) -> list[Finding]:
    each, _ = _axes(for_each)
    uses_leaves = any(LEAVES in identity_names(r.check.expr) for r in rules)
    leaves = sorted({r.key for layout in book.layouts.values() for r in layout.tables[table].rows if r.leaf}) if uses_leaves else []
    wide = _with_names(wide, set(leaves) | set(_all_names(rules)) - {LEAVES})
    if leaves:
        wide = wide.with_columns(
            pl.sum_horizontal([pl.col(n) for n in leaves]).alias(LEAVES),
            pl.any_horizontal([pl.col(f"v:{n}").is_not_null() | pl.col(f"f:{n}").is_not_null() for n in leaves]).alias("has:leaves"),
        )
    return _judge_identities(rules, wide, each, table, leaves, notes, names_zh)


def _with_names(wide: pl.DataFrame, names: set[str]) -> pl.DataFrame:
    """A column per name the rules use: the value with a blank or absent cell as 0 (`v:`/`f:` keep what was printed)."""
    absent = sorted(n for n in names if f"v:{n}" not in wide.columns)
    wide = wide.with_columns(*(pl.lit(None, pl.Float64).alias(f"v:{n}") for n in absent), *(pl.lit(None, pl.Utf8).alias(f"f:{n}") for n in absent))
    return wide.with_columns(pl.col(f"v:{n}").fill_null(0).alias(n) for n in sorted(names))


def _judge_identities(rules: list[Rule], wide: pl.DataFrame, each: str, table: str, leaves: list[str], notes: pl.DataFrame, names_zh: dict) -> list[Finding]:
    """Each rule's expression as a pandera check over `wide` (value columns `name`, printed `v:name`, flags `f:name`)."""
    checks = {}
    for rule in rules:
        lhs, op, rhs = identity_sides(rule.check.expr)
        needed = [n for n in identity_names(rule.check.expr) if n != LEAVES]
        eligible = applies_expr(rule) & pl.all_horizontal(
            [pl.col(f"v:{n}").is_not_null() | pl.col(f"f:{n}").is_not_null() for n in needed] or [pl.lit(True)]
        )
        # A side printed entirely blank cannot be held to the other: that is CELL-BLANK's finding,
        # not an identity failure (上海 2019 leaves every 总计 of table 三's result rows empty).
        for side in re.split(r"<=|>=|=", rule.check.expr):
            names = identity_names(side)
            printed = [pl.col(f"v:{n}").is_not_null() for n in names if n != LEAVES]
            if LEAVES in names:
                printed += [pl.col(f"v:{n}").is_not_null() for n in leaves]
            eligible &= pl.any_horizontal(printed)
        if LEAVES in identity_names(rule.check.expr):
            eligible &= pl.col("has:leaves")
        if rule.check.rows:
            eligible &= pl.col(each).is_in(rule.check.rows)
        tol = rule.check.tolerance + 1e-9
        holds = {"=": (lhs - rhs).abs() <= tol, "<=": lhs <= rhs + tol, ">=": lhs + tol >= rhs}[op]
        checks[rule.id] = ~eligible | holds
    failures = _validate(wide, checks)
    printed = _digit_runs(notes)
    return [
        _identity_finding(rule, row, each, table, leaves, printed, names_zh)
        for rule in rules
        if rule.id in failures
        for row in wide[failures[rule.id]].iter_rows(named=True)
    ]


def _digit_runs(notes: pl.DataFrame) -> dict[tuple[str, str], list[str]]:
    """What the parser noted about split digit runs, by (source, row); "" is a whole-table run."""
    runs: dict[tuple[str, str], list[str]] = defaultdict(list)
    inconsistent = notes.filter((pl.col("kind") == "split") & pl.col("detail").str.contains("不符合勾稽关系"))
    for source, row, detail in inconsistent.select("source", "row", "detail").iter_rows():
        runs[(source, row)].append(detail)
    return runs


def _cross_year(rules: list[Rule], table: str, for_each: str, wide: pl.DataFrame, history: pl.DataFrame | None, notes: pl.DataFrame, names_zh: dict) -> list[Finding]:
    """Identities between a report and the same agency's report of the year before (batch or store)."""
    each, across = _axes(for_each)
    key = ["agency_id", "report_year", each]
    printed = [c for c in wide.columns if c.startswith(("v:", "f:"))]
    earlier = wide.select(*key, *(pl.col(c).alias(f"{c[:2]}prev_{c[2:]}") for c in printed))
    if history is not None and not history.is_empty():
        stored = history.filter(pl.col("table") == table).with_columns(pl.col("row", "col", "flag").cast(KEY))
        stored = _pivot(stored, key, across, "prev_")
        earlier = pl.concat([earlier, stored], how="diagonal_relaxed")
    # The batch's own report of a year comes before the stored one.
    previous = earlier.unique(key, keep="first", maintain_order=True).with_columns(pl.col("report_year") + 1)
    wide = wide.join(previous, on=key, how="inner")
    wide = _with_names(wide, {n for r in rules for n in identity_names(r.check.expr)})
    return _judge_identities(rules, wide, each, table, [], notes, names_zh)


def _pivot(cells: pl.DataFrame, index: list[str], across: str, prefix: str) -> pl.DataFrame:
    """One row per `index`, with `v:<prefix><name>` (value) and `f:<prefix><name>` (flag) per name."""
    names = cells[across].unique().to_list()
    wide = cells.pivot(on=across, index=index, values=["value", "flag"], aggregate_function="first")
    return wide.rename({f"value_{n}": f"v:{prefix}{n}" for n in names} | {f"flag_{n}": f"f:{prefix}{n}" for n in names})


def _all_names(rules: list[Rule]) -> list[str]:
    return sorted({n for r in rules for n in identity_names(r.check.expr)})


def _identity_finding(rule: Rule, row: dict, each: str, table: str, leaves: list[str], printed: dict, names_zh: dict) -> Finding:
    names = identity_names(rule.check.expr)
    involved = [n for n in names if n != LEAVES] + ([n for n in leaves if row.get(f"v:{n}") is not None or row.get(f"f:{n}")] if LEAVES in names else [])
    def key(n: str) -> str:
        year = "上年." if n.startswith("prev_") else ""
        n = n.removeprefix("prev_")
        return f"{year}{table}.{n}.{row[each]}" if each == "col" else f"{year}{table}.{row[each]}.{n}"

    flags = {n: row.get(f"f:{n}") or "" for n in involved}
    arithmetic = _arithmetic(rule.check.expr, row)
    parts = [f"{key(n)}={number(row.get(f'v:{n}'))}" for n in involved]
    evidence = f"{arithmetic}；" + "，".join(parts)
    severity = None
    if any(f == "blank" for f in flags.values()):
        # NOTE: the failure may be no more than an unfilled cell; a person must look.
        severity = "warning"
        evidence += "；空白单元格按 0 计算（结论含推定）"
    if any(f == "ambiguous" for f in flags.values()):
        severity = "warning"
        evidence += "；所涉单元格由连写数字拆分而来，存在多种拆分，结论待人工核实"
    if any(f == "inconsistent" for f in flags.values()):
        rows = sorted({n if each == "col" else row[each] for n, f in flags.items() if f == "inconsistent"} | {""})
        evidence += "；原文连写数字: " + "；".join(d for r in rows for d in printed.get((row["source"], r), []))
    context = {
        each: row[each],
        f"{each}_label": names_zh.get(f"{each}:{table}", {}).get(row[each], row[each]),
        "table_name": names_zh["table"].get(table, table),
        "lhs": _side(rule.check.expr, row, 0),
        "rhs": _side(rule.check.expr, row, 1),
    }
    context.update({n: row.get(n) for n in names})
    return finding(rule, row, context, evidence, severity=severity, cells=tuple(key(n) for n in involved))


def _side(expr: str, row: dict, which: int) -> str:
    return _substitute(re.split(r"<=|>=|=", expr)[which], row)


def _substitute(side: str, row: dict) -> str:
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: number(row.get(m.group(0))), side).strip()


def _arithmetic(expr: str, row: dict) -> str:
    """`21 + 0 ≠ 20 + 0`: the identity written out with the printed numbers."""
    op = re.search(r"<=|>=|=", expr).group(0)
    lhs, rhs = re.split(r"<=|>=|=", expr)
    shown = {"=": "≠", "<=": ">", ">=": "<"}[op]
    return f"{_substitute(lhs, row)} {shown} {_substitute(rhs, row)}"


# Cells --------------------------------------------------------------------------------------


def _cell_rules(rules: list[Rule], frames: Frames, docs: pl.DataFrame, book: Rulebook, names_zh: dict) -> list[Finding]:
    decimal = {(t, r.key, c) for layout in book.layouts.values() for t, spec in layout.tables.items() for r in spec.rows for c in r.decimal}
    signed = {(t, r.key, c) for layout in book.layouts.values() for t, spec in layout.tables.items() for r in spec.rows for c in r.signed}
    cells = frames.cells.join(docs.select("source", "agency", "report_year", "template", "agency_kind"), on="source", how="left")

    def key_of(keys: set[tuple[str, str, str]]) -> pl.Expr:
        return pl.any_horizontal([(pl.col("table") == t) & (pl.col("row") == r) & (pl.col("col") == c) for t, r, c in sorted(keys)] or [pl.lit(False)])

    checks = {}
    for rule in rules:
        c = rule.check
        applicable = applies_expr(rule)
        if isinstance(c, ValueDomainCheck):
            value = pl.col("value")
            integral = (value == value.round(0)) | key_of(decimal)
            in_range = (value >= c.min) | key_of(signed)
            checks[rule.id] = ~(applicable & pl.col("table").is_in(c.tables)) | value.is_null() | (integral & in_range)
        elif isinstance(c, CellConditionCheck):
            target = (pl.col("table") == c.table) & (pl.col("row") == c.row) & (pl.col("col") == c.col)
            when = pl.sql_expr(c.when) if c.when else pl.lit(True)
            checks[rule.id] = ~(applicable & target & when & pl.col("value").is_not_null()) | pl.sql_expr(c.expr)
        else:
            checks[rule.id] = ~applicable | (pl.col("flag") != c.target)
    failures = _validate(cells, checks)
    findings = []
    for rule in rules:
        if rule.id not in failures:
            continue
        # One finding per report and table, however many cells fail in it.
        failing = cells[failures[rule.id]].with_columns(pl.concat_str("table", "row", "col", separator=".").alias("key"))
        grouped = failing.group_by(["source", "table"], maintain_order=True).agg(
            pl.col("agency", "report_year", "line", "value").first(), pl.col("key"), pl.col("raw")
        )
        for row in grouped.iter_rows(named=True):
            findings.append(_cells_finding(rule, row, names_zh["table"].get(row["table"], row["table"])))
    return findings


def _cells_finding(rule: Rule, row: dict, table_name: str) -> Finding:
    keys, raws = row["key"], row["raw"]
    shown = "，".join(f"{k}={(r or '空')!s}" for k, r in zip(keys[:12], raws[:12]))
    more = f" 等 {len(keys)} 个" if len(keys) > 12 else ""
    context = {"table": row["table"], "table_name": table_name, "count": len(keys), "cells": "，".join(keys[:6]) + more, "value": row["value"]}
    evidence = f"第 {row['line']} 行起：{shown}{more}"
    return finding(rule, row, context, evidence, cells=tuple(keys), line=row["line"])


# Tables and rows ----------------------------------------------------------------------------


def _structure_rules(rules: list[Rule], frames: Frames, docs: pl.DataFrame, book: Rulebook) -> list[Finding]:
    """Tables and rows the report's template has but the report does not print."""
    expected = []
    for name, layout in book.layouts.items():
        for table, spec in layout.tables.items():
            expected.extend({"template": name, "table": table, "row": r.key} for r in spec.rows)
    grid = pl.DataFrame(expected).with_columns(pl.col("table", "row").cast(KEY))
    # A mixed report is held to the rows every template shares (its (六) may be either form).
    common = grid.group_by("table", "row").len().filter(pl.col("len") == len(book.layouts)).drop("len")
    grid = pl.concat([grid, common.with_columns(pl.lit("mixed").alias("template")).select(grid.columns)])
    printed = frames.cells.select("source", "table", "row").unique()
    tables_printed = printed.select("source", "table").unique().with_columns(pl.lit(True).alias("table_printed"))
    frame = (
        docs.filter(pl.col("status") != "failed")
        .join(grid, on="template", how="inner")
        .join(tables_printed, on=["source", "table"], how="left")
        .join(printed.with_columns(pl.lit(True).alias("row_printed")), on=["source", "table", "row"], how="left")
        .with_columns(pl.col("table_printed", "row_printed").fill_null(False))
        .sort("source", "table")
        .with_row_index("__i")
    )
    checks = {}
    for rule in rules:
        if rule.check.target == "table":
            checks[rule.id] = ~applies_expr(rule) | pl.col("table_printed")
        else:
            checks[rule.id] = ~applies_expr(rule) | ~pl.col("table_printed") | pl.col("row_printed")
    failures = _validate(frame, checks)
    titles = {t: spec.title for layout in book.layouts.values() for t, spec in layout.tables.items()}
    findings = []
    for rule in rules:
        if rule.id not in failures:
            continue
        rows = frame[failures[rule.id]]
        for (_, table), part in rows.group_by(["source", "table"], maintain_order=True):
            first = part.row(0, named=True)
            missing = part["row"].unique(maintain_order=True).to_list()
            context = {"table": table, "table_title": titles.get(table, table), "rows": "、".join(missing), "count": len(missing)}
            evidence = f"表“{titles.get(table, table)}”" + ("未找到" if rule.check.target == "table" else f"缺少行: {'、'.join(missing)}")
            cells = tuple(f"{table}.{r}" for r in missing) if rule.check.target == "row" else (table,)
            findings.append(finding(rule, first, context, evidence, cells=cells))
    return findings
