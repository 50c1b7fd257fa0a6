"""PDF pages with no text layer: render them, read them by OCR, and rebuild lines and table rows.

The OCR engine (rapidocr, whose PP-OCR models ship inside its wheel, on onnxruntime) returns text
boxes in no useful order. The reading order is rebuilt from the page's geometry:

1. Skew: the median slope of the long boxes. The page and the boxes are turned level together,
   so that rulings are exactly horizontal and vertical and printed rows share one height.
2. Ruled tables: horizontal rulings (ink runs longer than any printed character) cut a table into
   bands, one printed row each; inside a band, vertical rulings (pixel columns inked over the
   band's whole height) cut it into cells. A cell keeps its place even when it is empty, and the
   lines of a wrapped label stay in their cell.
3. Everything else is grouped into visual rows by height. A row whose pieces stand far apart is a
   table row printed without rulings; any other row is a line of prose.

Table rows are written with `pipe_row`, like the rows pdfplumber finds in text-layer PDFs, so that
the same table reader reads both.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass

import numpy as np

from audits.ingest.rows import pipe_row

DPI = 200  # PP-OCR reads 9–16 pt print reliably at 150–200 dpi; more only costs time
MAX_SIDE = 2000  # rapidocr shrinks larger images to this (Global.max_side_len): render no larger (A4: 171 dpi)
PAPER = 200  # no pixel darker than this grey: nothing on the page to read
INSTALL = "pip install 'rapidocr==3.10.0' onnxruntime"


class OcrUnavailable(RuntimeError):
    """The OCR engine cannot be loaded; the message says why, in Chinese."""


@dataclass
class Box:
    """One text box, level (after deskewing), in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def h(self) -> float:
        return self.y1 - self.y0


@functools.cache
def engine():
    """The OCR engine, loaded once per process (its models come from the installed wheel)."""
    try:
        from rapidocr import RapidOCR

        # NOTE: the orientation classifier is off: scanned pages are upright, and turning single
        # boxes by 180° can only do harm to numbers (a 6 turned is a 9).
        return RapidOCR(params={"Global.log_level": "error", "Global.use_cls": False})
    except Exception as exc:  # noqa: BLE001 - a missing or broken engine is reported, never raised
        raise OcrUnavailable(f"OCR 引擎无法加载（{type(exc).__name__}: {exc}），请安装：{INSTALL}") from exc


def read_pages(data: bytes, pages: list[int], dpi: int = DPI) -> dict[int, list[str]]:
    """The lines of each given page (0-based) of a PDF, read by OCR."""
    ocr = engine()
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        return {n: page_lines(render(pdf[n], dpi), ocr) for n in pages}
    finally:
        pdf.close()


def render(page, dpi: int = DPI) -> np.ndarray:
    """A page as a grayscale image (uint8, white paper), at `dpi` or as large as OCR will read it."""
    scale = min(dpi / 72, MAX_SIDE / max(page.get_size()))
    return page.render(scale=scale, grayscale=True).to_numpy()


def page_lines(gray: np.ndarray, ocr) -> list[str]:
    """Text lines and `| a | b |` table rows of one page image, top to bottom."""
    import cv2

    if gray.min() >= PAPER:
        return []  # a blank page (a damaged PDF renders all white): seconds of OCR to find nothing
    result = ocr(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    if not result.txts:
        return []
    quads = [np.asarray(q, dtype=np.float64) for q in result.boxes]
    gray, quads = _level(gray, quads)
    boxes = [Box(q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max(), t.strip()) for q, t in zip(quads, result.txts)]
    unit = float(np.median([b.h for b in boxes]))  # the usual height of a line of text
    ink = _ink(gray)
    hor = _horizontal_rulings(ink)
    placed: list[tuple[float, str]] = []
    for x0, y0, x1, y1 in _tables(ink, hor, unit):
        inside = [_as_value(b, ink) for b in boxes if x0 <= b.cx <= x1 and y0 <= b.cy <= y1]
        boxes = [b for b in boxes if not (x0 <= b.cx <= x1 and y0 <= b.cy <= y1)]
        bands = _bands(hor[y0:y1, x0:x1])
        if not bands:
            continue
        bottoms = [y0 + bottom for _, bottom in bands]
        rows: list[list[Box]] = [[] for _ in bands]
        for b in inside:
            # NOTE: a label centred in cells merged across rows may sit right on a ruling that
            # only the other columns have; it goes to the row below (the table reader wants a
            # label before its values, not after).
            rows[min(bisect.bisect_right(bottoms, b.cy), len(bands) - 1)].append(_shift(b, x0))
        for (top, bottom), here in zip(bands, rows):
            if here:
                placed.append((y0 + top, pipe_row(_band_cells(ink[y0 + top : y0 + bottom, x0:x1], here, unit))))
    for row in _visual_rows(boxes):
        placed.append((min(b.y0 for b in row), _row_text(row)))
    placed.sort(key=lambda p: p[0])
    return [text for _, text in placed if text.strip()]


# Skew ------------------------------------------------------------------------------------------


def _level(gray: np.ndarray, quads: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Turn the page and its boxes level, by the median slope of the long (horizontal) boxes."""
    import cv2

    slopes = []
    for q in quads:
        top, bottom = q[1] - q[0], q[2] - q[3]
        width, height = np.hypot(*top), np.hypot(*(q[3] - q[0]))
        if width > 4 * height:  # a long line of text has a well-defined slope; a digit has none
            slopes.append((math.atan2(top[1], top[0]) + math.atan2(bottom[1], bottom[0])) / 2)
    if len(slopes) < 3:
        return gray, quads
    angle = math.degrees(float(np.median(slopes)))
    if abs(angle) < 0.05:  # under a pixel over a row of a table: not worth a resampling
        return gray, quads
    h, w = gray.shape
    # NOTE: OpenCV's positive angle turns counter-clockwise on screen (y down), which lifts the
    # right end of a line that slopes down to the right, i.e. one whose measured angle is positive.
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    level = cv2.warpAffine(gray, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    return level, [q @ m[:, :2].T + m[:, 2] for q in quads]


# Ruled tables ----------------------------------------------------------------------------------


def _ink(gray: np.ndarray) -> np.ndarray:
    """Dark pixels as 1 (Otsu's threshold: light shading behind a header row is paper, not ink)."""
    import cv2

    _, ink = cv2.threshold(gray, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return ink


def _horizontal_rulings(ink: np.ndarray) -> np.ndarray:
    """Horizontal ink runs longer than any character or dash a report prints (1/15 of the page)."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (ink.shape[1] // 15, 1))
    return cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel)


def _tables(ink: np.ndarray, hor: np.ndarray, unit: float) -> list[tuple[int, int, int, int]]:
    """Bounding boxes of ruled tables: long horizontal rulings joined by vertical ones."""
    import cv2

    w = ink.shape[1]
    # Vertical rulings only need to be told from the strokes of characters, which are shorter
    # than two lines of text; `_band_cells` finds the short ones, row by row.
    ver = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, int(2 * unit))))
    grid = cv2.dilate(hor | ver, np.ones((5, 5), np.uint8))  # bridge rulings broken by blur or noise
    n, _, stats, _ = cv2.connectedComponentsWithStats(grid)
    tables = []
    for x, y, bw, bh, _ in stats[1:n]:
        if bw > w / 4 and bh > 1.5 * unit and hor[y : y + bh, x : x + bw].any() and ver[y : y + bh, x : x + bw].any():
            tables.append((int(x), int(y), int(x + bw), int(y + bh)))
    return tables


def _bands(hor: np.ndarray) -> list[tuple[int, int]]:
    """The printed rows of a table (its own horizontal rulings given): the spans between them."""
    runs: list[list[int]] = []  # first and last pixel row of each ruling
    for y in np.flatnonzero(hor.any(axis=1)):
        if runs and y <= runs[-1][1] + 1:
            runs[-1][1] = y
        else:
            runs.append([y, y])
    # NOTE: a table cut by the page break has no ruling at that end: the table's edge stands in.
    starts = [0] + [last + 1 for _, last in runs]
    ends = [first for first, _ in runs] + [hor.shape[0]]
    return [(int(a), int(b)) for a, b in zip(starts, ends) if b - a > 2]


def _band_cells(band: np.ndarray, boxes: list[Box], unit: float) -> list[str]:
    """The cells of one printed row: cut at pixel columns inked over the row's whole height."""
    inked = band.mean(axis=0)
    inked = np.maximum(inked, np.maximum(np.roll(inked, 1), np.roll(inked, -1)))  # a ruling a pixel off
    # NOTE: a ruling never runs through text, so a column inside a box (a tall "1" in a low row)
    # is a stroke, not a ruling; boxes are padded, hence the margin of a third of their height.
    inside = np.zeros(band.shape[1], bool)
    for b in boxes:
        inside[int(b.x0 + b.h / 3) : max(int(b.x1 - b.h / 3), 0)] = True
    cuts = [0]
    for x in np.flatnonzero((inked > 0.85) & ~inside):
        if x - cuts[-1] > unit / 2:  # a double border or a thick ruling is one cut
            cuts.append(int(x))
        else:
            cuts[-1] = int(x)
    if band.shape[1] - cuts[-1] > unit / 2:
        cuts.append(band.shape[1])
    cells = [[b for b in boxes if left <= b.cx < right] for left, right in zip(cuts, cuts[1:])]
    return [_cell_text(c) for c in cells]


_LOOKALIKES = str.maketrans("Oo〇lI|", "000111")
_ONE_STROKE = {"一", "丨", "|", "l", "I", "—", "-"}


def _as_value(b: Box, ink: np.ndarray) -> Box:
    """A table cell's number as printed, where the recogniser took a digit for a letter or a stroke.

    A lone 1 in a small table font is often read as 一, and a dash (a blank cell) is too: the
    shape of the ink tells them apart, tall for the digit, flat for the dash (which the table
    reader takes as blank). Letters that look like digits (O, l) among digits are digits.
    """
    text = b.text
    if text in _ONE_STROKE:
        import cv2

        glyph = ink[int(b.y0) : int(b.y1) + 1, int(b.x0) : int(b.x1) + 1]
        n, _, stats, _ = cv2.connectedComponentsWithStats(glyph)
        # NOTE: boxes are padded; a ruling that reaches into one touches its edge, a glyph does not.
        gh, gw = glyph.shape
        parts = [s for s in stats[1:n] if s[0] > 0 and s[1] > 0 and s[0] + s[2] < gw and s[1] + s[3] < gh]
        if parts:
            x0, y0 = min(s[0] for s in parts), min(s[1] for s in parts)
            x1, y1 = max(s[0] + s[2] for s in parts), max(s[1] + s[3] for s in parts)
            text = "1" if y1 - y0 > 1.5 * (x1 - x0) else "—" if x1 - x0 > 1.5 * (y1 - y0) else text
    elif any(c.isdigit() for c in text) and all(c.isdigit() or c in ".,Oo〇lI|" for c in text):
        text = text.translate(_LOOKALIKES)
    return Box(b.x0, b.y0, b.x1, b.y1, text)


def _shift(b: Box, dx: float) -> Box:
    return Box(b.x0 - dx, b.y0, b.x1 - dx, b.y1, b.text)


def _cell_text(boxes: list[Box]) -> str:
    """The lines of one cell, top to bottom, joined as one wrapped label (numbers kept apart)."""
    text = ""
    for row in _visual_rows(boxes):
        line = _join(row)
        text += " " + line if text[-1:].isdigit() and line[:1].isdigit() else line
    return text


# Prose and rows without rulings ----------------------------------------------------------------


def _visual_rows(boxes: list[Box]) -> list[list[Box]]:
    """Boxes grouped into printed lines: a box joins the line whose middle it shares."""
    rows: list[list[Box]] = []
    for b in sorted(boxes, key=lambda b: b.cy):
        row = rows[-1] if rows else None
        if row and abs(b.cy - np.mean([r.cy for r in row])) < min(b.h, min(r.h for r in row)) / 2:
            row.append(b)
        else:
            rows.append([b])
    return [sorted(row, key=lambda b: b.x0) for row in rows]


def _join(row: list[Box]) -> str:
    """One printed line: pieces closer than half a character are one word."""
    text = row[0].text
    for prev, b in zip(row, row[1:]):
        text += ("" if b.x0 - prev.x1 < b.h / 2 else " ") + b.text
    return text


def _row_text(row: list[Box]) -> str:
    """A line outside ruled tables: a table row when three or more pieces stand two lines apart."""
    unit = float(np.median([b.h for b in row]))
    pieces = [[row[0]]]
    for prev, b in zip(row, row[1:]):
        if b.x0 - prev.x1 > 2 * unit:
            pieces.append([b])
        else:
            pieces[-1].append(b)
    if len(pieces) >= 3:
        return pipe_row([_join(p) for p in pieces])
    return _join(row)
