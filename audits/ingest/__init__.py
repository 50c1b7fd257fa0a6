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

from audits.ingest.docx import read_docx
from audits.ingest.encoding import decode, utf16_order
from audits.ingest.html import read_html
from audits.ingest.pdf import read_pdf
from audits.model import SourceText

DOCUMENT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".shtml", ".xhtml", ".pdf", ".docx", ""}
NOT_DOCUMENT_SUFFIXES = {
    ".csv", ".tsv", ".json", ".jsonl", ".xml", ".yaml", ".yml", ".xlsx", ".xls", ".zip", ".gz", ".tar",
    ".rar", ".7z", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".ico", ".mp4", ".mp3",
    ".parquet", ".db", ".sqlite", ".exe", ".dll", ".so", ".pyc", ".css", ".js",
}
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")
_HTML_SNIFF = re.compile(r"<\s*(html|body|table|p|div|meta|head|!doctype)\b", re.I)
# Bytes that text in any encoding we read never holds: C0 controls other than \t \n \v \f \r and ESC.
# Random or compressed bytes hold them at about one byte in ten, NULs or not.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


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


def read_document(path: Path, limits: Limits = Limits(), declared: str | None = None) -> tuple[SourceText, bytes]:
    """Read one file; returns the text and the raw bytes (for the content hash). `declared` is the
    charset a server sent with the file (HTTP Content-Type), if it was fetched."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _failed(source, f"无法读取文件: {exc.strerror or exc}"), b""
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
    utf16 = sample.startswith((b"\xff\xfe", b"\xfe\xff")) or utf16_order(data)
    if len(_CONTROL_BYTES.findall(sample)) > len(sample) // 20 and not utf16:
        return "binary"
    if re.search(rb"<\s*(html|body|table|!doctype)\b", sample, re.I):
        return "html"
    return "text"


def _failed(source: str, problem: str, fmt: str = "") -> SourceText:
    return SourceText(source, fmt, "", [], problems=(problem,))
