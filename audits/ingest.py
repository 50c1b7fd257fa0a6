"""Find input files, recognise their format by content, and read them into text lines.

Every format comes out the same way: narrative as lines, tables as `| a | b |` rows (one per table
row, merged cells written once), so that one parser reads them all. Reading never raises: a file
that cannot be read comes back with `problems` and no lines.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from audits.model import SourceText

DOCUMENT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".shtml", ".xhtml", ".pdf", ".docx", ""}
NOT_DOCUMENT_SUFFIXES = {
    ".csv", ".tsv", ".json", ".jsonl", ".xml", ".yaml", ".yml", ".xlsx", ".xls", ".zip", ".gz", ".tar",
    ".rar", ".7z", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".ico", ".mp4", ".mp3",
    ".parquet", ".db", ".sqlite", ".exe", ".dll", ".so", ".pyc", ".css", ".js",
}
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_HTML_SNIFF = re.compile(r"<\s*(html|body|table|p|div|meta|head|!doctype)\b", re.I)
# Bytes that text in any encoding we read never holds: C0 controls other than \t \n \v \f \r and ESC.
# Random or compressed bytes hold them at about one byte in ten, NULs or not.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_WRAPPED = re.compile(r"\s*\n\s*")
_NUMBERS_ONLY = re.compile(r"[\d.,\s\-—/]+")


@dataclass(frozen=True)
class Limits:
    max_text_bytes: int = 8 * 1024 * 1024
    max_binary_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class Discovery:
    documents: list[Path]
    skipped: list[Path]
    missing: list[str]


def discover(inputs: list[Path]) -> Discovery:
    """Files under `inputs` (recursively), split into documents to audit and files skipped."""
    documents, skipped, missing = [], [], []
    for root in inputs:
        if not root.exists():
            missing.append(str(root))
            continue
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in paths:
            if path.name.startswith((".", "__init__")) or path.name in {"INDEX.md", "README.md", "links.tsv"}:
                skipped.append(path)
            elif path.suffix.lower() in NOT_DOCUMENT_SUFFIXES:
                skipped.append(path)
            else:
                documents.append(path)
    return Discovery(documents, skipped, missing)


def read_document(path: Path, limits: Limits = Limits()) -> tuple[SourceText, bytes]:
    """Read one file; returns the text and the raw bytes (for the content hash)."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _failed(source, f"无法读取文件: {exc.strerror or exc}"), b""
    return read_bytes(source, data, limits), data


def read_bytes(source: str, data: bytes, limits: Limits = Limits()) -> SourceText:
    text = _read_bytes(source, data, limits)
    if not text.problems and not any(line.replace("\ufeff", "").strip() for line in text.lines):
        # A BOM alone, a page of scripts, an empty <body>: nothing to read, and the finding must say so.
        return _failed(source, "文件没有可读的文字内容", text.format)
    return text


def _read_bytes(source: str, data: bytes, limits: Limits) -> SourceText:
    if not data.strip():
        return _failed(source, "文件为空")
    kind = sniff(data)
    limit = limits.max_binary_bytes if kind in ("pdf", "docx") else limits.max_text_bytes
    if len(data) > limit:
        return _failed(source, f"文件过大（{len(data) / 1e6:.1f} MB，上限 {limit / 1e6:.0f} MB），未解析", kind)
    try:
        if kind == "pdf":
            return read_pdf(source, data)
        if kind == "docx":
            return read_docx(source, data)
        if kind in ("binary", "archive", "image"):
            return _failed(source, "不是可识别的文档（二进制内容）", kind)
        text, encoding, problems = decode(data)
        if kind == "html" or _HTML_SNIFF.search(text[:4096]):
            return read_html(source, text, encoding, problems)
        return SourceText(source, "text", encoding, text.splitlines(), problems=problems)
    except Exception as exc:  # noqa: BLE001 - a broken file must never take the batch down
        return _failed(source, f"读取失败（{type(exc).__name__}: {exc}）", kind)


def sniff(data: bytes) -> str:
    head = data[:8]
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            return "binary"
        return "docx" if "word/document.xml" in names else "archive"
    if head.startswith(_IMAGE_MAGIC):
        return "image"
    sample = data[:4096]
    if len(_CONTROL_BYTES.findall(sample)) > len(sample) // 20 and not sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary"
    if re.search(rb"<\s*(html|body|table|!doctype)\b", sample, re.I):
        return "html"
    return "text"


def decode(data: bytes) -> tuple[str, str, tuple[str, ...]]:
    """Bytes → text: BOM, then a declared <meta charset>, then UTF-8, then charset-normalizer."""
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            return data.decode(enc, errors="replace"), enc, ()
    problems: list[str] = []
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        enc = _canonical(declared.group(1).decode("ascii", "ignore"))
        try:
            return data.decode(enc), enc, ()
        except (LookupError, UnicodeDecodeError):
            problems.append(f"网页声明的编码 {enc} 与内容不符，已自动识别编码")
    try:
        return data.decode("utf-8"), "utf-8", tuple(problems)
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030", tuple(problems)
    except UnicodeDecodeError:
        pass
    best = from_bytes(data).best()
    if best is not None:
        return str(best), best.encoding, tuple(problems)
    problems.append("无法识别文字编码，按 UTF-8 读取，部分字符可能丢失")
    return data.decode("utf-8", errors="replace"), "utf-8", tuple(problems)


def _canonical(enc: str) -> str:
    enc = enc.lower()
    # GB2312 and GBK pages routinely use characters only GB18030 has: read them as GB18030.
    return "gb18030" if enc in ("gb2312", "gbk", "gb_2312-80", "x-gbk") else enc


def _failed(source: str, problem: str, fmt: str = "") -> SourceText:
    return SourceText(source, fmt, "", [], problems=(problem,))


# HTML ---------------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "tr",
    "table", "ul", "ol", "header", "footer", "title", "center", "blockquote", "pre", "dd", "dt",
}
_DROP_TAGS = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head"}


def read_html(source: str, text: str, encoding: str, problems: tuple[str, ...] = ()) -> SourceText:
    import lxml.html

    try:
        root = lxml.html.document_fromstring(text)
    except Exception:  # noqa: BLE001 - lxml raises several types on junk
        return SourceText(source, "html", encoding, [], problems=problems + ("网页无法解析",))
    lines: list[str] = []
    title = root.findtext(".//title") or ""
    if title.strip():
        lines.append(title.strip())
    buffer: list[str] = []
    _walk_html(root, lines, buffer)
    _flush(buffer, lines)
    return SourceText(source, "html", encoding, lines, problems=problems)


def _flush(buffer: list[str], lines: list[str]) -> None:
    text = "".join(buffer).strip()
    if text:
        lines.extend(part.strip() for part in text.split("\n") if part.strip())
    buffer.clear()


def _walk_html(node, lines: list[str], buffer: list[str]) -> None:
    tag = node.tag if isinstance(node.tag, str) else ""
    if tag in _DROP_TAGS:
        _append_tail(node, buffer)
        return
    if tag == "table":
        _flush(buffer, lines)
        lines.extend(_html_table_rows(node))
        _append_tail(node, buffer)
        return
    if tag in _BLOCK_TAGS:
        _flush(buffer, lines)
    if node.text and tag:
        buffer.append(node.text)
    for child in node:
        _walk_html(child, lines, buffer)
    if tag in _BLOCK_TAGS:
        _flush(buffer, lines)
    _append_tail(node, buffer)


def _append_tail(node, buffer: list[str]) -> None:
    if node.tail:
        buffer.append(node.tail)


def _html_table_rows(table) -> list[str]:
    rows = []
    for tr in table.iter("tr"):
        cells = [td.text_content() for td in tr if isinstance(td.tag, str) and td.tag in ("td", "th")]
        if cells:
            rows.append(_pipe_row(cells))
    return rows


def _cell_text(text: str | None) -> str:
    # Wrapped labels inside one cell are one label: join their lines without a space.
    return _WRAPPED.sub("", (text or "")).replace("|", "｜").strip()


def _pipe_row(cells: list[str | None]) -> str:
    """A table row as `| a | b |`; a row with one filled cell is a title line, written plainly."""
    texts = [_cell_text(c) for c in cells]
    filled = [t for t in texts if t]
    if len(filled) == 1 and not _NUMBERS_ONLY.fullmatch(filled[0]):
        return filled[0]
    return "| " + " | ".join(texts) + " |"


# PDF ----------------------------------------------------------------------------------------


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
            placed.append((top + i * 1e-3, 1, _pipe_row(row)))
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


# DOCX ---------------------------------------------------------------------------------------


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
                lines.append(_pipe_row(_docx_row_cells(row)))
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
