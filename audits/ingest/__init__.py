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

from audits.ingest.docx import read_docx
from audits.ingest.html import read_html
from audits.ingest.pdf import read_pdf
from audits.model import SourceText

DOCUMENT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm", ".shtml", ".xhtml", ".pdf", ".docx", ""}
NOT_DOCUMENT_SUFFIXES = {
    ".csv", ".tsv", ".json", ".jsonl", ".xml", ".yaml", ".yml", ".xlsx", ".xls", ".zip", ".gz", ".tar",
    ".rar", ".7z", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".ico", ".mp4", ".mp3",
    ".parquet", ".db", ".sqlite", ".exe", ".dll", ".so", ".pyc", ".css", ".js",
    # source code and configuration: a folder of a program's source holds no report
    ".py", ".pyi", ".ipynb", ".c", ".h", ".cc", ".cpp", ".hpp", ".java", ".kt", ".go", ".rs", ".rb",
    ".php", ".ts", ".tsx", ".jsx", ".vue", ".sh", ".bat", ".ps1", ".toml", ".ini", ".cfg", ".lock", ".sql",
}
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
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
