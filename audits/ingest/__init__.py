"""Find input files, recognise their format by content, and read them into text lines.

Every format comes out the same way: narrative as lines, tables as `| a | b |` rows (one per table
row, merged cells written once), so that one parser reads them all. Reading never raises: a file
that cannot be read comes back with `problems` and no lines.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from audits.ingest.docx import read_docx
from audits.ingest.encoding import decode, utf16_order
from audits.ingest.files import Discovery, Limits, Skipped, discover, display_path, mb, read_bounded, size_limit, too_large
from audits.ingest.html import read_html
from audits.ingest.pdf import read_pdf
from audits.model import SourceText

__all__ = [
    "Discovery", "Limits", "Skipped", "decode", "discover", "display_path", "read_bytes", "read_document", "sniff",
]

_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")
_HTML_SNIFF = re.compile(r"<\s*(html|body|table|p|div|meta|head|!doctype)\b", re.I)
# Bytes that text in any encoding we read never holds: C0 controls other than \t \n \v \f \r and ESC.
# Random or compressed bytes hold them at about one byte in ten, NULs or not.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def read_document(path: Path, limits: Limits = Limits(), declared: str | None = None) -> tuple[SourceText, bytes]:
    """Read one file; returns the text and the raw bytes (for the content hash). `declared` is the
    charset a server sent with the file (HTTP Content-Type), if it was fetched. The text's `source` is
    the path as display-safe text (see `display_path`)."""
    source = display_path(path)
    data, problem = read_bounded(path, limits)
    if problem:
        return _failed(source, problem), b""
    return read_bytes(source, data, limits, declared), data


def read_bytes(source: str, data: bytes, limits: Limits = Limits(), declared: str | None = None) -> SourceText:
    text = _read_bytes(source, data, limits, declared)
    if not text.problems and not any(line.replace("\ufeff", "").strip() for line in text.lines):
        # A BOM alone, a page of scripts, an empty <body>: nothing to read, and the finding must say so.
        return _failed(source, "文件没有可读的文字内容", text.format)
    return text


def _read_bytes(source: str, data: bytes, limits: Limits, declared: str | None) -> SourceText:
    if not data.strip():
        return _failed(source, "文件为空")
    limit = size_limit(data, limits)
    if len(data) > limit:
        return _failed(source, too_large(len(data), limit), sniff(data[:4096]))
    kind = ""
    try:
        zip_problem = _zip_problem(data, limits) if data.startswith(b"PK\x03\x04") else ""
        if zip_problem:
            return _failed(source, zip_problem, "docx" if b"word/document.xml" in data else "archive")
        kind = sniff(data)
        if kind == "pdf":
            return read_pdf(source, data)
        if kind == "docx":
            return read_docx(source, data)
        if kind in ("binary", "archive", "image"):
            return _failed(source, "不是可识别的文档（二进制内容）", kind)
        text, encoding, problems = decode(data, declared)
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
    if len(_CONTROL_BYTES.findall(sample)) > len(sample) // 20:
        # UTF-16 holds such bytes too (NULs beside ASCII, CJK characters' low bytes).
        if not (sample.startswith((b"\xff\xfe", b"\xfe\xff")) or utf16_order(data)):
            return "binary"
    if re.search(rb"<\s*(html|body|table|!doctype)\b", sample, re.I):
        return "html"
    return "text"


def _zip_problem(data: bytes, limits: Limits) -> str:
    """What makes a zip (a DOCX) too costly to open, checked before anything is decompressed: the
    number of its parts (opening the zip alone costs memory for each), and the sizes they declare
    (zipfile returns no more of a part than that; `docx._restored` keeps it from inflating more)."""
    parts = data.count(b"PK\x01\x02")  # one central-directory record per part
    if parts > limits.max_zip_parts:
        return f"压缩文件内的文件过多（{parts} 个，上限 {limits.max_zip_parts} 个），未解析"
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile:
        return ""  # not a zip after all: sniffing says what it is
    total = sum(info.file_size for info in infos)
    if total > limits.max_unzipped_bytes:
        biggest = max(infos, key=lambda info: info.file_size)
        return (
            f"压缩文件解压后过大（共 {mb(total)} MB，其中 {biggest.filename} {mb(biggest.file_size)} MB；"
            f"上限 {mb(limits.max_unzipped_bytes, 0)} MB），未解压"
        )
    return ""


def _failed(source: str, problem: str, fmt: str = "") -> SourceText:
    return SourceText(source, fmt, "", [], problems=(problem,))
