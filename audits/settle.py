"""Settle the open readings of run-together table rows over the whole batch, before the rules.

A row printed as one run of digits with no arithmetic inside it (表二 `6233440`: 本年制发 / 本年废止 /
现行有效) can be read several ways. Parsing keeps, per report, every reading the report itself does
not rule out (the cells' `options`; the narrative's own figures have already pruned them). Here the
same agency's other reports — in the batch, or earlier runs' cells — decide, in this order:

 1. chains: a relation with the agency's report of the year before that a reading satisfies exactly
    (现行有效 = 上年现行有效 + 制发 − 废止; 2019 format: 上一年项目数量 = 上年的上一年项目数量 +
    上年的本年增/减) — the layouts' `chains`;
 2. expectations within the row (现行有效 ≥ 制发; 2019 format: 新制作 = 新公开) — the layouts' `expect`;
 3. magnitudes: how far each cell is from the same cell of the agency's neighbouring reports (the
    distance of log(1 + value), divided by √(years apart)), when the closest reading is closer than
    every other by at least MARGIN.

The readings of one agency's reports are chosen together, year by year along the chain (a reading
of 2024 is judged with those of 2022 and 2025 it could sit between). A cell is settled when every
reading still in the running gives it the same value; otherwise it stays `ambiguous`, with the most
plausible value and the remaining readings in `options`. Only rows whose table declares chains or
expectations are settled here (表三 and 四 rows are settled by their own tables' arithmetic).
Per-report parsing stays independent: this step only rewrites the batch's cells and adds notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import groupby

import polars as pl

from audits.frames import KEY, NOTE_SCHEMA, Frames
from audits.layouts import Layout, Relation
from audits.parse.digits import parse_number

MARGIN = 2.0  # log-ratio units: the runner-up must be e² ≈ 7 times further off, summed over cells
EXACT = 1e-6


@dataclass(frozen=True)
class _Rules:
    """What the layouts say about the rows that can be settled."""

    chains: dict[tuple[str, str], list[Relation]]
    expect: dict[tuple[str, str], list[Relation]]
    signed: set[tuple[str, str, str]]
    col_labels: dict[tuple[str, str], str]

    @classmethod
    def of(cls, layouts: dict[str, Layout]) -> "_Rules":
        chains: dict = {}
        expect: dict = {}
        signed, labels = set(), {}
        for layout in layouts.values():
            for table, spec in layout.tables.items():
                for col, label in spec.col_labels.items():
                    labels.setdefault((table, col), label)
                for relation in spec.chains:
                    for row in relation.rows:
                        chains.setdefault((table, row), []).append(relation)
                for relation in spec.expect:
                    for row in relation.rows:
                        expect.setdefault((table, row), []).append(relation)
                for row in spec.rows:
                    signed.update((table, row.key, c) for c in row.signed)
        return cls(chains, expect, signed, labels)

    def written(self, table: str, expr: str) -> str:
        """A relation in the report's words: `现行有效件数 = 上年现行有效件数 + 本年制发件数 − 本年废止件数`."""
        import re

        def label(m: re.Match) -> str:
            name = m.group(0)
            previous = name.startswith("prev_")
            col = name.removeprefix("prev_")
            return ("上年" if previous else "") + self.col_labels.get((table, col), col)

        text = re.sub(r"[A-Za-z_][A-Za-z0-9_]*", label, expr)
        return text.replace(" - ", " − ").replace(">=", "≥").replace("<=", "≤")

    @property
    def rows(self) -> set[tuple[str, str]]:
        return set(self.chains) | set(self.expect)


def settle_batch(frames: Frames, layouts: dict[str, Layout], history: pl.DataFrame | None = None) -> Frames:
    """The batch's frames with the open readings settled as far as the agencies' reports allow."""
    rules = _Rules.of(layouts)
    cells = frames.cells
    open_rows = (
        cells.filter(pl.col("options").is_not_null())
        .select(pl.col("source"), pl.col("table").cast(pl.Utf8), pl.col("row").cast(pl.Utf8))
        .unique()
        .filter(pl.struct("table", "row").map_elements(lambda s: (s["table"], s["row"]) in rules.rows, return_dtype=pl.Boolean))
    )
    if open_rows.is_empty():
        return frames
    readings = _nodes(frames, open_rows, history).sort("agency_id", "table", "row", "report_year", "source", "k", nulls_last=True)
    columns = ("agency_id", "table", "row", "report_year", "source", "k", "open", "col", "value", "piece")
    decisions = []
    for (_, table, row), series in groupby(readings.select(columns).iter_rows(), key=lambda r: r[:3]):
        decisions += _settle_series(table, row, list(series), rules)
    if not decisions:
        return frames
    return _apply(frames, decisions, rules)


# Candidates -----------------------------------------------------------------------------------


def _nodes(frames: Frames, open_rows: pl.DataFrame, history: pl.DataFrame | None) -> pl.DataFrame:
    """One row per report (node) of every agency with an open row, and each of its readings:
    agency_id, table, row, report_year, source, k (the reading), open (several readings), and
    `values` (column → value), from the batch and from earlier runs' settled cells."""
    docs = frames.documents.select("source", "agency_id", "report_year").filter(
        pl.col("agency_id").is_not_null() & pl.col("report_year").is_not_null()
    )
    keys = open_rows.join(docs, on="source").select("agency_id", "table", "row").unique()
    cells = (
        frames.cells.with_columns(pl.col("table", "row", "col").cast(pl.Utf8))
        .join(docs, on="source")
        .join(keys, on=["agency_id", "table", "row"], how="semi")
    )
    readings = cells.with_columns(
        pl.when(pl.col("options").is_not_null())
        .then(pl.col("options").cast(pl.Utf8).str.split("|"))
        .otherwise(pl.concat_list(pl.col("raw")))
        .alias("piece"),
        pl.col("options").is_not_null().alias("open"),
    ).with_columns(pl.int_ranges(pl.col("piece").list.len()).alias("k"))
    readings = readings.explode("piece", "k").with_columns(
        pl.when(pl.col("open"))
        .then(pl.struct("piece", "table", "row", "col").map_elements(_value, return_dtype=pl.Float64))
        .otherwise(pl.col("value"))
        .alias("value")
    )
    batch = readings.select("agency_id", "table", "row", "report_year", pl.col("source").cast(pl.Utf8), "k", "open", "col", "value", "piece")
    if history is not None and not history.is_empty():
        earlier = (
            history.with_columns(pl.col("table", "row", "col", "flag").cast(pl.Utf8))
            .join(keys, on=["agency_id", "table", "row"], how="semi")
            .filter(pl.col("flag") != "ambiguous")
            .join(batch.select("agency_id", "table", "row", "report_year").unique(), on=["agency_id", "table", "row", "report_year"], how="anti")
            .select(
                "agency_id", "table", "row", pl.col("report_year").cast(pl.Int32), pl.lit(None, pl.Utf8).alias("source"),
                pl.lit(0, pl.Int64).alias("k"), pl.lit(False).alias("open"), "col", "value", pl.lit(None, pl.Utf8).alias("piece"),
            )
        )
        batch = pl.concat([batch.with_columns(pl.col("report_year").cast(pl.Int32), pl.col("k").cast(pl.Int64)), earlier], how="vertical_relaxed")
    return batch


def _value(s: dict) -> float | None:
    piece = s["piece"]
    if not piece:
        return None
    return parse_number(piece, signed=True)


# One agency's series --------------------------------------------------------------------------


@dataclass
class _Node:
    year: int
    source: str | None
    open: bool
    readings: list[dict[str, float | None]]  # column → value, per reading
    pieces: list[dict[str, str | None]]  # column → printed piece, per reading


@dataclass(frozen=True)
class _Decision:
    source: str
    table: str
    row: str
    chosen: int
    survivors: tuple[int, ...]
    before: int
    pieces: list[dict[str, str | None]]
    why: str


def _settle_series(table: str, row: str, series: list[tuple], rules: _Rules) -> list[_Decision]:
    nodes = _series_nodes(series)
    if not any(n.open for n in nodes):
        return []
    costs = [[_unary(values, rules.expect.get((table, row), [])) for values in n.readings] for n in nodes]
    links = [
        _link(nodes[i - 1], nodes[i], rules.chains.get((table, row), []), {c for t, r, c in rules.signed if (t, r) == (table, row)})
        for i in range(1, len(nodes))
    ]
    marginals = _max_marginals(costs, links)
    decisions = []
    for i, node in enumerate(nodes):
        if not node.open or len(node.readings) < 2:
            continue
        mm = marginals[i]
        best = min(mm)
        survivors = tuple(k for k, m in enumerate(mm) if m[:2] == best[:2] and m[2] - best[2] < MARGIN)
        if len(survivors) == len(node.readings):
            continue  # nothing tells the readings apart: the report's own reading stands
        chosen = min(survivors, key=lambda k: (mm[k], k))
        why = _why(nodes, i, chosen, mm, rules, table, row)
        decisions.append(_Decision(node.source, table, row, chosen, survivors, len(node.readings), node.pieces, why))
    return decisions


def _series_nodes(series: list[tuple]) -> list[_Node]:
    """One agency's readings of one row (sorted by year, source, reading) as nodes, year by year."""
    nodes = []
    for (year, source), part in groupby(series, key=lambda r: (r[3], r[4])):
        readings: dict[int, dict] = {}
        pieces: dict[int, dict] = {}
        is_open = False
        for *_, k, open_, col, value, piece in part:
            readings.setdefault(k, {})[col] = value
            pieces.setdefault(k, {})[col] = piece
            is_open |= bool(open_)
        order = sorted(readings)
        nodes.append(_Node(year, source, is_open, [readings[k] for k in order], [pieces[k] for k in order]))
    return nodes


def _holds(relation: Relation, values: dict[str, float | None]) -> bool | None:
    """Whether `values` satisfy `relation`; None when a name it uses has no value."""
    expression = relation.expression
    sides = []
    for which in (0, 1):
        try:
            sides.append(_evaluate(expression.side(which), values))
        except KeyError:
            return None
    left, right = sides
    return {"=": abs(left - right) < EXACT, "<=": left <= right + EXACT, ">=": left >= right - EXACT}[expression.op]


def _evaluate(node, values: dict[str, float | None]) -> float:
    """A side of a layout relation (names, numbers, + - * /) over the values; KeyError when a name
    has no value. The tree is the one the expression parser checked: nothing else can occur."""
    import ast

    if isinstance(node, ast.Name):
        value = values.get(node.id)
        if value is None:
            raise KeyError(node.id)
        return value
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp):
        inner = _evaluate(node.operand, values)
        return -inner if isinstance(node.op, ast.USub) else inner
    left, right = _evaluate(node.left, values), _evaluate(node.right, values)
    op = type(node.op)
    return left + right if op is ast.Add else left - right if op is ast.Sub else left * right if op is ast.Mult else left / right


def _unary(values: dict[str, float | None], expect: list[Relation]) -> tuple[float, float, float]:
    """(0, expectations the reading breaks, 0)."""
    broken = sum(1 for relation in expect if _holds(relation, values) is False)
    return (0.0, float(broken), 0.0)


def _link(before: _Node, after: _Node, chains: list[Relation], signed: set[str]) -> list[list[tuple[float, float, float]]]:
    """Cost of each pair of readings (before k, after j): (−chains satisfied, 0, distance)."""
    gap = after.year - before.year
    weight = 1 / math.sqrt(max(gap, 1))
    out = []
    for a in before.readings:
        row = []
        for b in after.readings:
            common = [c for c in b if c in a and a[c] is not None and b[c] is not None]
            if gap == 0:
                # The same report twice (its page and its crawler text): the readings that agree.
                same = bool(common) and all(abs(a[c] - b[c]) < EXACT for c in common)
                row.append((-float(same), 0.0, 0.0))
                continue
            chained = 0
            if gap == 1:
                joined = dict(b) | {f"prev_{c}": v for c, v in a.items()}
                chained = sum(1 for relation in chains if _holds(relation, joined))
            distance = sum(abs(math.log1p(abs(b[c])) - math.log1p(abs(a[c]))) for c in common if c not in signed)
            row.append((-float(chained), 0.0, distance * weight))
        out.append(row)
    return out


def _add(x: tuple, y: tuple) -> tuple:
    return (x[0] + y[0], x[1] + y[1], x[2] + y[2])


def _max_marginals(costs: list[list[tuple]], links: list[list[list[tuple]]]) -> list[list[tuple]]:
    """For every node and reading, the best total cost (lexicographic) of the whole series with
    that reading fixed: min-sum along the chain of years, forward and backward."""
    n = len(costs)
    forward = [list(costs[0])]
    for i in range(1, n):
        forward.append(
            [_add(costs[i][j], min(_add(forward[i - 1][k], links[i - 1][k][j]) for k in range(len(costs[i - 1])))) for j in range(len(costs[i]))]
        )
    backward = [None] * n
    backward[n - 1] = [(0.0, 0.0, 0.0)] * len(costs[n - 1])
    for i in range(n - 2, -1, -1):
        backward[i] = [
            min(_add(_add(links[i][k][j], costs[i + 1][j]), backward[i + 1][j]) for j in range(len(costs[i + 1])))
            for k in range(len(costs[i]))
        ]
    return [[_add(forward[i][k], backward[i][k]) for k in range(len(costs[i]))] for i in range(n)]


def _why(nodes: list[_Node], i: int, chosen: int, mm: list[tuple], rules: _Rules, table: str, row: str) -> str:
    """What settled the reading, in words, for the note beside the cells."""
    reasons = []
    best = mm[chosen]
    reading = nodes[i].readings[chosen]
    applicable = lambda r: all(n.removeprefix("prev_") in reading for n in r.expression.names)  # noqa: E731
    if best[0] < 0 and any(m[0] > best[0] for m in mm):
        if any(n.year == nodes[i].year for j, n in enumerate(nodes) if j != i):
            reasons.append("与同一报告的另一份文本（网页或抓取文本）一致")
        chains = "；".join(rules.written(table, r.expr) for r in rules.chains.get((table, row), []) if applicable(r))
        if any(n.year in (nodes[i].year - 1, nodes[i].year + 1) for n in nodes) and chains:
            reasons.append(f"与同一机关相邻年度报告衔接（{chains}）")
    if any(m[0] == best[0] and m[1] > best[1] for m in mm):
        kept = "；".join(rules.written(table, r.expr) for r in rules.expect.get((table, row), []) if _holds(r, reading))
        reasons.append(f"本行各项的常规关系（{kept}）")
    if any(m[:2] == best[:2] and m[2] >= best[2] + MARGIN for m in mm):
        here = nodes[i].year
        before = max((n.year for n in nodes if n.year < here), default=None)
        after = min((n.year for n in nodes if n.year > here), default=None)
        years = [str(y) for y in (before, after) if y is not None]
        reasons.append(f"与同一机关 {'、'.join(years)} 年度报告的数量级最接近")
    return "；".join(reasons)


# Writing back ---------------------------------------------------------------------------------


def _apply(frames: Frames, decisions: list[_Decision], rules: _Rules) -> Frames:
    updates = []
    notes = []
    for d in decisions:
        survivors = [d.pieces[k] for k in d.survivors]
        reading = d.pieces[d.chosen]
        cols = list(reading)
        for col in cols:
            piece = reading[col]
            agree = len({s[col] for s in survivors}) == 1
            options = None if len(survivors) == 1 else "|".join(s[col] or "" for s in [reading] + [s for k, s in zip(d.survivors, survivors) if k != d.chosen])
            updates.append(
                {
                    "source": d.source, "table": d.table, "row": d.row, "col": col,
                    "new_value": parse_number(piece, signed=True) if piece else None,
                    "new_raw": piece or "",
                    "agree": agree,
                    "new_options": options,
                }
            )
        printed = "/".join(reading[c] or "空" for c in cols)
        left = "" if len(survivors) == 1 else f"，另有 {len(survivors) - 1} 种仍无法排除"
        notes.append(
            (d.source, d.table, d.row, "settled", f"{d.before} 种可能的拆分中取 {printed}（依据：{d.why or '本行与其他年度报告'}）{left}", None)
        )
    frame = pl.DataFrame(
        updates,
        schema={"source": pl.Utf8, "table": pl.Utf8, "row": pl.Utf8, "col": pl.Utf8, "new_value": pl.Float64, "new_raw": pl.Utf8, "agree": pl.Boolean, "new_options": pl.Utf8},
    )
    key = ["source", "table", "row", "col"]
    cells = frames.cells.join(frame.with_columns(pl.col(key).cast(KEY)), on=key, how="left", maintain_order="left")
    flag = pl.col("flag").cast(pl.Utf8)
    cells = cells.with_columns(
        pl.when(pl.col("agree").is_null()).then(pl.col("value")).otherwise(pl.col("new_value")).alias("value"),
        pl.when(pl.col("agree").is_null()).then(pl.col("raw")).otherwise(pl.col("new_raw")).alias("raw"),
        pl.when(pl.col("agree").is_null()).then(flag)
        .when(pl.col("agree") & (flag == "ambiguous")).then(pl.lit(""))
        .when(~pl.col("agree") & (flag == "")).then(pl.lit("ambiguous"))
        .otherwise(flag)
        .cast(KEY)
        .alias("flag"),
        pl.when(pl.col("agree").is_null()).then(pl.col("options")).otherwise(pl.col("new_options").cast(KEY)).alias("options"),
    ).select(frames.cells.columns)
    lines = frames.cells.select("source", pl.col("table").cast(pl.Utf8), pl.col("row").cast(pl.Utf8), "line").unique(["source", "table", "row"])
    extra = pl.DataFrame(notes, schema={"source": pl.Utf8, "table": pl.Utf8, "row": pl.Utf8, "kind": pl.Utf8, "detail": pl.Utf8, "line": pl.Int32}, orient="row")
    extra = extra.drop("line").join(lines.with_columns(pl.col("source").cast(pl.Utf8)), on=["source", "table", "row"], how="left")
    extra = extra.select(list(NOTE_SCHEMA)).cast(NOTE_SCHEMA)
    return Frames(frames.documents, cells, frames.sections, frames.lines, frames.snippets, pl.concat([frames.notes, extra]))
