"""PDFs: text lines and table rows in reading order, wrapped lines rejoined.

Pages with a text layer are read from it (pdfplumber). Pages without one (scans) are rendered and
read by OCR (`audits.ingest.ocr`); the lines that came from OCR are listed in `ocr_lines`, so that
what is read from them can be marked as such.
"""

from __future__ import annotations

import io
import re

from audits.ingest import ocr
from audits.ingest.rows import pipe_row
from audits.model import SourceText

_PAGE_NUMBER = re.compile(r"\s*-\s*\d+\s*-\s*")


def read_pdf(source: str, data: bytes) -> SourceText:
    import pdfplumber

    pages: list[list[str] | None] = []  # None: a page with no text layer
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            pages.append(_pdf_page_lines(page) if _has_text_layer(page) else None)
    scanned = [i for i, lines in enumerate(pages) if lines is None]
    problems: list[str] = []
    read: dict[int, list[str]] = {}
    if scanned:
        try:
            read = ocr.read_pages(data, scanned)
        except ocr.OcrUnavailable as exc:
            problems.append(f"PDF 有 {len(scanned)} 页没有文字层（可能是扫描件），需要 OCR 才能读取：{exc}")
        except Exception as exc:  # noqa: BLE001 - one unreadable scan must not lose the text pages
            problems.append(f"PDF 有 {len(scanned)} 页没有文字层（可能是扫描件），OCR 识别失败（{type(exc).__name__}: {exc}）")
    lines: list[str] = []
    from_ocr: list[bool] = []
    for i, page_lines in enumerate(pages):
        page_lines = read.get(i, []) if page_lines is None else page_lines
        page_lines = [line for line in page_lines if not _PAGE_NUMBER.fullmatch(line)]
        lines.extend(page_lines)
        from_ocr.extend([i in read] * len(page_lines))
    if not any(line.strip() for line in lines):
        if not problems:
            problems.append("PDF 没有文字层（可能是扫描件），OCR 也未识别出文字，表格无法提取" if read else "PDF 没有文字，表格无法提取")
        return SourceText(source, "pdf", "", [], problems=tuple(problems))
    joined, joined_ocr = _join_wrapped(lines, from_ocr)
    ocr_lines = frozenset(no for no, flag in enumerate(joined_ocr, start=1) if flag)
    return SourceText(source, "pdf", "", joined, problems=tuple(problems), ocr_lines=ocr_lines)


def _has_text_layer(page) -> bool:
    """Whether the page prints any text; a scan with only its page number stamped on it has none."""
    text = "".join(c["text"] for c in page.chars)
    return not re.fullmatch(r"[\s\-—]*\d*[\s\-—]*", text)


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
    return [text for _, _, text in placed]


_SENTENCE_END = re.compile(r"[。：:；;！!？?）)”\"]$")
_STARTS_BLOCK = re.compile(r"^(\||[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[)）]|\d+[.、．]|第[一二三四五六七八九十]+)")


def _join_wrapped(lines: list[str], from_ocr: list[bool]) -> tuple[list[str], list[bool]]:
    """Rejoin narrative lines the PDF wrapped at the page margin (tables and headings stay apart).
    `from_ocr` says which lines OCR read; a joined line is OCR's if any of its parts is."""
    widths = [len(x) for x in lines if x and not x.startswith("|")]
    full = sorted(widths)[int(len(widths) * 0.8)] if widths else 0
    out: list[str] = []
    out_ocr: list[bool] = []
    for line, is_ocr in zip(lines, from_ocr):
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
            out_ocr[-1] = out_ocr[-1] or is_ocr
        else:
            out.append(line)
            out_ocr.append(is_ocr)
    return out, out_ocr
