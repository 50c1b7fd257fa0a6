"""The types that cross stage boundaries: what ingest reads, what parse extracts, what engines find."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class SourceText:
    """One input file read into text lines (tables as `| a | b |` rows), before normalisation."""

    source: str
    format: str  # text | html | pdf | docx | doc (Word 97–2003 or WPS), or what an unreadable file was
    encoding: str
    lines: list[str]
    problems: tuple[str, ...] = ()  # what went wrong while reading, in Chinese, for parse_error findings
    attachments: tuple[Attachment, ...] = ()  # documents a web page links to (.pdf, .doc, .docx, .wps)
    ocr_lines: frozenset[int] = frozenset()  # 1-based numbers of the lines read by OCR (scanned PDF pages)


class Attachment(NamedTuple):
    """A document a page links to: the link as written (relative to the page) and its name."""

    href: str
    name: str


@dataclass(frozen=True)
class Line:
    """A line of the document: `raw` as printed, `text` normalised. `no` is 1-based."""

    no: int
    raw: str
    text: str


@dataclass(frozen=True)
class Cell:
    table: str
    row: str
    col: str
    value: float | None
    raw: str
    flag: str  # "" | blank | ambiguous | inconsistent | unreadable | ocr
    line: int
    # The readings still open when the printed digits allow several: this cell's piece in each,
    # "|"-separated and aligned across the row's cells ("62|6"); "" when the cell was read as printed.
    options: str = ""


@dataclass(frozen=True)
class Section:
    key: str
    title: str  # the heading as printed (normalised)
    numeral: str  # the numeral printed before it, "" when none
    line: int
    end_line: int


@dataclass(frozen=True)
class Snippet:
    """A piece of text the parser extracted for a rule to judge (a period statement, a claim, ...)."""

    kind: str
    text: str
    line: int
    value: str = ""  # what the parser read from it (a date, a number, a phone), as text


@dataclass(frozen=True)
class TableNote:
    """Something the table reader noticed that is not a cell: an extra row, a digit run it split."""

    table: str
    row: str
    kind: str  # extra_row | extra_col | missing_row | split | fallback
    detail: str
    line: int


@dataclass
class ParsedReport:
    source: str
    format: str = ""
    encoding: str = ""
    status: str = "failed"  # parsed | partial | failed
    agency: str = ""
    agency_kind: str = ""
    report_year: int | None = None
    published: dt.date | None = None
    signed: dt.date | None = None
    signed_raw: str = ""
    template: str = "unknown"
    title: str = ""
    lines: list[Line] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    snippets: list[Snippet] = field(default_factory=list)
    table_notes: list[TableNote] = field(default_factory=list)
    tables_found: tuple[str, ...] = ()
    problems: list[str] = field(default_factory=list)
    content_hash: str = ""
    body: tuple[int, int] = (0, 0)  # first and last line of the report body (title to sign-off)
    attachments: tuple[Attachment, ...] = ()  # documents the page links to
    attachment: str = ""  # the attached document read as the report, when the page holds only its title
    ocr_lines: int = 0  # how many of its lines were read by OCR from scanned pages
    reused: bool = False  # taken from the parse cache of an earlier run, not parsed again


class CellRef(NamedTuple):
    """A cell a finding rests on: where it is, what was read and its flag; `previous` when it is the
    same agency's report of the year before. A row or table a finding names has empty `col`/`row`.
    (A named tuple: a large batch builds hundreds of thousands of them.)"""

    table: str
    row: str = ""
    col: str = ""
    value: float | None = None
    raw: str = ""
    flag: str = ""
    previous: bool = False

    @property
    def key(self) -> str:
        """`table.row.col` (spec/keys.md), `上年.`-prefixed for last year's cell."""
        key = ".".join(part for part in (self.table, self.row, self.col) if part)
        return f"上年.{key}" if self.previous else key


@dataclass(frozen=True)
class Finding:
    """A problem found: the rule, where it is (cells, or a quoted sentence and its line), what was
    observed and expected, and the message and evidence written from these for reviewers."""

    source: str
    agency: str
    report_year: int | None
    rule_id: str
    category: str
    severity: str
    message: str
    evidence: str
    cells: tuple[CellRef, ...] = ()
    line: int | None = None
    quote: str = ""
    observed: str = ""
    expected: str = ""
    # Passages shown side by side (this report's and the one it repeats), each {"title", "text"}:
    # findings of copied text carry both; the page marks their differences (audits/passages.py).
    passages: tuple = ()
