"""PDFs: text lines and table rows in reading order, wrapped lines rejoined.

Pages with a text layer are read from it: pdfium gives the characters with their boxes and the
page's painted paths, and pdfplumber's table and text algorithms, run on those as plain objects,
find the ruled tables and group the rest into lines (pdfminer, which pdfplumber reads files with,
cost ~10× pdfium's time to give the same characters and rulings). Pages without one (scans) are
rendered and read by OCR (`audits.ingest.ocr`); the lines that came from OCR are listed in
`ocr_lines`, so that what is read from them can be marked as such.
"""

from __future__ import annotations

import bisect
import ctypes
import re

from audits.ingest import ocr
from audits.ingest.rows import pipe_row
from audits.model import SourceText

_PAGE_NUMBER = re.compile(r"\s*-\s*\d+\s*-\s*")


def read_pdf(source: str, data: bytes) -> SourceText:
    import pypdfium2

    pages: list[list[str] | None] = []  # None: a page with no text layer
    pdf = pypdfium2.PdfDocument(data)
    try:
        for page in pdf:
            frame = _Frame(page)
            chars = _chars(page, frame)
            pages.append(_page_lines(chars, _edges(page.raw, frame)) if _has_text_layer(chars) else None)
    finally:
        pdf.close()
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


class _Frame:
    """PDF user space → the page as pdfplumber measures it: turned by /Rotate, with its origin at the
    MediaBox's corner (pdfminer's page matrix), `top` measured down from the top edge."""

    def __init__(self, page) -> None:
        x0, y0, x1, y1 = page.get_mediabox()
        rotation = page.get_rotation()
        self.matrix = {
            90: (0, -1, 1, 0, -y0, x1),
            180: (-1, 0, 0, -1, x1, y1),
            270: (0, 1, -1, 0, y1, -x0),
        }.get(rotation, (1, 0, 0, 1, -x0, -y0))
        self.height = x1 - x0 if rotation in (90, 270) else y1 - y0

    def point(self, x: float, y: float, m: tuple) -> tuple[float, float]:
        """(x, top) of the point (x, y) of a space (a path's) that `m` maps into user space."""
        x, y = m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]
        a, b, c, d, e, f = self.matrix
        return a * x + c * y + e, self.height - (b * x + d * y + f)


def _compose(m: tuple, n: tuple) -> tuple:
    """The matrix applying `m`, then `n` (PDF's row-vector convention: m × n)."""
    return (
        m[0] * n[0] + m[1] * n[2], m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2], m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4], m[4] * n[1] + m[5] * n[3] + n[5],
    )


def _chars(page, frame: _Frame) -> list[dict]:
    """The page's printed characters (not the spaces and line breaks pdfium infers) as pdfplumber's
    char objects. pdfminer's box of a character is its advance wide and one em high from the font's
    descent; pdfium's loose box has the same width and descent, but reaches up to the font's ascent:
    its far side is moved one em from the near one."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        box, matrix = pdfium_c.FS_RECTF(), pdfium_c.FS_MATRIX()
        x, y = ctypes.c_double(), ctypes.c_double()
        fa, fb, fc, fd, fe, ff = frame.matrix
        height = frame.height
        chars = []
        raw = textpage.raw  # the handle itself: pypdfium2's wrapper costs a conversion a call
        for i in range(textpage.count_chars()):
            if pdfium_c.FPDFText_IsGenerated(raw, i):
                continue
            pdfium_c.FPDFText_GetLooseCharBox(raw, i, box)
            pdfium_c.FPDFText_GetMatrix(raw, i, matrix)
            font_size = pdfium_c.FPDFText_GetFontSize(raw, i)
            a, b, c, d = matrix.a, matrix.b, matrix.c, matrix.d
            left, bottom, right, top = box.left, box.bottom, box.right, box.top
            if b == 0 == c and 0 < a and 0 < d != 1 and abs(right - left - font_size) < 1e-3:
                # Vertical writing (a CID font with a -V CMap): pdfium sizes its loose box by the
                # font size alone, unscaled by the matrix. pdfminer's box of such a character is
                # the em square on its origin (which pdfium has moved to its lower left corner).
                pdfium_c.FPDFText_GetCharOrigin(raw, i, x, y)
                left, bottom, right = x.value, y.value, x.value + font_size * a
            if c == 0 and d:  # the text's up is up or down the page's user space
                top, bottom = (bottom + font_size * d, bottom) if d > 0 else (top, top + font_size * d)
            elif d == 0 and c:  # left or right
                left, right = (left, left + font_size * c) if c > 0 else (right + font_size * c, right)
            # the frame turns by quarter turns: two opposite corners make the box
            x0, top0 = fa * left + fc * bottom + fe, height - (fb * left + fd * bottom + ff)
            x1, top1 = fa * right + fc * top + fe, height - (fb * right + fd * top + ff)
            a, b, c, d = a * fa + b * fc, a * fb + b * fd, c * fa + d * fc, c * fb + d * fd
            chars.append({
                "text": chr(pdfium_c.FPDFText_GetUnicode(raw, i)),
                "x0": min(x0, x1), "x1": max(x0, x1), "top": min(top0, top1), "bottom": max(top0, top1),
                "upright": 0 < a * d and b * c <= 0,  # pdfminer's test
            })
        for char in chars:
            char["doctop"] = char["top"]  # pdfplumber's words carry it; one page is read at a time
        return chars
    finally:
        textpage.close()


def _edges(parent, frame: _Frame, form_matrix: tuple | None = None) -> list[dict]:
    """pdfplumber's edges of the painted paths on a page (or in a form XObject on it): each subpath
    is a line, a rectangle or a curve, told apart and cut into edges as pdfminer and pdfplumber do
    (`obj_to_edges`)."""
    import pypdfium2.raw as pdfium_c
    from pdfplumber.utils import obj_to_edges

    count, get = (pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject) if form_matrix is None else (pdfium_c.FPDFFormObj_CountObjects, pdfium_c.FPDFFormObj_GetObject)
    edges: list[dict] = []
    matrix = pdfium_c.FS_MATRIX()
    x, y = ctypes.c_float(), ctypes.c_float()
    for i in range(count(parent)):
        obj = get(parent, i)
        kind = pdfium_c.FPDFPageObj_GetType(obj)
        if kind not in (pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_FORM):
            continue
        pdfium_c.FPDFPageObj_GetMatrix(obj, matrix)
        m = (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)
        m = m if form_matrix is None else _compose(m, form_matrix)
        if kind == pdfium_c.FPDF_PAGEOBJ_FORM:
            edges += _edges(obj, frame, m)
            continue
        subpaths: list[tuple[str, list[tuple[float, float]]]] = []
        beziers = 0
        for j in range(pdfium_c.FPDFPath_CountSegments(obj)):
            segment = pdfium_c.FPDFPath_GetPathSegment(obj, j)
            step = pdfium_c.FPDFPathSegment_GetType(segment)
            if step == pdfium_c.FPDF_SEGMENT_BEZIERTO:
                # pdfium gives a Bézier's two control points as segments too; pdfminer keeps its end
                beziers = (beziers + 1) % 3
                if beziers:
                    continue
            pdfium_c.FPDFPathSegment_GetPoint(segment, x, y)
            point = frame.point(x.value, y.value, m)
            if step == pdfium_c.FPDF_SEGMENT_MOVETO or not subpaths:
                subpaths.append(("m", [point]))
            else:
                shape, points = subpaths[-1]
                subpaths[-1] = (shape + ("c" if step == pdfium_c.FPDF_SEGMENT_BEZIERTO else "l"), points + [point])
            if pdfium_c.FPDFPathSegment_GetClose(segment):
                shape, points = subpaths[-1]
                subpaths[-1] = (shape + "h", points + [points[0]])
        for shape, points in subpaths:
            edges += obj_to_edges(_path_object(shape, points))
    return edges


def _path_object(shape: str, points: list[tuple[float, float]]) -> dict:
    """A subpath (`shape`: its operators, m l c h) as the object pdfminer makes of it (its
    `PDFLayoutAnalyzer.paint_path`): a line, a rectangle or a curve."""
    if len(shape) > 3 and shape.endswith("lh") and points[-2] == points[0]:  # a redundant l before h
        shape, points = shape[:-2] + "h", points[:-2] + points[-1:]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    box = {"x0": min(xs), "x1": max(xs), "top": min(ys), "bottom": max(ys), "doctop": min(ys)}
    # y0/y1 (upward) are copied into rect edges and never read by the table finder
    box.update(width=box["x1"] - box["x0"], height=box["bottom"] - box["top"], y0=-box["bottom"], y1=-box["top"])
    if shape in ("ml", "mlh"):
        return {**box, "object_type": "line"}
    if shape in ("mlllh", "mllll"):
        (x0, y0), (x1, y1), (x2, y2), (x3, y3), _ = points
        square = (x0 == x1 and y1 == y2 and x2 == x3 and y3 == y0) or (y0 == y1 and x1 == x2 and y2 == y3 and x3 == x0)
        if points[0] == points[4] and square:
            return {**box, "object_type": "rect"}
    return {**box, "object_type": "curve", "pts": points}


def _has_text_layer(chars: list[dict]) -> bool:
    """Whether the page prints any text; a scan with only its page number stamped on it has none."""
    text = "".join(c["text"] for c in chars)
    return not re.fullmatch(r"[\s\-—]*\d*[\s\-—]*", text)


def _tables(edges: list[dict]) -> list[list[tuple[float, float, float, float]]]:
    """The cells of each ruled table, found as pdfplumber's `find_tables()` finds them (its
    default settings: the "lines" strategy, tolerances of 3 points)."""
    from pdfplumber.table import cells_to_tables, edges_to_intersections, intersections_to_cells, merge_edges
    from pdfplumber.utils import filter_edges

    edges = filter_edges(edges, "v", min_length=1) + filter_edges(edges, "h", min_length=1)
    edges = filter_edges(merge_edges(edges, 3, 3, 3, 3), min_length=3)
    return cells_to_tables(intersections_to_cells(edges_to_intersections(edges, 3, 3)))


def _page_lines(chars: list[dict], edges: list[dict]) -> list[str]:
    """Text lines and table rows of one page, in reading order (top to bottom)."""
    from pdfplumber.table import Table
    from pdfplumber.utils import extract_text
    from pdfplumber.utils.text import chars_to_textmap

    # A character belongs to the cell holding its centre (pdfplumber's `Table.extract`); the
    # characters, in page order, are looked up by the height of their centre.
    centres = sorted(((c["top"] + c["bottom"]) / 2, i) for i, c in enumerate(chars))
    heights = [h for h, _ in centres]
    grids = []
    for cells in _tables(edges):
        table = Table(None, cells)
        rows = []
        for row in table.rows:
            _, row_top, _, row_bottom = row.bbox
            near = sorted(i for _, i in centres[bisect.bisect_left(heights, row_top) : bisect.bisect_left(heights, row_bottom)])
            texts = []
            for cell in row.cells:
                if cell is None:
                    texts.append(None)
                    continue
                x0, top, x1, bottom = cell
                inside = [c for c in (chars[i] for i in near) if x0 <= (c["x0"] + c["x1"]) / 2 < x1 and top <= (c["top"] + c["bottom"]) / 2 < bottom]
                texts.append(extract_text(inside) if inside else "")
            rows.append(texts)
        if rows and max(sum(1 for c in row if c not in (None, "")) for row in rows) >= 2:
            grids.append((table.bbox, rows))
    placed: list[tuple[float, int, str]] = []

    def outside(obj) -> bool:
        cx = (obj["x0"] + obj["x1"]) / 2
        cy = (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= cx <= x1 and top <= cy <= bottom for (x0, top, x1, bottom), _ in grids)

    rest = [c for c in chars if outside(c)]
    if rest:
        for item in chars_to_textmap(rest).extract_text_lines():
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
