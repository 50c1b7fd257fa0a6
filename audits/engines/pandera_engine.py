"""pandera (polars backend) judges the cell- and table-level measures.

Each verdict becomes a check on a column of the measure's frame, the built-in ones where pandera
has them (isin, notin, in_range, str_contains), a Polars comparison otherwise. One lazy validation
per measure collects every failure; pandera reports each by its row index.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from audits.engines.verdicts import Between, Compare, Holds, InSet, Matches, NotInSet, Verdict, columns


def judge(frame: pl.DataFrame, verdicts: tuple[Verdict, ...]) -> list[int]:
    """The positions of the rows of `frame` for which any verdict does not hold (nulls hold)."""
    if frame.is_empty():
        return []
    checks: dict[str, list[pa.Check]] = {}
    for verdict in verdicts:
        column, check = _check(verdict)
        checks.setdefault(column, []).append(check)
    needed = sorted({c for v in verdicts for c in columns(v)})
    schema = pa.DataFrameSchema({name: pa.Column(checks=found, nullable=True) for name, found in checks.items()})
    try:
        schema.validate(frame.select(needed), lazy=True)
    except pa.errors.SchemaErrors as exc:
        return sorted(set(exc.failure_cases["index"].drop_nulls().to_list()))
    return []


def _check(verdict: Verdict) -> tuple[str, pa.Check]:
    """The column a verdict hangs on, and pandera's check for it."""
    if isinstance(verdict, InSet):
        return verdict.column, pa.Check.isin(list(verdict.values))
    if isinstance(verdict, NotInSet):
        return verdict.column, pa.Check.notin(list(verdict.values))
    if isinstance(verdict, Between):
        low = float("-inf") if verdict.low is None else verdict.low
        high = float("inf") if verdict.high is None else verdict.high
        return verdict.column, pa.Check.in_range(low, high)
    if isinstance(verdict, Matches):
        return verdict.column, pa.Check.str_contains(verdict.pattern)
    if isinstance(verdict, Compare):
        left, right, tol = pl.col(verdict.left), pl.col(verdict.right), verdict.tolerance
        if tol:
            holds = {"=": (left - right).abs() <= tol, "<=": left <= right + tol, ">=": left + tol >= right}[verdict.op]
        else:  # exact: also for dates and text, where a tolerance means nothing
            holds = {"=": left == right, "<=": left <= right, ">=": left >= right}[verdict.op]
        return verdict.left, _holds(holds.fill_null(True), f"{verdict.left} {verdict.op} {verdict.right}")
    if isinstance(verdict, Holds):
        expression = verdict.expression
        return expression.names[0], _holds(expression.polars().fill_null(True), expression.text)
    raise TypeError(f"pandera cannot judge {verdict!r}")


def _holds(condition: pl.Expr, name: str) -> pa.Check:
    """A check that reads the whole row (a comparison of two columns, a rule's own condition)."""
    return pa.Check(lambda data: data.lazyframe.select(condition.alias(data.key)), name=name, error=name)
