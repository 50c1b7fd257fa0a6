"""Read one table row's printed values into its cells, splitting run-together digits by arithmetic.

Crawler text prints `21710000218` for the cells 217/1/0/0/0/0/218. Which split is right is decided
by the row's own identity (six applicant columns sum to 总计; four outcomes sum to a table-四 总计):
 - exactly one split satisfies it → that split;
 - several do → the most plausible, its uncertain cells flagged `ambiguous`;
 - none does → the most plausible, flagged `inconsistent`, so the identity rule reports the row.
We never look at other rows to choose, so a failing table identity cannot be hidden by the split.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import combinations
from operator import itemgetter
from dataclasses import dataclass

Item = str | None  # a printed chunk of digits (no spaces), or None for a blank cell
_NUMBER = re.compile(r"^(?P<sign>[+\-−]|增|减)?(?P<num>\d+(?:\.\d+)?)$")
_YUAN = re.compile(r"万?元$")
_MAX_READINGS = 5000


@dataclass(frozen=True)
class RowShape:
    """What a row's values must look like: `n` cells in blocks that each sum to their last cell."""

    n: int
    decimal: frozenset[int] = frozenset()  # cells that may hold a decimal point (万元 amounts)
    blocks: tuple[tuple[tuple[int, ...], int], ...] = ()  # ((part indices), total index)
    signed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RowValues:
    values: list[float | None]
    raws: list[str]
    flags: list[str]
    note: str = ""  # how the row was read when it was not printed cell by cell
    alternatives: tuple[tuple[Item, ...], ...] = ()  # every reading that fits, when several do


def settle(alternatives: tuple[tuple[Item, ...], ...], attested: set[float], shape: RowShape) -> RowValues | None:
    """The one reading whose numbers the narrative states most often ("现行有效…698件"), if unique."""
    hits = [sum(1 for x in r if x is not None and _num(x) in attested) for r in alternatives]
    best = max(hits, default=0)
    if best == 0 or hits.count(best) > 1:
        return None
    row = _direct(list(alternatives[hits.index(best)]), shape)
    return RowValues(row.values, row.raws, row.flags)


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
    pool = readings
    best = min(pool, key=_implausibility)
    row = _direct(best, shape)
    if good and len(good) == 1:
        return RowValues(row.values, row.raws, row.flags, f"连写数字按勾稽关系拆分: {printed}")
    if good:
        flags = [
            "ambiguous" if len({r[i] for r in good}) > 1 else flag for i, flag in enumerate(row.flags)
        ]
        return RowValues(
            row.values, row.raws, flags, f"连写数字有 {len(good)} 种拆分均符合勾稽关系: {printed}", tuple(map(tuple, good))
        )
    failing = _failing_cells(best, shape)
    flags = ["inconsistent" if f == "" and i in failing else f for i, f in enumerate(row.flags)]
    return RowValues(row.values, row.raws, flags, f"连写数字无论如何拆分都不符合勾稽关系: {printed}")


def _decimals_fit(reading: list[Item], shape: RowShape) -> bool:
    return all(x is None or "." not in x or i in shape.decimal for i, x in enumerate(reading))


def _failing_cells(reading: list[Item], shape: RowShape) -> set[int]:
    values = [_num(x) for x in reading]
    failing: set[int] = set()
    for parts, total in shape.blocks:
        if abs(sum(values[i] for i in parts) - values[total]) >= 1e-6:
            failing.update(parts + (total,))
    return failing or set(range(shape.n))


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
                best = min(readings, key=_implausibility)
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


def _implausibility(reading: list[Item]) -> tuple[int, list[int]]:
    # Balanced splits first (a run is more often 12|3 than 1|23 when nothing else decides); then
    # the reading that puts the longer numbers first: 自然人 and 结果维持 carry most cases.
    lengths = [len(x) if x is not None else 0 for x in reading]
    return (sum(length * length for length in lengths), [-length for length in lengths])


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
        options = [(None,)] if item is None else [
            pieces for parts in range(1, min(_digit_count(item), remaining - later) + 1) for pieces in _cuts(item, parts)
        ]
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
