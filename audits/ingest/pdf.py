"""PDFs with a text layer: text lines and table rows in reading order, wrapped lines rejoined."""

from __future__ import annotations

import io
import re

from audits.ingest.rows import pipe_row
from audits.model import SourceText

def read_pdf(source: str, data: bytes) -> SourceText:
    import pdfplumber

    lines: list[str] = []
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            lines.extend(_pdf_page_lines(page))
    if not any(line.strip() for line in lines):
        return SourceText(source, "pdf", "", [], problems=("PDF 没有文字层（可能是扫描件），表格无法提取",))
    return SourceText(source, "pdf", "", _join_wrapped(lines))


def _pdf_page_lines(page) -> list[str]:
    """Text lines and table rows of one page, in reading order (top to bottom)."""
    grids = []
    for table in page.find_tables():
        rows = table.extract()
        if rows and max(sum(1 for c in row if c not in (None, "")) for row in rows) >= 2:
            grids.append((table.bbox, rows))
    placed: list[tuple[float, int, str]] = []

    def outside(obj) -> bool:
        cx = (obj["x0"] + obj["x1"]) / 2
        cy = (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= cx <= x1 and top <= cy <= bottom for (x0, top, x1, bottom), _ in grids)

    for item in page.filter(outside).extract_text_lines():
        placed.append((item["top"], 0, item["text"]))
    for (_, top, _, _), rows in grids:
        for i, row in enumerate(rows):
            placed.append((top + i * 1e-3, 1, pipe_row(row)))
    placed.sort(key=lambda t: (t[0], t[1]))
    return [text for _, _, text in placed if not re.fullmatch(r"\s*-\s*\d+\s*-\s*", text)]


_SENTENCE_END = re.compile(r"[。：:；;！!？?）)”\"]$")
_STARTS_BLOCK = re.compile(r"^(\||[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[)）]|\d+[.、．]|第[一二三四五六七八九十]+)")


def _join_wrapped(lines: list[str]) -> list[str]:
    """Rejoin narrative lines the PDF wrapped at the page margin (tables and headings stay apart)."""
    widths = [len(x) for x in lines if x and not x.startswith("|")]
    full = sorted(widths)[int(len(widths) * 0.8)] if widths else 0
    out: list[str] = []
    for line in lines:
        prev = out[-1] if out else ""
        wrapped = (
            prev
            and not prev.startswith("|")
            and not line.startswith("|")
            and not _STARTS_BLOCK.match(line)
            and len(prev) >= full - 3
            and not _SENTENCE_END.search(prev)
        )
        if wrapped:
            out[-1] = prev + line
        else:
            out.append(line)
    return out


