"""A batch of parsed reports as Polars frames, one frame per kind of thing, keyed by `source`."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from audits.identity import agency_key
from audits.model import ParsedReport

# Strings that repeat on every row (the source path on each of a report's cells and lines, the
# cell keys, the flags) are categorical: one copy of each string per batch, which more than halves
# the frames of a large batch and speeds up the joins and pivots on them.
KEY = pl.Categorical

DOCUMENT_SCHEMA = {
    "source": KEY,
    "agency": pl.Utf8,
    "report_year": pl.Int32,
    "published": pl.Date,
    "agency_id": pl.Utf8,
    "template": pl.Utf8,
    "status": pl.Utf8,
    "agency_kind": pl.Utf8,
    "format": pl.Utf8,
    "encoding": pl.Utf8,
    "title": pl.Utf8,
    "signed": pl.Date,
    "signed_raw": pl.Utf8,
    "tables_found": pl.Utf8,
    "sections_found": pl.Int32,
    "lines": pl.Int32,
    "body_start": pl.Int32,
    "body_end": pl.Int32,
    "problems": pl.Utf8,
    "content_hash": pl.Utf8,
    "attachments": pl.Utf8,  # the documents a page links to, one link a line
    "attachment": pl.Utf8,  # the attached document read as the report
    "ocr_lines": pl.Int32,  # lines read by OCR from scanned pages; 0 when the text was printed
}
CELL_SCHEMA = {
    "source": KEY,
    "table": KEY,
    "row": KEY,
    "col": KEY,
    "value": pl.Float64,
    "raw": pl.Utf8,
    "flag": KEY,  # "" for a plain cell, never null
    "line": pl.Int32,
    "options": KEY,  # the open readings of a run-together row (model.Cell.options); null when none
}
SECTION_SCHEMA = {
    "source": KEY,
    "position": pl.Int32,
    "key": KEY,
    "title": pl.Utf8,
    "numeral": pl.Utf8,
    "line": pl.Int32,
    "end_line": pl.Int32,
}
# Lines as normalised, empty ones left out (the parser's Line keeps the original for evidence).
LINE_SCHEMA = {"source": KEY, "no": pl.Int32, "text": pl.Utf8}
SNIPPET_SCHEMA = {"source": KEY, "kind": KEY, "text": pl.Utf8, "line": pl.Int32, "value": pl.Utf8}
NOTE_SCHEMA = {"source": KEY, "table": KEY, "row": KEY, "kind": KEY, "detail": pl.Utf8, "line": pl.Int32}


@dataclass
class Frames:
    documents: pl.DataFrame
    cells: pl.DataFrame
    sections: pl.DataFrame
    lines: pl.DataFrame
    snippets: pl.DataFrame
    notes: pl.DataFrame


def build_frames(reports: list[ParsedReport]) -> Frames:
    documents, cells, sections, lines, snippets, notes = [], [], [], [], [], []
    for r in reports:
        documents.append(
            {
                "source": r.source,
                "agency": r.agency,
                "report_year": r.report_year,
                "published": r.published,
                "agency_id": agency_key(r.agency),
                "template": r.template,
                "status": r.status,
                "agency_kind": r.agency_kind,
                "format": r.format,
                "encoding": r.encoding,
                "title": r.title,
                "signed": r.signed,
                "signed_raw": r.signed_raw,
                "tables_found": ",".join(r.tables_found),
                "sections_found": len(r.sections),
                "lines": len(r.lines),
                "body_start": r.body[0],
                "body_end": r.body[1],
                "problems": "；".join(r.problems),
                "content_hash": r.content_hash,
                "attachments": "\n".join(a.href for a in r.attachments),
                "attachment": r.attachment,
                "ocr_lines": r.ocr_lines,
            }
        )
        # Tuples in schema order (one per row) build the frames faster than dicts.
        cells.extend((r.source, c.table, c.row, c.col, c.value, c.raw, c.flag, c.line, c.options or None) for c in r.cells)
        sections.extend((r.source, i, s.key, s.title, s.numeral, s.line, s.end_line) for i, s in enumerate(r.sections))
        lines.extend((r.source, x.no, x.text) for x in r.lines if x.text)
        snippets.extend((r.source, s.kind, s.text, s.line, s.value) for s in r.snippets)
        notes.extend((r.source, n.table, n.row, n.kind, n.detail, n.line) for n in r.table_notes)
    return Frames(
        documents=pl.DataFrame(documents, schema=DOCUMENT_SCHEMA),
        cells=_rows(cells, CELL_SCHEMA),
        sections=_rows(sections, SECTION_SCHEMA),
        lines=_rows(lines, LINE_SCHEMA),
        snippets=_rows(snippets, SNIPPET_SCHEMA),
        notes=_rows(notes, NOTE_SCHEMA),
    )


def _rows(rows: list[tuple], schema: dict) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


def concat_frames(parts: list[Frames]) -> Frames:
    """Frames of several chunks of a batch as one (chunks keep memory flat while parsing)."""
    if len(parts) == 1:
        return parts[0]
    return Frames(*(pl.concat([getattr(p, name) for p in parts]) for name in Frames.__dataclass_fields__))
