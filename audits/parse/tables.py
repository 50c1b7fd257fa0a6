"""Read the three standard tables out of the stream, driven by the template layout.

A table region is cut into label and value tokens. Labels are matched to the layout's rows in
order (a label may only move forward through the rows); the values that follow a row's label,
up to the next label, are that row's printed items, which `digits.read_row` turns into cells.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from audits.parse.digits import Equation, RowShape, RowValues, attested, cells_of, choose, failing_cells, read_row
from audits.layouts import RowSpec, TableSpec
from audits.model import Cell, TableNote
from audits.normalize import compact_label
from audits.parse.stream import ROW, SEP, Stream

_VALUE_RUN = re.compile(r"((?:[+\-−]|增|减)?\d[\d.,]*(?: (?:[+\-−]|增|减)?\d[\d.,]*)*(?:万元|元)?)")
_QUALIFIER = re.compile(r"[约共计件个条余多近超过左右起宗项次人]{1,3}")
_UNIT = re.compile(r"[年月日件条个次人项%％起宗]")
_DASH = re.compile(r"^[—\-/－–─]+$")
_DIGIT = re.compile(r"\d")
_ROW_NUMERAL = re.compile(r"\d{1,2}\.")  # "2." before a label: the next row's numeral
# A run of cell digits with a year stuck to its end ("0 0 0 02024" before "年"): the cells, the year.
_RUN_INTO_YEAR = re.compile(r"^(\d[\d ]*?\d|\d)\s*((?:19|20)\d{2})$")
_FUZZY = 0.8  # how alike a label must be to a row's label (difflib ratio) to stand for it
_BLANK_WORDS = {"无", "/", "-", "—", "——", "－", "–"}
# A figure the narrative states: a count with its unit, or an amount in 元/万元.
# Starting only where a run of digits starts: the same matches, but a run of n digits with no unit
# after it costs n steps, not n² (a hostile page printed thousands).
_STATED = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*(?:件|条|个|项|批次|批|宗|万元|元)")


@dataclass
class Token:
    kind: str  # label | value | blank | rowend
    text: str
    offset: int


@dataclass
class RowRead:
    spec: RowSpec
    offset: int
    items: list[str | None] = field(default_factory=list)
    raw_items: list[str] = field(default_factory=list)
    piped: bool = False


def tokenize(stream: Stream, start: int, end: int) -> list[Token]:
    tokens: list[Token] = []
    offset = start
    for piece in stream.text[start:end].split(SEP):
        here = offset
        offset += len(piece) + 1
        rowend = piece.endswith(ROW)
        piece = piece.replace(ROW, "")
        if not piece or piece in _BLANK_WORDS or _DASH.match(piece):
            tokens.append(Token("blank", piece, here))
        else:
            tokens.extend(_split_piece(piece, here))
        if rowend:
            tokens.append(Token("rowend", "", here))
    return tokens


def _split_piece(piece: str, offset: int) -> list[Token]:
    # Most pieces are a bare number or a bare label (one cell per line): no need to split those.
    if piece.isascii() and piece.isdigit():
        return [Token("value", piece, offset)]
    if not _DIGIT.search(piece):
        return [Token("label", piece.strip(), offset)]
    parts = _VALUE_RUN.split(piece)
    words = "".join(parts[0::2])
    if len(parts) == 3 and _QUALIFIER.fullmatch(words):
        return [Token("value", piece, offset)]  # "约35", "35件": a cell that is not a number
    tokens: list[Token] = []
    pos = 0
    for i, part in enumerate(parts):
        if part:
            kind = "value" if i % 2 else "label"
            following = piece[pos + len(part) : pos + len(part) + 1]
            run_on = _RUN_INTO_YEAR.match(part) if kind == "value" and following == "年" else None
            if run_on:
                # "…0" + "2024年…" printed "02024年": a row's last cell run into the next
                # sentence, which starts with a year. The year goes with the sentence.
                tokens.append(Token("value", run_on.group(1).strip(), offset + pos))
                tokens.append(Token("label", run_on.group(2), offset + pos + run_on.start(2)))
                pos += len(part)
                continue
            if kind == "value" and _UNIT.match(following):
                kind = "label"  # "2022年", "3件": a number in a sentence, not a cell
            if kind == "label" and tokens and tokens[-1].kind == "label":
                tokens[-1].text += part.strip()
            else:
                tokens.append(Token(kind, part.strip(), offset + pos))
        pos += len(part)
    return tokens


class TableReader:
    """Reads one table of one report."""

    def __init__(self, name: str, spec: TableSpec, rows: list[RowSpec], stream: Stream):
        self.name, self.spec, self.rows, self.stream = name, spec, rows, stream
        self._native = {row.key for row in spec.rows}
        self.notes: list[TableNote] = []
        self._headers = sorted({compact_label(h) for h in spec.headers}, key=len, reverse=True)
        self._groups = [(g.key, sorted({compact_label(v) for v in g.labels}, key=len, reverse=True)) for g in spec.groups]

    # Read ----------------------------------------------------------------------------------

    def read(self, start: int, end: int) -> list[Cell]:
        tokens = _detach_numerals(tokenize(self.stream, start, end), self.rows)
        if self.spec.single_line:
            return self._read_single_line(tokens)
        return self._read_rows(tokens)

    def _read_rows(self, tokens: list[Token]) -> list[Cell]:
        reads: list[RowRead] = []
        current: RowRead | None = None
        last_index = -1
        pending_numeral = ""
        queue = deque(tokens)
        while queue:
            token = queue.popleft()
            if token.kind == "label":
                if _ROW_NUMERAL.fullmatch(token.text):
                    pending_numeral = token.text[:-1]
                    continue
                index, rest = self._match_row(token.text, last_index, pending_numeral, token.offset)
                pending_numeral = ""
                if rest:  # "3.其他(七)总计": a short exact label run into the next one
                    queue.appendleft(Token("label", rest, token.offset + len(token.text) - len(rest)))
                if index is not None:
                    current = RowRead(self.rows[index], token.offset)
                    reads.append(current)
                    last_index = index
                elif self._is_extra_row(token.text):
                    self._note("extra_row", "", f"表中另有“{token.text}”行，已识别，不作为单元格", token.offset)
                    current = None
                elif current is not None and current.items and not self._is_header_or_group(token.text):
                    current = None  # unknown text after the values: the row is over
            elif token.kind in ("value", "blank") and current is not None:
                if token.kind == "blank":
                    current.items.append(None)
                    current.raw_items.append(token.text)
                else:
                    for chunk in token.text.split(" "):
                        current.items.append(chunk)
                        current.raw_items.append(chunk)
            elif token.kind == "rowend" and current is not None:
                current.piped = True
        return self._cells(reads)

    def _read_single_line(self, tokens: list[Token]) -> list[Cell]:
        """Table 四: one printed row after the header carries all three blocks."""
        items: list[str | None] = []
        first = tokens[0].offset if tokens else 0
        for token in tokens:
            if token.kind == "label":
                if items and any(x is not None for x in items):
                    break  # text after the values ends the table
                items, first = [], token.offset
            elif token.kind == "blank":
                items.append(None)
            elif token.kind == "value" and not _ROW_NUMERAL.fullmatch(token.text):
                items.extend(token.text.split(" "))
                first = first or token.offset
        if not any(x is not None for x in items):
            return []
        cols = self.spec.cols
        shape = RowShape(
            n=len(cols) * len(self.rows),
            blocks=tuple(
                (tuple(b * len(cols) + cols.index(p) for p in self.spec.row_sum.parts), b * len(cols) + cols.index(self.spec.row_sum.total))
                for b in range(len(self.rows))
            )
            if self.spec.row_sum
            else (),
        )
        values = read_row(items, shape)
        blocks = [Equation(tuple((0, i) for i in parts), ((0, total),)) for parts, total in shape.blocks]
        choice = choose([values.candidates or (_as_printed(values),)], blocks)
        values, options = self._settled(values, shape, choice.chosen[0], choice.tied[0], len(blocks) > 1)
        line = self.stream.line_at(first)
        if values.note:
            self._note("split", "", values.note, first)
        cells = []
        for b, row in enumerate(self.rows):
            for c, col in enumerate(cols):
                i = b * len(cols) + c
                cells.append(Cell(self.name, row.key, col, values.values[i], values.raws[i], values.flags[i], line, options[i]))
        return cells

    # Match ---------------------------------------------------------------------------------

    def _match_row(self, label: str, last_index: int, numeral: str, offset: int = 0) -> tuple[int | None, str]:
        """The row a label names (the variant ending latest in it, only moving forward), and any
        text after an exact label that belongs to the next row."""
        best: tuple[int, int, int] | None = None  # (end position, key length, -row index)
        for index in range(last_index + 1, len(self.rows)):
            row = self.rows[index]
            for key in row.keys:
                if row.exact:
                    if numeral == row.numeral and label.startswith(key) and label != key:
                        return index, label[len(key) :]
                    ok = label == key and (numeral == row.numeral or index == last_index + 1)
                    pos = len(label) if ok else -1
                else:
                    pos = label.rfind(key)
                    pos = pos + len(key) if pos >= 0 else -1
                if pos >= 0:
                    candidate = (pos, len(key), -index)
                    if best is None or candidate > best:
                        best = candidate
                    break
        if best is None:
            return self._match_variant(label, last_index, numeral, offset), ""
        return -best[2], ""

    def _match_variant(self, label: str, last_index: int, numeral: str, offset: int) -> int | None:
        """A label printed with a character wrong, lost or added ("属于行政执法案件" for 案卷): the row
        among the next few whose label it is most like, if alike enough and no other is as alike.
        Headers and group labels are not rows; a printed numeral must be the row's."""
        if len(label) < 4 or self._is_header_or_group(label) or self._is_extra_row(label):
            return None
        scored = []
        for index in range(last_index + 1, min(last_index + 4, len(self.rows))):
            row = self.rows[index]
            if numeral and row.numeral and numeral != row.numeral:
                continue
            ratio = max(SequenceMatcher(None, label, key).ratio() for key in row.keys if abs(len(key) - len(label)) <= 2) if any(
                abs(len(key) - len(label)) <= 2 for key in row.keys
            ) else 0.0
            scored.append((ratio, index))
        alike = sorted((s for s in scored if s[0] >= _FUZZY), reverse=True)
        if not alike or len(alike) > 1 and alike[1][0] == alike[0][0]:
            return None
        self._note("label_variant", self.rows[alike[0][1]].key, f"行名印为“{label}”，按最接近的“{self.rows[alike[0][1]].label}”读取", offset)
        return alike[0][1]

    def _attested(self, row: RowSpec) -> set[float]:
        """Figures the narrative states in sentences naming the row ("制发行政规范性文件15件",
        "发布采购信息197批次涉及金额3601627.4元")."""
        numbers: set[float] = set()
        words = [compact_label(w) for w in row.mentions] or [row.keys[-1]]  # default: the shortest label
        for sentence in re.split(r"[。;；]", self.stream.text):
            if any(w in sentence for w in words) and SEP not in sentence[:200]:
                numbers.update(float(n) for n in _STATED.findall(sentence))
        return numbers

    def _is_header_or_group(self, label: str) -> bool:
        return any(h in label for h in self._headers) or any(v in label for _, vs in self._groups for v in vs)

    def _is_extra_row(self, label: str) -> bool:
        return any(label.endswith(compact_label(x)) for x in self.spec.extra_rows)

    # Cells ---------------------------------------------------------------------------------

    def _cells(self, reads: list[RowRead]) -> list[Cell]:
        reads = [r for r in reads if r.items or r.spec.key in self._native]  # another template's row printed bare: a heading here
        shapes, rows = [], []
        for read in reads:
            cols = self.spec.row_cols(read.spec)
            shape = RowShape(
                n=len(cols),
                decimal=frozenset(cols.index(c) for c in read.spec.decimal),
                blocks=self._row_blocks(cols),
                signed=frozenset(cols.index(c) for c in read.spec.signed),
                larger_first=self.spec.larger == "first",
            )
            values = read_row(read.items, shape)
            if len(values.candidates) > 1 and not shape.blocks:
                # Nothing in the row to tell its readings apart: the narrative's figures may.
                kept = attested(values.candidates, self._attested(read.spec))
                if len(kept) < len(values.candidates):
                    first = cells_of(kept[0], shape)
                    note = values.note + f"；正文所述数字排除了 {len(values.candidates) - len(kept)} 种"
                    values = RowValues(first.values, first.raws, first.flags, note, kept)
            shapes.append(shape)
            rows.append(values)
        equations = self._equations(reads, shapes)
        choice = choose([v.candidates or (_as_printed(v),) for v in rows], equations)
        table_wide = any(len(e.left + e.right) > 0 and len({r for r, _ in e.left + e.right}) > 1 for e in equations)
        cells: list[Cell] = []
        for index, (read, shape, values) in enumerate(zip(reads, shapes, rows)):
            cols = self.spec.row_cols(read.spec)
            values, options = self._settled(values, shape, choice.chosen[index], choice.tied[index], table_wide)
            if values.note:
                self._note("split", read.spec.key, values.note, read.offset)
            line = self.stream.line_at(read.offset)
            for i, col in enumerate(cols):
                cells.append(Cell(self.name, read.spec.key, col, values.values[i], values.raws[i], values.flags[i], line, options[i]))
        return cells

    def _settled(self, values: RowValues, shape: RowShape, chosen: int, tied: frozenset[int], table_wide: bool) -> tuple[RowValues, list[str]]:
        """The row as the whole table reads it, and each cell's open readings ("62|6", aligned
        across the row's cells) when more than one is left."""
        if len(values.candidates) <= 1:
            return values, [""] * shape.n
        reading = values.candidates[chosen]
        row = cells_of(reading, shape)
        flags = list(row.flags)
        if not values.consistent:
            failing = failing_cells(reading, shape)
            flags = ["inconsistent" if f == "" and i in failing else f for i, f in enumerate(flags)]
        open_ = [values.candidates[k] for k in sorted(tied, key=lambda k: (k != chosen, k))]
        flags = ["ambiguous" if f == "" and len({r[i] for r in open_}) > 1 else f for i, f in enumerate(flags)]
        printed = "/".join(x if x is not None else "空" for x in reading)
        note = values.note
        if shape.blocks and values.consistent and len(open_) < len(values.candidates):
            note += f"；按全表勾稽关系定为 {printed}" + (f"（仍有 {len(open_)} 种）" if len(open_) > 1 else "")
        elif not values.consistent and table_wide:
            note += f"；按全表勾稽关系取不符最少的拆分 {printed}"
        options = ["|".join(r[i] or "" for r in open_) if len(open_) > 1 else "" for i in range(shape.n)]
        return RowValues(row.values, row.raws, flags, note, values.candidates, values.consistent), options

    def _equations(self, reads: list[RowRead], shapes: list[RowShape]) -> list[Equation]:
        """The table's identities over the rows read: each row's blocks, and the column sums."""
        equations = [
            Equation(tuple((r, i) for i in parts), ((r, total),)) for r, shape in enumerate(shapes) for parts, total in shape.blocks
        ]
        at = {read.spec.key: r for r, read in enumerate(reads)}
        leaves = [r for r, read in enumerate(reads) if read.spec.leaf]
        cols = self.spec.cols
        for sums in self.spec.col_sums:
            sides = []
            for names in (sums.left, sums.right):
                side = [r for name in names for r in (leaves if name == "leaves" else [at.get(name)])]
                sides.append(side)
            if None in sides[0] + sides[1] or not all(sides):
                continue  # a row it names was not printed: the identity cannot help here
            for c in range(len(cols)):
                if all(shapes[r].n == len(cols) for r in sides[0] + sides[1]):
                    equations.append(Equation(tuple((r, c) for r in sides[0]), tuple((r, c) for r in sides[1])))
        return equations

    def _row_blocks(self, cols: list[str]) -> tuple[tuple[tuple[int, ...], int], ...]:
        rs = self.spec.row_sum
        if not rs or not set(rs.parts + [rs.total]) <= set(cols):
            return ()
        return ((tuple(cols.index(p) for p in rs.parts), cols.index(rs.total)),)

    def _note(self, kind: str, row: str, detail: str, offset: int) -> None:
        self.notes.append(TableNote(self.name, row, kind, detail, self.stream.line_at(offset)))


def _detach_numerals(tokens: list[Token], rows: list[RowSpec]) -> list[Token]:
    """`…502.没有现成信息…`: the "2." that sticks to a value run is the next label's numeral."""
    numbered = {row.numeral for row in rows if row.numeral}
    out: list[Token] = []
    for i, token in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token.kind == "value" and nxt is not None and nxt.kind == "label" and nxt.offset == token.offset + len(token.text):
            numeral = next((n for n in numbered if token.text.endswith(n + ".")), None)
            if numeral is not None:
                cut = len(token.text) - len(numeral) - 1
                head = token.text[:cut].rstrip()
                if head:
                    out.append(Token("value", head, token.offset))
                out.append(Token("label", numeral + ".", token.offset + cut))
                continue
        out.append(token)
    return out


def _as_printed(values: RowValues) -> tuple[str | None, ...]:
    """A row read cell by cell (or placed by a fallback) as its one reading, for the table's sums."""
    return tuple(raw or None for raw in values.raws)
