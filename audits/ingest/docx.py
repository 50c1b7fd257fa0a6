"""DOCX: paragraphs as lines, tables as `| a | b |` rows with merged cells written once."""

from __future__ import annotations

import io

from audits.ingest.rows import pipe_row
from audits.model import SourceText

def read_docx(source: str, data: bytes) -> SourceText:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []
    for block in document.element.body.iterchildren():
        if block.tag.endswith("}p"):
            text = Paragraph(block, document).text
            lines.extend(part for part in text.splitlines())
        elif block.tag.endswith("}tbl"):
            for row in Table(block, document).rows:
                lines.append(pipe_row(_docx_row_cells(row)))
    return SourceText(source, "docx", "utf-8", lines)


def _docx_row_cells(row) -> list[str]:
    """A row's cells with each merged cell written once (python-docx repeats merged cells)."""
    cells, seen = [], set()
    for cell in row.cells:
        if id(cell._tc) in seen:
            continue
        seen.add(id(cell._tc))
        cells.append(cell.text)
    return cells
