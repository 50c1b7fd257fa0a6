"""What an engine is asked to judge: a column in a set or a range, two columns compared, a pattern.

A measure computes the columns; a verdict names them and says what must hold. Each engine turns a
verdict into its own check (pandera) or expectation (Great Expectations); a row fails when any of
its measure's verdicts does not hold. A null value is never a failure: what could not be measured
is not judged (the measure says why, as the report's status for the rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from audits.rulebook.expressions import Expression


@dataclass(frozen=True)
class InSet:
    """`column` takes one of `values`."""

    column: str
    values: tuple


@dataclass(frozen=True)
class NotInSet:
    """`column` takes none of `values`."""

    column: str
    values: tuple


@dataclass(frozen=True)
class Between:
    """`low ≤ column ≤ high` (either bound may be open)."""

    column: str
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Compare:
    """`left op right` for op in `=`, `<=`, `>=`, within `tolerance`."""

    left: str
    op: str
    right: str
    tolerance: float = 0.0


@dataclass(frozen=True)
class Matches:
    """`column` contains a match of the regular expression `pattern` (Rust regex syntax)."""

    column: str
    pattern: str


@dataclass(frozen=True)
class Holds:
    """A rule author's own condition (a parsed expression over the row's columns) is true.

    Only pandera judges it: Great Expectations has no expectation for an arbitrary condition.
    """

    expression: Expression


Verdict = InSet | NotInSet | Between | Compare | Matches | Holds


def columns(verdict: Verdict) -> tuple[str, ...]:
    """The columns a verdict reads."""
    if isinstance(verdict, Compare):
        return (verdict.left, verdict.right)
    if isinstance(verdict, Holds):
        return verdict.expression.names
    return (verdict.column,)
