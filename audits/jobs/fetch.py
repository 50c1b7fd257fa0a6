"""Fetch reports over http(s) for scheduled jobs; archive the raw bytes by content hash.

Timeouts, retries with exponential backoff (timeouts, broken connections, 5xx), a size limit,
conditional requests (ETag / Last-Modified, remembered per URL). Fetching never raises: a source
that is down or answers garbage comes back as a `Fetched` with `problem` set, which becomes a
finding for that agency, not a failed job.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from audits.jobs.config import FetchSettings
from audits.outputs import write_text

_SUFFIX = {"text/html": ".html", "application/pdf": ".pdf", "text/plain": ".txt",
           "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
           "application/msword": ".doc", "application/wps-office.wps": ".wps"}


@dataclass(frozen=True)
class Fetched:
    url: str
    path: Path | None  # the archived file, None when the fetch failed
    sha256: str = ""
    status: int = 0
    not_modified: bool = False
    problem: str = ""


class Archive:
    """Raw bytes by content hash, plus what each URL answered last time (for conditional requests)."""

    def __init__(self, root: Path):
        self.root = root
        self.index_path = root / "urls.json"
        self.index: dict[str, dict] = json.loads(self.index_path.read_text(encoding="utf-8")) if self.index_path.is_file() else {}

    def put(self, data: bytes, content_type: str) -> tuple[Path, str]:
        digest = hashlib.sha256(data).hexdigest()
        suffix = _SUFFIX.get(content_type.split(";")[0].strip().lower(), ".bin")
        path = self.root / digest[:2] / f"{digest}{suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path, digest

    def remember(self, url: str, **fields) -> None:
        self.index[url] = fields
        write_text(self.index_path, json.dumps(self.index, ensure_ascii=False, indent=1))


def fetch_all(urls: list[str], archive: Archive, settings: FetchSettings) -> dict[str, Fetched]:
    headers = {"User-Agent": settings.user_agent}
    timeout = httpx.Timeout(settings.timeout_seconds)
    with httpx.Client(headers=headers, timeout=timeout, follow_redirects=True, max_redirects=5) as client:
        return {url: fetch_one(client, url, archive, settings) for url in urls}


def fetch_one(client: httpx.Client, url: str, archive: Archive, settings: FetchSettings) -> Fetched:
    if not url.lower().startswith(("http://", "https://")):
        return Fetched(url, None, problem=f"不支持的地址: {url}")
    known = archive.index.get(url, {})
    conditional = {}
    if known.get("etag"):
        conditional["If-None-Match"] = known["etag"]
    if known.get("last_modified"):
        conditional["If-Modified-Since"] = known["last_modified"]
    problem = ""
    for attempt in range(settings.retries + 1):
        if attempt:
            time.sleep(settings.backoff_seconds * 2 ** (attempt - 1))
        try:
            return _request(client, url, conditional, known, archive, settings)
        except _Permanent as exc:
            return Fetched(url, None, status=exc.status, problem=str(exc))
        except (httpx.TimeoutException, httpx.TransportError, _Transient) as exc:
            problem = _describe(exc)
    return Fetched(url, None, problem=f"{problem}（重试 {settings.retries} 次后放弃）")


class _Permanent(Exception):
    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    pass


def _request(client, url, conditional, known, archive: Archive, settings: FetchSettings) -> Fetched:
    with client.stream("GET", url, headers=conditional) as response:
        if response.status_code == 304 and known.get("sha256"):
            path = Path(known["path"])
            if path.is_file():
                return Fetched(url, path, known["sha256"], 304, not_modified=True)
        if response.status_code >= 500:
            raise _Transient(f"服务器错误 HTTP {response.status_code}")
        if response.status_code >= 400:
            raise _Permanent(f"无法获取：HTTP {response.status_code}", response.status_code)
        declared = int(response.headers.get("content-length") or 0)
        if declared > settings.max_bytes:
            raise _Permanent(f"文件过大（{declared} 字节，上限 {settings.max_bytes}）", response.status_code)
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > settings.max_bytes:
                raise _Permanent(f"文件过大（超过 {settings.max_bytes} 字节）", response.status_code)
            chunks.append(chunk)
        data = b"".join(chunks)
    if not data.strip():
        raise _Permanent("服务器返回了空内容", response.status_code)
    path, digest = archive.put(data, response.headers.get("content-type", ""))
    archive.remember(url, etag=response.headers.get("etag", ""), last_modified=response.headers.get("last-modified", ""), sha256=digest, path=str(path))
    return Fetched(url, path, digest, response.status_code)


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "连接超时"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "响应不完整（连接被提前关闭）"
    if isinstance(exc, httpx.ConnectError):
        return "无法连接服务器"
    return str(exc) or type(exc).__name__
