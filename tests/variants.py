"""Report variants with known content, for round-trip tests of the reader and the parser.

A variant is a complete annual report rendered from values we already know: the cells a person
transcribed from a real report (tests/expected/seed_*.yaml), or made-up non-zero values that satisfy
every table identity. The tables take the shape of the unified template (rules/templates/*.yaml):
merged header cells, 三、本年度办理结果 spanning the result rows, (三)不予公开 spanning its sub-rows,
table 四 with its three header rows. The same document can be written as HTML (any encoding, with or
without a declared charset, in traditional script) or as DOCX with merged cells.

Nothing here runs the parser: the expected values of a variant are the values it was rendered from.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass, replace
from html import escape
from itertools import groupby
from pathlib import Path

from ruamel.yaml import YAML

from audits.layouts import Layout, RowSpec, TableSpec

CellKey = tuple[str, str, str]  # (table, row, col) as in ../shared/spec/keys.md
Value = int | float | None

# The note printed in table 三's top-left cell of the unified template.
BALANCE_NOTE = "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）"
APPLICANT_HEADER = "申请人情况"
ORGANISATION_HEADER = "法人或其他组织"  # spans the five organisation columns
CONTENT_HEADER = "信息内容"
# Table 二 prints its rows in blocks, one per clause of 条例第二十条.
ACTIVE_CLAUSE = {
    "regulations": "第二十条第（一）项",
    "normative_documents": "第二十条第（一）项",
    "licensing": "第二十条第（五）项",
    "other_services": "第二十条第（五）项",
    "punishment": "第二十条第（六）项",
    "coercion": "第二十条第（六）项",
    "fees": "第二十条第（八）项",
    "procurement": "第二十条第（九）项",
}
# Table 三's identity rows: 一 + 二 = (七) + 四, per column.
NEW_RECEIVED, CARRIED_OVER, TOTAL_PROCESSED, CARRIED_FORWARD = (
    "new_received", "carried_over", "total_processed", "carried_forward",
)
# One plain sentence per section; none uses another section's heading words or a table's anchors.
SECTION_SENTENCES = {
    "overview": "本机关坚持以公开为常态、不公开为例外，全面推进政务公开工作。",
    "active": "本机关通过门户网站主动公开政府信息，具体数据见下表。",
    "applications": "本机关依申请公开工作的具体数据见下表。",
    "review_litigation": "因政府信息公开引起的复议和诉讼的具体数据见下表。",
    "problems": "下一步将加强业务培训，提升公开质量。",
    "other": "本机关未收取信息处理费。",
}


# Known content ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownReport:
    """What a variant says: the header fields and every cell value (None for a blank cell)."""

    name: str
    agency: str
    report_year: int
    published: dt.date
    template: str
    cells: dict[CellKey, Value]


def load_seed(path: Path) -> KnownReport:
    """The content of a hand-transcribed seed (tests/expected/seed_*.yaml)."""
    doc = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    published = doc["published"] or dt.date(doc["report_year"] + 1, 1, 20)  # the seed printed none
    cells = {
        (table, row, col): value
        for table, rows in doc["cells"].items()
        for row, cols in rows.items()
        for col, value in cols.items()
    }
    return KnownReport(path.stem, doc["agency"], doc["report_year"], _date(published), str(doc["template"]), cells)


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def with_nonzero_values(report: KnownReport, layout: Layout, seed: int = 0) -> KnownReport:
    """The same report with distinct non-zero values in every cell of its template's tables,
    satisfying each table's identities."""
    rng = random.Random(f"{report.name}-{seed}")
    cells = {
        **_nonzero_active(layout.tables["active"], rng),
        **_nonzero_applications(layout.tables["applications"], rng),
        **_nonzero_review(layout.tables["review_litigation"], rng),
    }
    return replace(report, name=f"{report.name}-nonzero", cells=cells)


def _nonzero_active(spec: TableSpec, rng: random.Random) -> dict[CellKey, Value]:
    keys = [(row, col) for row in spec.rows for col in spec.row_cols(row)]
    numbers = rng.sample(range(1, 500), len(keys))
    cells: dict[CellKey, Value] = {}
    for i, ((row, col), number) in enumerate(zip(keys, numbers)):
        if col in row.decimal:
            value: Value = number + 0.5  # 万元 with a fraction
        elif col in row.signed:
            value = -number if i % 2 else number  # 本年增/减 may be a decrease
        else:
            value = number
        cells[("active", row.key, col)] = value
    return cells


def _nonzero_applications(spec: TableSpec, rng: random.Random) -> dict[CellKey, Value]:
    """Leaf rows drawn at random; (七)总计 their sum; 一 chosen so that 一 + 二 = (七) + 四; every
    row's 总计 the sum of its six applicant columns. Redrawn until all 175 (161) values differ."""
    parts, total = spec.row_sum.parts, spec.row_sum.total
    leaves = [row.key for row in spec.rows if row.leaf]
    while True:
        drawn = iter(rng.sample(range(1, 1000), (len(leaves) + 2) * len(parts)))
        rows = {key: {col: next(drawn) for col in parts} for key in [*leaves, CARRIED_OVER, CARRIED_FORWARD]}
        rows[TOTAL_PROCESSED] = {col: sum(rows[key][col] for key in leaves) for col in parts}
        rows[NEW_RECEIVED] = {
            col: rows[TOTAL_PROCESSED][col] + rows[CARRIED_FORWARD][col] - rows[CARRIED_OVER][col] for col in parts
        }
        for values in rows.values():
            values[total] = sum(values[col] for col in parts)
        cells = {("applications", key, col): value for key, values in rows.items() for col, value in values.items()}
        assert len(cells) == len(spec.rows) * len(spec.cols)
        if _distinct_nonzero(cells):
            return cells


def _nonzero_review(spec: TableSpec, rng: random.Random) -> dict[CellKey, Value]:
    parts, total = spec.row_sum.parts, spec.row_sum.total
    while True:
        drawn = iter(rng.sample(range(1, 100), len(spec.rows) * len(parts)))
        cells: dict[CellKey, Value] = {}
        for row in spec.rows:
            values = {col: next(drawn) for col in parts}
            values[total] = sum(values.values())
            cells.update({("review_litigation", row.key, col): value for col, value in values.items()})
        if _distinct_nonzero(cells):
            return cells


def _distinct_nonzero(cells: dict[CellKey, Value]) -> bool:
    values = list(cells.values())
    return 0 not in values and len(set(values)) == len(values)


# Document model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Td:
    """One printed table cell; cells a span covers are not listed (as in HTML)."""

    text: str
    rowspan: int = 1
    colspan: int = 1


Grid = list[list[Td]]
Block = str | Grid  # a paragraph or a table


def printed(value: Value) -> str:
    """A value as a report prints it; a blank cell is empty."""
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return str(value)


def report_blocks(report: KnownReport, layout: Layout) -> list[Block]:
    """The whole report in reading order: title, 发布日期, the six sections, the three tables."""
    tables = {
        "active": active_table(layout.tables["active"], report.cells),
        "applications": applications_table(layout.tables["applications"], report.cells),
        "review_litigation": review_table(layout.tables["review_litigation"], report.cells),
    }
    blocks: list[Block] = [title_of(report), f"发布日期：{report.published.isoformat()}"]
    for section in layout.sections:
        blocks.append(f"{section.numeral}、{section.title}")
        blocks.append(SECTION_SENTENCES[section.key])
        if section.key in tables:
            blocks.append(tables[section.key])
    return blocks


def title_of(report: KnownReport) -> str:
    return f"{report.agency}{report.report_year}年政府信息公开工作年度报告"


def active_table(spec: TableSpec, cells: dict[CellKey, Value]) -> Grid:
    """Table 二: per clause a heading row, a header row (信息内容 + column labels), the data rows.
    A row with fewer columns than the widest lets its last cell span the rest."""
    width = 1 + max(len(spec.row_cols(row)) for row in spec.rows)
    grid: Grid = []
    for clause, rows in groupby(spec.rows, key=lambda row: ACTIVE_CLAUSE[row.key]):
        rows = list(rows)
        grid.append([Td(clause, colspan=width)])
        grid.append([Td(CONTENT_HEADER), *_spread([spec.col_labels[c] for c in spec.row_cols(rows[0])], width - 1)])
        for row in rows:
            values = [printed(cells[("active", row.key, col)]) for col in spec.row_cols(row)]
            grid.append([Td(row.label), *_spread(values, width - 1)])
    return grid


def _spread(texts: list[str], width: int) -> list[Td]:
    """Cells over `width` columns, the last one spanning whatever is left."""
    return [Td(text, colspan=1 if i < len(texts) - 1 else width - len(texts) + 1) for i, text in enumerate(texts)]


def applications_table(spec: TableSpec, cells: dict[CellKey, Value]) -> Grid:
    """Table 三 as the template prints it: the 勾稽 note over three header rows, 申请人情况 over the
    seven columns, 法人或其他组织 over five; 三、本年度办理结果 spanning the result rows and each
    (三)/(四)/(五)/(六) group spanning its numbered sub-rows."""
    organisations = spec.cols[1:-1]
    grid: Grid = [
        [Td(BALANCE_NOTE, rowspan=3, colspan=3), Td(APPLICANT_HEADER, colspan=len(spec.cols))],
        [Td(spec.col_labels[spec.cols[0]], rowspan=2), Td(ORGANISATION_HEADER, colspan=len(organisations)),
         Td(spec.col_labels[spec.cols[-1]], rowspan=2)],
        [Td(spec.col_labels[col]) for col in organisations],
    ]
    results = _result_rows(spec.rows)
    group_of = _numbered_groups(spec)
    results_label = next(g.label for g in spec.groups if g.key == "results")
    for row in spec.rows:
        labels: list[Td] = []
        if row.key not in results:
            labels.append(Td(row.label, colspan=3))
        else:
            if row.key == results[0]:
                labels.append(Td(results_label, rowspan=len(results)))
            if row.key in group_of:
                group_label, members = group_of[row.key]
                if row.key == members[0]:
                    labels.append(Td(group_label, rowspan=len(members)))
                labels.append(Td(row.label))
            else:
                labels.append(Td(row.label, colspan=2))
        grid.append(labels + [Td(printed(cells[("applications", row.key, col)])) for col in spec.cols])
    return grid


def _result_rows(rows: list[RowSpec]) -> list[str]:
    """The rows under 三、本年度办理结果: the leaf rows and the (七)总计 row that closes them."""
    leaves = [i for i, row in enumerate(rows) if row.leaf]
    return [row.key for row in rows[leaves[0] : leaves[-1] + 2]]


def _numbered_groups(spec: TableSpec) -> dict[str, tuple[str, list[str]]]:
    """Row key → (group label, the group's rows): each run of numbered rows (1., 2., …) belongs to
    the next of the layout's sub-groups ((三)不予公开, (四)无法提供, …) in order."""
    runs: list[list[str]] = []
    for row in spec.rows:
        if row.numeral == "1":
            runs.append([])
        if row.numeral:
            runs[-1].append(row.key)
    labels = [g.label for g in spec.groups if g.key != "results"]
    assert len(labels) == len(runs), (labels, runs)
    return {key: (label, run) for label, run in zip(labels, runs) for key in run}


def review_table(spec: TableSpec, cells: dict[CellKey, Value]) -> Grid:
    """Table 四: 行政复议 | 行政诉讼 on top, 未经复议直接起诉 | 复议后起诉 under 行政诉讼, the five
    result columns under each block (行政复议's spanning two header rows), then one row of values."""
    labels = [spec.col_labels[col] for col in spec.cols]
    width = len(spec.cols)
    blocks = [row.label.split("·") for row in spec.rows]  # "行政诉讼·复议后起诉" → parent, child
    top: list[Td] = []
    middle: list[Td] = []
    bottom: list[Td] = []
    for parent, members in groupby(blocks, key=lambda parts: parts[0]):
        members = list(members)
        top.append(Td(parent, colspan=width * len(members)))
        for parts in members:
            if len(parts) == 1:
                middle.extend(Td(label, rowspan=2) for label in labels)
            else:
                middle.append(Td(parts[1], colspan=width))
                bottom.extend(Td(label) for label in labels)
    values = [Td(printed(cells[("review_litigation", row.key, col)])) for row in spec.rows for col in spec.cols]
    return [top, middle, bottom, values]


def table_width(grid: Grid) -> int:
    return sum(td.colspan for td in grid[0])


def placed_cells(grid: Grid) -> list[tuple[int, int, Td]]:
    """Each cell with its top-left (row, column) on the full grid, as an HTML table lays it out."""
    taken: set[tuple[int, int]] = set()
    out = []
    for r, row in enumerate(grid):
        c = 0
        for td in row:
            while (r, c) in taken:
                c += 1
            out.append((r, c, td))
            taken.update((r + dr, c + dc) for dr in range(td.rowspan) for dc in range(td.colspan))
            c += td.colspan
    return out


# HTML ---------------------------------------------------------------------------------------


def to_html(blocks: list[Block], charset: str | None = "utf-8") -> str:
    """A web page; `charset=None` declares no encoding at all."""
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "\n".join(_html_block(block, heading=i == 0) for i, block in enumerate(blocks))
    return f"<!DOCTYPE html>\n<html><head>{meta}<title>{escape(blocks[0])}</title></head>\n<body>\n{body}\n</body></html>\n"


def _html_block(block: Block, heading: bool = False) -> str:
    if isinstance(block, str):
        tag = "h1" if heading else "p"
        return f"<{tag}>{escape(block)}</{tag}>"
    return "<table border=\"1\">\n" + "\n".join(_html_row(row) for row in block) + "\n</table>"


def _html_row(row: list[Td]) -> str:
    return "<tr>" + "".join(_html_td(td) for td in row) + "</tr>"


def _html_td(td: Td) -> str:
    spans = (f' rowspan="{td.rowspan}"' if td.rowspan > 1 else "") + (f' colspan="{td.colspan}"' if td.colspan > 1 else "")
    return f"<td{spans}>{escape(td.text)}</td>"


def to_traditional(text: str) -> str:
    import opencc

    return opencc.OpenCC("s2t").convert(text)


# DOCX ---------------------------------------------------------------------------------------


def to_docx(blocks: list[Block]) -> bytes:
    """A Word document; spans become merged cells (w:gridSpan, w:vMerge)."""
    import docx

    document = docx.Document()
    for block in blocks:
        if isinstance(block, str):
            document.add_paragraph(block)
        else:
            _docx_table(document, block)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _docx_table(document, grid: Grid) -> None:
    width = table_width(grid)
    table = document.add_table(rows=len(grid), cols=width)
    table.style = "Table Grid"
    # NOTE: the cells are listed once, before any merge (table.cell() lists them all on every call);
    # each span's text goes into its top-left cell, and merging empty cells into it keeps that text.
    cells = table._cells
    placed = placed_cells(grid)
    for r, c, td in placed:
        cells[r * width + c].text = td.text
    for r, c, td in placed:
        if td.rowspan > 1 or td.colspan > 1:
            cells[r * width + c].merge(cells[(r + td.rowspan - 1) * width + c + td.colspan - 1])


# Variants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """How a known report is written to bytes: `suffix` names the file the way a crawler would."""

    name: str
    suffix: str

    def render(self, report: KnownReport, layout: Layout) -> bytes:
        blocks = report_blocks(report, layout)
        if self.name == "html":
            return to_html(blocks).encode("utf-8")
        if self.name == "html_gbk_undeclared":
            return to_html(blocks, charset=None).encode("gbk")
        if self.name == "traditional":
            return to_traditional(to_html(blocks)).encode("utf-8")
        if self.name == "big5_undeclared":
            # What Big5 lacks is written as character references, as a page would have it.
            return to_traditional(to_html(blocks, charset=None)).encode("big5", errors="xmlcharrefreplace")
        if self.name == "utf16_no_bom":
            return to_html(blocks, charset=None).encode("utf-16-le")
        if self.name == "xhtml":
            page = to_html(blocks).replace("<!DOCTYPE html>\n<html>", '<html xmlns="http://www.w3.org/1999/xhtml">')
            return ('<?xml version="1.0" encoding="UTF-8"?>\n' + page).encode("utf-8")
        if self.name == "docx":
            return to_docx(blocks)
        raise ValueError(self.name)


VARIANTS = [
    Variant("html", ".html"),
    Variant("html_gbk_undeclared", ".html"),
    Variant("docx", ".docx"),
    Variant("traditional", ".html"),
    Variant("big5_undeclared", ".html"),
    Variant("utf16_no_bom", ".html"),
    Variant("xhtml", ".xhtml"),
]
