"""Rule expressions — `a + b = c`, `value = 0`, `agency_kind = 'department'` — parsed, never evaluated.

Python's parser reads the text into a syntax tree (`ast.parse` only parses; nothing runs). Only
names, numbers, strings, `+ - * /`, one comparison per test and `and`/`or`/`not` are accepted;
anything else (a call such as `read_csv('/etc/passwd')`, an attribute, a subscript) is refused
with its position. The tree then becomes a Polars expression. Every rule expression of every kind
goes through this one parser.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import polars as pl

from audits.vocabulary import number

# SQL habits rule authors bring: a single `=` for equality, AND/OR/NOT in capitals.
_SINGLE_EQUALS = re.compile(r"(?<![<>!=])=(?!=)")
_SQL_WORDS = re.compile(r"\b(AND|OR|NOT)\b")
_COMPARE = {ast.Eq: "=", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FAILED = {"=": "≠", "!=": "=", "<": "≥", "<=": ">", ">": "≤", ">=": "<"}


class ExpressionError(ValueError):
    """A rule expression that cannot be used; `offset` is the 0-based column in the expression text."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Expression:
    text: str
    tree: ast.expr = field(repr=False)
    names: tuple[str, ...]  # the names used, in order of first appearance
    offsets: dict[str, int] = field(repr=False, default_factory=dict)  # name → its column in `text`

    # A comparison `left op right` (identities) ----------------------------------------------

    @property
    def is_comparison(self) -> bool:
        return isinstance(self.tree, ast.Compare)

    @property
    def op(self) -> str:
        return _COMPARE[type(self.tree.ops[0])]

    def side(self, which: int) -> ast.expr:
        return self.tree.left if which == 0 else self.tree.comparators[0]

    def side_names(self, which: int) -> list[str]:
        return _names_in(self.side(which))

    def side_polars(self, which: int, column: Callable[[str], pl.Expr] = pl.col) -> pl.Expr:
        return _polars(self.side(which), column)

    def side_written(self, which: int, values: dict[str, object]) -> str:
        """One side with each name replaced by its value: `10 + 1 + 0 + 0`."""
        return _NAME.sub(lambda m: number(values.get(m.group(0))), self._sides[which])

    @cached_property
    def _sides(self) -> tuple[str, str]:
        return ast.unparse(self.side(0)), ast.unparse(self.side(1))

    def failure_written(self, values: dict[str, object]) -> str:
        """The comparison as it failed: `10 + 1 + 0 + 0 ≠ 0`."""
        return f"{self.side_written(0, values)} {_FAILED[self.op]} {self.side_written(1, values)}"

    # Any expression (conditions) ------------------------------------------------------------

    def polars(self, column: Callable[[str], pl.Expr] = pl.col) -> pl.Expr:
        return _polars(self.tree, column)


def parse_expression(text: str, *, comparison: bool = False, allowed: set[str] | None = None) -> Expression:
    """Parse `text`; with `comparison`, it must be one `left (=|<=|>=) right`; with `allowed`, every
    name must be one of them. Raises ExpressionError with the column of the mistake."""
    source, shift = _pythonic(text)
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"表达式无法解析：{text}", shift((exc.offset or 1) - 1)) from None
    leading = len(source) - len(source.lstrip())
    offsets: dict[str, int] = {}
    for node in ast.walk(tree):
        _check_node(node, shift, leading)
        if isinstance(node, ast.Name):
            offsets.setdefault(node.id, shift(node.col_offset + leading))
    if comparison:
        if not isinstance(tree, ast.Compare) or len(tree.ops) != 1 or type(tree.ops[0]) not in (ast.Eq, ast.LtE, ast.GtE):
            raise ExpressionError(f"表达式应有且只有一个 =、<= 或 >=：{text}", 0)
    names = tuple(dict.fromkeys(_names_in(tree)))
    if allowed is not None:
        for name in names:
            if name not in allowed:
                raise ExpressionError(f"未知的名称 {name}", offsets[name])
    return Expression(text, tree, names, offsets)


def _pythonic(text: str) -> tuple[str, Callable[[int], int]]:
    """`a = b AND c` → `a == b and c`, and a map from columns of the result back to `text`."""
    inserted: list[int] = []  # positions in `text` after which one character was inserted

    def double(m: re.Match) -> str:
        inserted.append(m.start())
        return "=="

    source = _SINGLE_EQUALS.sub(double, text)
    source = _SQL_WORDS.sub(lambda m: m.group(0).lower(), source)

    def back(offset: int) -> int:
        for i, at in enumerate(inserted):
            if offset > at + i:
                offset -= 1
        return max(offset, 0)

    return source, back


def _check_node(node: ast.AST, shift: Callable[[int], int], leading: int) -> None:
    allowed = (
        ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Name, ast.Constant, ast.Load,
        ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or,
        ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
    )
    if not isinstance(node, allowed):
        where = shift(getattr(node, "col_offset", 0) + leading)
        what = {ast.Call: "函数调用", ast.Attribute: "属性访问", ast.Subscript: "下标"}.get(type(node), "这种写法")
        raise ExpressionError(f"表达式中不允许{what}（只能用名称、数字、文字、+ - * /、比较和 and/or/not）", where)
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, (int, float, str))):
        raise ExpressionError(f"表达式中不允许常量 {node.value!r}", shift(node.col_offset + leading))
    if isinstance(node, ast.Compare) and len(node.ops) != 1:
        raise ExpressionError("一个比较只能有一个比较符", shift(node.col_offset + leading))


def _names_in(node: ast.AST) -> list[str]:
    found = []

    def visit(n: ast.AST) -> None:
        if isinstance(n, ast.Name):
            found.append(n.id)
        for child in ast.iter_child_nodes(n):
            visit(child)

    visit(node)
    return found


def _polars(node: ast.expr, column: Callable[[str], pl.Expr]) -> pl.Expr:
    if isinstance(node, ast.Name):
        return column(node.id)
    if isinstance(node, ast.Constant):
        return pl.lit(node.value)
    if isinstance(node, ast.UnaryOp):
        inner = _polars(node.operand, column)
        return ~inner if isinstance(node.op, ast.Not) else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.BinOp):
        left, right = _polars(node.left, column), _polars(node.right, column)
        op = type(node.op)
        return left + right if op is ast.Add else left - right if op is ast.Sub else left * right if op is ast.Mult else left / right
    if isinstance(node, ast.BoolOp):
        parts = [_polars(v, column) for v in node.values]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part if isinstance(node.op, ast.And) else combined | part
        return combined
    if isinstance(node, ast.Compare):
        left, right = _polars(node.left, column), _polars(node.comparators[0], column)
        return {
            ast.Eq: left == right, ast.NotEq: left != right, ast.Lt: left < right,
            ast.LtE: left <= right, ast.Gt: left > right, ast.GtE: left >= right,
        }[type(node.ops[0])]
    raise ExpressionError(f"表达式中不允许 {type(node).__name__}")  # unreachable after _check_node
