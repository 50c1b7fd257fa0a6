"""Which files to read, and how much of them.

Discovery stays inside the input folders (a link out of them, to /etc/passwd or /proc/self/environ,
is skipped and counted); only regular files are read (a FIFO would block, /dev/zero never ends); a
file's size is checked before it is read, and no more than its limit is ever read; a name that is
not UTF-8 (GBK names unzipped from a Windows archive) keeps its real path for reading and gets a
text that any output can hold.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

NOT_DOCUMENT_SUFFIXES = {
    ".csv", ".tsv", ".json", ".jsonl", ".xml", ".yaml", ".yml", ".xlsx", ".xls", ".zip", ".gz", ".tar",
    ".rar", ".7z", ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".ico", ".mp4", ".mp3",
    ".parquet", ".db", ".sqlite", ".exe", ".dll", ".so", ".pyc", ".css", ".js",
}
NOT_DOCUMENT = "非文档文件"
NOT_REGULAR = "管道、设备等非普通文件"
LEADS_OUTSIDE = "指向输入目录以外的链接"
BROKEN_LINK = "目标不存在的链接"
_FILE_TYPES = {
    stat.S_IFIFO: "命名管道", stat.S_IFCHR: "字符设备", stat.S_IFBLK: "块设备", stat.S_IFSOCK: "套接字", stat.S_IFDIR: "文件夹",
}


@dataclass(frozen=True)
class Limits:
    """What one input may cost. Text is decoded and parsed whole; PDF and DOCX carry images and
    fonts, so may be larger. A DOCX is a zip: its parts are bounded as they would be decompressed,
    and their number (opening a zip costs memory for every part)."""

    max_text_bytes: int = 8 * 1024 * 1024
    max_binary_bytes: int = 64 * 1024 * 1024
    max_unzipped_bytes: int = 128 * 1024 * 1024
    max_zip_parts: int = 10_000


class Skipped(NamedTuple):
    path: Path
    why: str  # one of NOT_DOCUMENT, NOT_REGULAR, LEADS_OUTSIDE, BROKEN_LINK


@dataclass(frozen=True)
class Discovery:
    documents: list[Path]
    skipped: list[Skipped]
    missing: list[str]


def discover(inputs: list[Path]) -> Discovery:
    """Files under `inputs` (recursively), split into documents to audit and files skipped (with
    why). A file named as an input is not checked for where it leads or what it is: it was asked
    for, and reading it says what is wrong."""
    documents, skipped, missing = [], [], []
    folders = tuple(root.resolve() for root in inputs if root.is_dir())
    for root in inputs:
        if not root.exists():
            missing.append(display_path(root))
            continue
        for path in _walk(root, folders) if root.is_dir() else [root]:
            why = _skip_reason(path, folders if root.is_dir() else ())
            if why:
                skipped.append(Skipped(path, why))
            else:
                documents.append(path)
    return Discovery(documents, skipped, missing)


def _walk(root: Path, folders: tuple[Path, ...]) -> list[Path]:
    """Every file under root, and every link to a folder outside the inputs. Linked folders are not
    entered: one inside the inputs has its files found where they are."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):  # followlinks=False
        found += [Path(folder, name) for name in files]
        linked = (Path(folder, name) for name in dirs)
        found += [link for link in linked if link.is_symlink() and _leaves(link, folders)]
    return sorted(found)


def _leaves(link: Path, folders: tuple[Path, ...]) -> bool:
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling, or a loop of links
        return True
    return not any(target.is_relative_to(folder) for folder in folders)


def _skip_reason(path: Path, folders: tuple[Path, ...]) -> str:
    if folders and path.is_symlink():
        if not path.exists():
            return BROKEN_LINK
        if _leaves(path, folders):
            return LEADS_OUTSIDE
    if folders and not path.is_file():  # follows links: False for FIFOs, sockets, devices
        return NOT_REGULAR
    if path.name.startswith((".", "__init__")) or path.name in {"INDEX.md", "README.md", "links.tsv"}:
        return NOT_DOCUMENT
    if path.suffix.lower() in NOT_DOCUMENT_SUFFIXES:
        return NOT_DOCUMENT
    return ""


def display_path(path: Path | str) -> str:
    """The path as text any output can hold (Polars, CSV, HTML, a terminal). Python hands over a name
    that is not UTF-8 with lone surrogates, which no UTF-8 writer accepts; such a name is written
    with its non-ASCII bytes as \\xNN escapes (all of them: some GBK byte pairs happen to be UTF-8,
    and half-decoded names mislead). The path itself is kept for reading."""
    return "/".join(_display_name(name) for name in os.fsencode(path).split(b"/"))


def _display_name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("ascii", errors="backslashreplace")


def read_bounded(path: Path, limits: Limits) -> tuple[bytes, str]:
    """The bytes of a regular file, or a problem and no bytes. The size is checked (stat) before any
    byte is read, and at most limit + 1 bytes are read: a file that grows while it is read, or one
    of /proc that says it is empty, stays bounded."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # before opening: opening a device may act on it
            return b"", _not_regular(info)
        # O_NONBLOCK: a FIFO put in place after the stat would otherwise wait here for a writer.
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return b"", _not_regular(info)
            head = handle.read(8)
            limit = size_limit(head, limits)
            if info.st_size > limit:
                return b"", too_large(info.st_size, limit)
            return head + handle.read(limit + 1 - len(head)), ""
    except OSError as exc:
        return b"", f"无法读取文件: {exc.strerror or exc}"


def size_limit(head: bytes, limits: Limits) -> int:
    """PDF and zip (DOCX) files may be larger than text; their first bytes say which they are."""
    return limits.max_binary_bytes if head.startswith((b"%PDF", b"PK\x03\x04")) else limits.max_text_bytes


def too_large(size: int, limit: int) -> str:
    return f"文件过大（{mb(size)} MB，上限 {mb(limit, 0)} MB），未解析"


def mb(size: int, decimals: int = 1) -> str:
    """Bytes in MB of 2**20 bytes, as the limits are set."""
    return f"{size / 2**20:.{decimals}f}"


def _not_regular(info: os.stat_result) -> str:
    return f"不是普通文件（{_FILE_TYPES.get(stat.S_IFMT(info.st_mode), '特殊文件')}），未读取"
