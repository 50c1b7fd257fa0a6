"""The document as one string of cells, so that every format is read by one table grammar.

Cells are joined with SEP; a `| a | b |` row ends with ROW. Within a cell, spaces survive only
between two digits (they separate numbers); elsewhere they are removed, as are quotes and '?', so
layout labels can be found with plain substring search. Flattened tables (one cell per line, cells
separated by an empty line) keep their empty cells: a line that printed only NBSP or '?' is an empty
cell, and a run of more empty lines than the usual gap stands for empty cells (seed 004).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass

from audits.model import Line
from audits.normalize import compact_normalised, is_blank_cell

SEP = "\x1f"
ROW = "\x1e"
_KEEP_DIGIT_SPACE = re.compile(r"(?<=[\d.])\s+(?=[\d+\-])")
_PIPE_RULE = re.compile(r"^\|?\s*:?-{2,}")


def cell_key(text: str) -> str:
    """A cell's text as it stands in the stream."""
    text = _KEEP_DIGIT_SPACE.sub("\x00", text)
    return compact_normalised(text).replace("\x00", " ")


@dataclass
class Stream:
    text: str
    starts: list[int]  # stream offset where each recorded cell starts
    lines: list[int]  # the document line of that cell
    piped: list[bool]  # whether that cell came from a `| … |` row

    def line_at(self, offset: int) -> int:
        i = bisect.bisect_right(self.starts, offset) - 1
        return self.lines[i] if i >= 0 else 1


def usual_gap(lines: list[Line]) -> int:
    """How many empty lines usually separate two text lines (0 or 1) in this document."""
    runs: Counter[int] = Counter()
    run = 0
    for line in lines:
        if line.text or is_blank_cell(line.raw, line.text):
            runs[min(run, 2)] += 1
            run = 0
        else:
            run += 1
    return 1 if runs[1] > runs[0] else 0


def build_stream(lines: list[Line]) -> Stream:
    gap = usual_gap(lines)
    parts: list[str] = []
    starts: list[int] = []
    line_of: list[int] = []
    piped: list[bool] = []
    size = 0
    run = 0
    joinable = False  # may the next text line continue the previous cell?

    def add(text: str, line: int, from_pipe: bool = False, end: str = SEP) -> None:
        nonlocal size
        starts.append(size)
        line_of.append(line)
        piped.append(from_pipe)
        parts.append(text + end)
        size += len(text) + len(end)

    for line in lines:
        blank_cell = is_blank_cell(line.raw, line.text)
        if not line.text and not blank_cell:
            run += 1
            continue
        for _ in range(max(run - gap, 0) if gap else 0):
            add("", line.no)
        if line.text.startswith("|") and line.text.count("|") >= 2:
            if not _PIPE_RULE.match(line.text):
                cells = line.text.strip().strip("|").split("|")
                for i, cell in enumerate(cells):
                    add(cell_key(cell), line.no, True, ROW + SEP if i == len(cells) - 1 else SEP)
            joinable = False
        elif blank_cell:
            add("", line.no)
            joinable = False
        elif gap and run == 0 and joinable and parts:
            # NOTE: two text lines with no empty line between them, where cells are usually
            # separated by one, are one cell wrapped ("本年新\n制作数量").
            last = parts.pop()
            joined = last[: -len(SEP)] + cell_key(line.text) + SEP
            parts.append(joined)
            size += len(joined) - len(last)
        else:
            add(cell_key(line.text), line.no)
            joinable = True
        run = 0
    return Stream("".join(parts), starts, line_of, piped)
