"""Read one table row's printed values into its cells, splitting run-together digits by arithmetic.

Crawler text prints `21710000218` for the cells 217/1/0/0/0/0/218. A row's own identity (six
applicant columns sum to 总计; four outcomes sum to each table-四 总计) decides first:
 - exactly one split satisfies it → that split;
 - several do → they all stay candidates, the most plausible first;
 - none does → every split stays a candidate, those failing the fewest of the row's blocks first.
`choose` then reads the whole table: of the candidates of every row, the combination that leaves the
fewest of the table's identities failing (row sums and the identities down the columns), then the
most plausible magnitudes. Cells the equally good combinations disagree on are flagged `ambiguous`;
cells of a row no split makes consistent are flagged `inconsistent`, so the identity rules report
it. A failure every reading has is never hidden: the choice only minimises.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from itertools import combinations, product
from operator import itemgetter
from dataclasses import dataclass

Item = str | None  # a printed chunk of digits (no spaces), or None for a blank cell
_NUMBER = re.compile(r"^(?P<sign>[+\-−]|增|减)?(?P<num>\d+(?:\.\d+)?)$")
_YUAN = re.compile(r"万?元$")
_MAX_READINGS = 5000
# A chunk is cut only when the ways to cut it are few enough to list: 2,000 digits run into a row of
# 7 cells have ~10^17 (a hostile page took 21 GB listing them); the reports' real runs have hundreds.
_MAX_CUTS = 100_000


class _TooManyCuts(Exception):
    """A chunk of the row has more ways to be cut than `_MAX_CUTS`."""


@dataclass(frozen=True)
class RowShape:
    """What a row's values must look like: `n` cells in blocks that each sum to their last cell."""

    n: int
    decimal: frozenset[int] = frozenset()  # cells that may hold a decimal point (万元 amounts)
    blocks: tuple[tuple[tuple[int, ...], int], ...] = ()  # ((part indices), total index)
    signed: frozenset[int] = frozenset()
    larger_first: bool = True  # where the longer numbers of a run usually sit (RowSpec.larger)


@dataclass(frozen=True)
class RowValues:
    values: list[float | None]
    raws: list[str]
    flags: list[str]
    note: str = ""  # how the row was read when it was not printed cell by cell
    # The readings still open, the most plausible first (the values above are the first's); one
    # when the row was printed cell by cell or only one split fits.
    candidates: tuple[tuple[Item, ...], ...] = ()
    consistent: bool = True  # whether the candidates satisfy the row's own identity


@dataclass(frozen=True)
class Equation:
    """An identity over a table's cells: the (row, cell) pairs of `left` add up to those of `right`."""

    left: tuple[tuple[int, int], ...]
    right: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Choice:
    """The reading chosen for each row (an index into its candidates), the candidates of each row
    that are as good over the whole table, and the identities the choice leaves failing."""

    chosen: list[int]
    tied: list[frozenset[int]]
    failing: list[Equation]


_EXHAUSTIVE = 4096  # combinations of candidates tried one by one; beyond, row by row until stable


def choose(rows: list[tuple[tuple[Item, ...], ...]], equations: list[Equation]) -> Choice:
    """Of the candidates of every row (most plausible first), the combination that leaves the fewest
    `equations` failing, then the most plausible one (lowest indices, earlier rows first)."""
    free = [i for i, candidates in enumerate(rows) if len(candidates) > 1]
    chosen = [0] * len(rows)
    if not free:
        return Choice(chosen, [frozenset({0}) for _ in rows], _failing(rows, chosen, equations))
    touching = [e for e in equations if any(r in free for r, _ in e.left + e.right)]
    size = 1
    for i in free:
        size *= len(rows[i])
    tied: dict[int, set[int]] = {i: set() for i in free}
    if size <= _EXHAUSTIVE:
        best: tuple | None = None
        outcomes = []
        for combo in product(*(range(len(rows[i])) for i in free)):
            for i, k in zip(free, combo):
                chosen[i] = k
            fails = _count_failing(rows, chosen, touching)
            outcomes.append((fails, combo))
            key = (fails, sum(combo), combo)
            if best is None or key < best:
                best = key
        fewest = best[0]
        for fails, combo in outcomes:
            if fails == fewest:
                for i, k in zip(free, combo):
                    tied[i].add(k)
        for i, k in zip(free, best[2]):
            chosen[i] = k
    else:
        for _ in range(10):  # each pass only lowers (failures, index): it stops
            changed = False
            for i in free:
                scores = []
                for k in range(len(rows[i])):
                    chosen[i] = k
                    scores.append((_count_failing(rows, chosen, touching), k))
                fewest = min(scores)[0]
                tied[i] = {k for f, k in scores if f == fewest}
                pick = min(tied[i])
                changed |= pick != chosen[i]
                chosen[i] = pick
            if not changed:
                break
    return Choice(chosen, [frozenset(tied.get(i, {0})) for i in range(len(rows))], _failing(rows, chosen, equations))


def _holds(rows, chosen: list[int], equation: Equation) -> bool:
    def side(pairs):
        return sum(_num(rows[r][chosen[r]][c]) for r, c in pairs)

    return abs(side(equation.left) - side(equation.right)) < 1e-6


def _count_failing(rows, chosen: list[int], equations: list[Equation]) -> int:
    return sum(1 for e in equations if not _holds(rows, chosen, e))


def _failing(rows, chosen: list[int], equations: list[Equation]) -> list[Equation]:
    return [e for e in equations if not _holds(rows, chosen, e)]


def attested(candidates: tuple[tuple[Item, ...], ...], numbers: set[float]) -> tuple[tuple[Item, ...], ...]:
    """The candidates stating the most of `numbers` (figures the narrative gives for the row,
    "现行有效…698件"), or all of them when none states any."""
    hits = [len({_num(x) for x in r if x is not None} & numbers) for r in candidates]
    best = max(hits, default=0)
    if best == 0:
        return candidates
    return tuple(r for r, h in zip(candidates, hits) if h == best)


def cells_of(reading: tuple[Item, ...], shape: RowShape) -> RowValues:
    """The values, raws and flags of one reading, printed cell by cell."""
    return _direct(list(reading), shape)


def parse_number(text: str, *, signed: bool = False) -> float | None:
    text = _YUAN.sub("", text.replace(",", "").replace("−", "-"))
    m = _NUMBER.match(text)
    if not m:
        return None
    sign = m.group("sign") or ""
    if sign and not signed and sign != "+":
        return None
    value = float(m.group("num"))
    return -value if sign in ("-", "减") else value


def read_row(items: list[Item], shape: RowShape) -> RowValues:
    """Cells of one row from its printed items (chunks between separators, and blanks)."""
    items = _trim_blanks(items, shape.n)
    if len(items) == shape.n:
        return _direct(items, shape)
    if len(items) > shape.n:
        return _extra(items, shape)
    return _split(items, shape)


def _trim_blanks(items: list[Item], n: int) -> list[Item]:
    """Drop empty cells at either end when there are more than the row can hold (markdown edges)."""
    items = list(items)
    while len(items) > n and items[-1] is None:
        items.pop()
    while len(items) > n and items[0] is None:
        items.pop(0)
    return items


# No count in these tables reaches a quadrillion, and a float holds integers exactly only below 2**53:
# a longer run of digits is kept as printed and flagged, never read as a number.
MAX_VALUE = 1e15


def _cell(item: Item, index: int, shape: RowShape) -> tuple[float | None, str, str]:
    if item is None:
        return None, "", "blank"
    value = parse_number(item, signed=index in shape.signed)
    if value is None or abs(value) >= MAX_VALUE:
        return None, item, "unreadable"
    return value, item, ""


def _direct(items: list[Item], shape: RowShape) -> RowValues:
    cells = [_cell(item, i, shape) for i, item in enumerate(items)]
    return RowValues([c[0] for c in cells], [c[1] for c in cells], [c[2] for c in cells])


def _extra(items: list[Item], shape: RowShape) -> RowValues:
    """More values than cells: a subtotal column the report added, if one fits; else the first n."""
    for drop in range(len(items)):
        kept = items[:drop] + items[drop + 1 :]
        if len(kept) == shape.n and _consistent([_num(x) for x in kept], shape):
            row = _direct(kept, shape)
            return RowValues(row.values, row.raws, row.flags, f"多出一列数值（第 {drop + 1} 个: {items[drop]}），按合计列处理，未计入")
    row = _direct(items[: shape.n], shape)
    extra = " ".join(x or "空" for x in items[shape.n :])
    return RowValues(row.values, row.raws, ["ambiguous"] * shape.n, f"数值多于 {shape.n} 个，多出: {extra}")


@lru_cache(maxsize=65536)  # the same pieces come up in reading after reading
def _num(item: Item) -> float:
    if item is None:
        return 0.0
    value = parse_number(item, signed=True)
    return value if value is not None else float("nan")


def _consistent(values: list[float], shape: RowShape) -> bool:
    return all(abs(sum(values[i] for i in parts) - values[total]) < 1e-6 for parts, total in shape.blocks)


def _split(items: list[Item], shape: RowShape) -> RowValues:
    printed = " ".join(x if x is not None else "□" for x in items)
    try:
        return _split_readings(items, shape, printed)
    except _TooManyCuts:
        row = _direct((items + [None] * shape.n)[: shape.n], shape)
        longest = max(len(x) for x in items if x)
        shown = printed if len(printed) <= 80 else printed[:80] + "…"
        return RowValues(row.values, row.raws, ["ambiguous"] * shape.n, f"连写数字过长（{longest} 位），可拆分的方式过多，未拆分: {shown}", consistent=False)


def _split_readings(items: list[Item], shape: RowShape, printed: str) -> RowValues:
    if all(x is None or x.isdigit() for x in items) and sum(len(x) for x in items if x) == shape.n - items.count(None):
        # As many digits as cells: one digit each is the only reading (the common "0000000").
        reading = [d for x in items for d in ([None] if x is None else list(x))]
        good = [reading] if _consistent([_num(x) for x in reading], shape) else []
        readings = [reading]
    else:
        good = [r for r in _readings(items, shape.n, shape, consistent_only=True) if _decimals_fit(r, shape)]
        readings = good or [r for r in _readings(items, shape.n, shape) if _decimals_fit(r, shape)]
    if not readings:
        return _fallback(items, shape, printed)
    plausible = lambda r: _implausibility(r, shape.larger_first)  # noqa: E731
    if good:
        ordered = tuple(tuple(r) for r in sorted(good, key=plausible))
        row = _direct(list(ordered[0]), shape)
        if len(ordered) == 1:
            how = "按勾稽关系拆分" if shape.blocks else "只有一种拆分"
            return RowValues(row.values, row.raws, row.flags, f"连写数字{how}: {printed}", ordered)
        flags = [
            "ambiguous" if len({r[i] for r in ordered}) > 1 else flag for i, flag in enumerate(row.flags)
        ]
        how = "均符合勾稽关系" if shape.blocks else "（本行没有勾稽关系可作区分）"
        return RowValues(row.values, row.raws, flags, f"连写数字有 {len(ordered)} 种拆分{how}: {printed}", ordered)
    # No split satisfies the row: those failing the fewest of its blocks first (a table-四 run that
    # fails in one block is not read so that all three fail), then the most plausible.
    ordered = tuple(tuple(r) for r in sorted(readings, key=lambda r: (len(_failing_blocks(r, shape)), plausible(r))))
    row = _direct(list(ordered[0]), shape)
    failing = _failing_cells(ordered[0], shape)
    flags = ["inconsistent" if f == "" and i in failing else f for i, f in enumerate(row.flags)]
    return RowValues(row.values, row.raws, flags, f"连写数字无论如何拆分都不符合勾稽关系: {printed}", ordered, consistent=False)


def _decimals_fit(reading: list[Item], shape: RowShape) -> bool:
    return all(x is None or "." not in x or i in shape.decimal for i, x in enumerate(reading))


def _failing_blocks(reading, shape: RowShape) -> list[tuple[tuple[int, ...], int]]:
    values = [_num(x) for x in reading]
    return [(parts, total) for parts, total in shape.blocks if abs(sum(values[i] for i in parts) - values[total]) >= 1e-6]


def failing_cells(reading, shape: RowShape) -> set[int]:
    """The cells of the row's blocks that a reading leaves failing (all cells when it has none)."""
    failing: set[int] = set()
    for parts, total in _failing_blocks(reading, shape):
        failing.update(parts + (total,))
    return failing or set(range(shape.n))


_failing_cells = failing_cells


def _fallback(items: list[Item], shape: RowShape, printed: str) -> RowValues:
    """Too few digits to fill the row: a space where a cell should be is that empty cell; else the
    values go to the totals (domain.md §6.1 trap 4)."""
    values = [x for x in items if x is not None]
    missing = shape.n - sum(len(re.sub(r"\D", "", x)) for x in values) - items.count(None)
    gaps = [i for i in range(1, len(items)) if items[i - 1] is not None and items[i] is not None]
    if 0 < missing <= len(gaps):
        for chosen in combinations(gaps, missing):
            padded = list(items)
            for at in reversed(chosen):
                padded.insert(at, None)
            readings = list(_readings(padded, shape.n, shape))
            if readings:
                best = min(readings, key=lambda r: _implausibility(r, shape.larger_first))
                row = _direct(best, shape)
                flags = ["ambiguous" if f == "" else f for f in row.flags]
                return RowValues(row.values, row.raws, flags, f"数值少于 {shape.n} 个，按空格位置推定空白单元格: {printed}")
    totals = [total for _, total in shape.blocks]
    if totals and len(values) == len(totals):
        placed: list[Item] = [None] * shape.n
        for index, value in zip(totals, values):
            placed[index] = value
        row = _direct(placed, shape)
        return RowValues(row.values, row.raws, row.flags, f"只印出 {len(values)} 个数值，按总计列读取: {printed}")
    padded = items + [None] * (shape.n - len(items))
    row = _direct(padded, shape)
    flags = ["ambiguous" if f == "" else f for f in row.flags]
    return RowValues(row.values, row.raws, flags, f"数值少于 {shape.n} 个，位置无法确定: {printed}")


def _implausibility(reading, larger_first: bool = True) -> tuple[int, list[int]]:
    # Balanced splits first (a run is more often 12|3 than 1|23 when nothing else decides); then
    # the reading that puts the longer numbers where the layout says they usually are: first in
    # 表三 (自然人 and 结果维持 carry most cases), last in 表二 (现行有效 is a stock).
    lengths = [len(x) if x is not None else 0 for x in reading]
    order = lengths if larger_first else lengths[::-1]
    return (sum(length * length for length in lengths), [-length for length in order])


def _readings(items: list[Item], n: int, shape: RowShape, consistent_only: bool = False):
    """Every way to cut the chunks into exactly `n` numbers without leading zeros.

    With `consistent_only`, a partial reading is dropped as soon as one of its complete blocks
    does not add up, which keeps long runs (table 四's 15 cells) cheap.
    """
    count = [0]
    # Block by the position of its last cell; its parts fetched in one C call (this runs ~1,000
    # times per report of run-together digits).
    ends = {max(parts + (total,)): (_picker(parts), total) for parts, total in shape.blocks}

    def fits(acc: list[Item], start: int) -> bool:
        for end in range(start, len(acc)):
            block = ends.get(end)
            if block and abs(sum(map(_num, block[0](acc))) - _num(acc[block[1]])) >= 1e-6:
                return False
        return True

    def walk(index: int, remaining: int, acc: list[Item]):
        if count[0] >= _MAX_READINGS:
            return
        if index == len(items):
            if remaining == 0:
                count[0] += 1
                yield list(acc)
            return
        item = items[index]
        later = len(items) - index - 1
        most = min(_digit_count(item), remaining - later) if item is not None else 0
        if item is not None and _cut_count(len(item), most) > _MAX_CUTS:
            raise _TooManyCuts(item)
        options = [(None,)] if item is None else [pieces for parts in range(1, most + 1) for pieces in _cuts(item, parts)]
        for pieces in options:
            extended = acc + list(pieces)
            if consistent_only and not fits(extended, len(acc)):
                continue
            yield from walk(index + 1, remaining - len(pieces), extended)

    yield from walk(0, n, [])


def _picker(indices: tuple[int, ...]):
    """A function returning the items at `indices` as a tuple (itemgetter returns one item bare)."""
    get = itemgetter(*indices)
    return get if len(indices) > 1 else lambda seq: (get(seq),)


def _digit_count(item: str) -> int:
    return sum(ch.isdigit() for ch in item)


@lru_cache(maxsize=1024)
def _cut_count(length: int, most: int) -> int:
    """How many ways a chunk of `length` characters may be cut into 1 to `most` pieces, at most."""
    return sum(math.comb(length - 1, parts - 1) for parts in range(1, most + 1))


@lru_cache(maxsize=4096)
def _cuts(chunk: str, parts: int) -> tuple[tuple[str, ...], ...]:
    """The ways to cut one printed chunk into `parts` valid numbers (chunks repeat: cache them)."""
    if parts == 1:
        return ((chunk,),) if _valid_part(chunk) else ()
    out = []
    for i in range(1, len(chunk) - parts + 2):
        head = chunk[:i]
        if _valid_part(head):
            out.extend((head, *rest) for rest in _cuts(chunk[i:], parts - 1))
    return tuple(out)


def _valid_part(text: str) -> bool:
    if not text or text[0] == "." or text[-1] == ".":
        return False
    digits = text.lstrip("+-−增减")
    if digits.endswith("元"):
        digits = digits.removesuffix("元").removesuffix("万")
    return bool(digits) and (digits == "0" or digits[0] != "0" or digits.startswith("0."))
