"""Fetch reports over http(s) for scheduled jobs; archive the raw bytes by content hash.

Several URLs at once (`connections`, at most `connections_per_host` on one server), so that a
server that times out costs the others nothing. Timeouts, retries with exponential backoff
(timeouts, broken connections, 5xx), a size limit, an overall deadline per URL, conditional
requests (ETag / Last-Modified, remembered per URL with the charset the server declared). Fetching never raises: a source that is down or answers garbage
comes back as a `Fetched` with `problem` set, which becomes a finding for that agency, not a
failed job.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from audits.jobs.config import FetchSettings
from audits.outputs import atomic_write, write_text

MAX_REDIRECTS = 5
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
    charset: str = ""  # the charset of the HTTP Content-Type, "" when none was declared


class Archive:
    """Raw bytes by content hash, plus what each URL answered last time (for conditional requests
    and for the charset its Content-Type declared). Fetching threads share it; the index is written
    by `save`, not at every URL (rewriting it per URL grew with the square of a job's URLs)."""

    def __init__(self, root: Path):
        self.root = root
        self.index_path = root / "urls.json"
        self._lock = threading.Lock()
        self._unsaved = 0
        try:
            self.index: dict[str, dict] = json.loads(self.index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.index = {}  # no index yet, or an unreadable one: every URL is fetched in full

    def put(self, data: bytes, content_type: str) -> tuple[Path, str]:
        digest = hashlib.sha256(data).hexdigest()
        suffix = _SUFFIX.get(content_type.split(";")[0].strip().lower(), ".bin")
        path = self.root / digest[:2] / f"{digest}{suffix}"
        if not path.exists():  # two threads with the same bytes each write a file of their own
            atomic_write(path, lambda tmp: tmp.write_bytes(data))
        return path, digest

    def remember(self, url: str, **fields) -> None:
        with self._lock:
            self.index[url] = fields
            self._unsaved += 1

    def save(self) -> None:
        """Write the index if it changed. A run killed before this only loses the conditional
        requests of the URLs it fetched: they are downloaded in full next time."""
        with self._lock:
            if self._unsaved:
                write_text(self.index_path, json.dumps(self.index, ensure_ascii=False, indent=1))
                self._unsaved = 0

    def copy_of(self, url: str) -> dict:
        """What the index remembers of `url`, if the file it points to is still archived."""
        with self._lock:
            known = self.index.get(url, {})
        return known if known.get("sha256") and Path(known.get("path", "")).is_file() else {}


SAVE_EVERY = 200  # URLs fetched between two writes of the archive's index


def fetch_all(urls: list[str], archive: Archive, settings: FetchSettings, on_fetched=None) -> dict[str, Fetched]:
    """Every URL, `settings.connections` at a time and at most `settings.connections_per_host` on
    one server; the answers in the order of `urls`. `on_fetched(1)` after each."""
    headers = {"User-Agent": settings.user_agent}
    timeout = httpx.Timeout(settings.timeout_seconds)
    # No kept-alive connections: each request opens its own, whose socket the deadline can cut.
    limits = httpx.Limits(max_keepalive_connections=0)
    per_host = defaultdict(lambda: threading.BoundedSemaphore(settings.connections_per_host))
    hosts = {url: per_host[urlsplit(url).hostname or ""] for url in urls}  # made here: one thread only

    def polite(url: str) -> Fetched:
        with hosts[url]:
            return fetch_one(client, url, archive, settings)

    fetched: dict[str, Fetched] = {}
    with httpx.Client(headers=headers, timeout=timeout, limits=limits, follow_redirects=True, max_redirects=MAX_REDIRECTS) as client:
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(settings.connections, len(urls))), thread_name_prefix="fetch") as pool:
                for done, future in enumerate(as_completed([pool.submit(polite, url) for url in urls]), 1):
                    answer = future.result()
                    fetched[answer.url] = answer
                    if on_fetched:
                        on_fetched(1)
                    if done % SAVE_EVERY == 0:
                        archive.save()
        finally:
            archive.save()
    return {url: fetched[url] for url in urls}


def fetch_one(client: httpx.Client, url: str, archive: Archive, settings: FetchSettings) -> Fetched:
    if not url.lower().startswith(("http://", "https://")):
        return Fetched(url, None, problem=f"不支持的地址: {url}")
    # Ask "changed since?" only while the copy a 304 would stand for is still archived; without it
    # the request is unconditional and the report is downloaded again.
    known = archive.copy_of(url)
    conditional = {}
    if known.get("etag"):
        conditional["If-None-Match"] = known["etag"]
    if known.get("last_modified"):
        conditional["If-Modified-Since"] = known["last_modified"]
    deadline = _Deadline(settings.deadline_seconds)
    problem = ""
    for attempt in range(settings.retries + 1):
        if attempt:
            pause = settings.backoff_seconds * 2 ** (attempt - 1)
            if pause >= deadline.remaining:
                return Fetched(url, None, problem=f"{problem}（{settings.deadline_seconds:g} 秒内重试未成功，放弃）")
            time.sleep(pause)
        try:
            with deadline.watch():
                return _request(client, url, conditional, known, archive, settings, deadline)
        except _Permanent as exc:
            return Fetched(url, None, status=exc.status, problem=str(exc))
        except Exception as exc:  # noqa: BLE001 - one URL must never take the job down
            if deadline.remaining <= 0:
                return Fetched(url, None, problem=f"下载超过 {settings.deadline_seconds:g} 秒仍未完成（服务器发送过慢），已放弃")
            if not isinstance(exc, _TRANSIENT):
                return Fetched(url, None, problem=_describe(exc))
            problem = _describe(exc)
    return Fetched(url, None, problem=f"{problem}（重试 {settings.retries} 次后放弃）")


class _Permanent(Exception):
    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class _Transient(Exception):
    pass


# Worth another attempt: the server or the network may answer next time. Everything else (too many
# redirects, a body that does not decode, an unsupported or invalid address) would fail again.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError, _Transient)


class _Deadline:
    """The time one URL may take, every attempt included.

    httpx's timeouts apply to each read, so a server that sends a byte at a time is never cut off
    by them. When the time is up this shuts the connection's socket, which ends the blocked read.
    """

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self._socket: socket.socket | None = None

    @property
    def remaining(self) -> float:
        return self.end - time.monotonic()

    def trace(self, event: str, info: dict) -> None:
        """httpx's `trace` extension: keep the socket of each new connection (TLS wraps it anew)."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self._socket = info["return_value"].get_extra_info("socket")
            if self.remaining <= 0:
                self._cut()

    @contextmanager
    def watch(self):
        timer = threading.Timer(max(self.remaining, 0.0), self._cut)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def _cut(self) -> None:
        if self._socket is not None:
            with suppress(OSError):  # already closed
                self._socket.shutdown(socket.SHUT_RDWR)


def _request(client, url, conditional, known, archive: Archive, settings: FetchSettings, deadline: _Deadline) -> Fetched:
    timeout = httpx.Timeout(max(min(settings.timeout_seconds, deadline.remaining), 0.001))
    with client.stream("GET", url, headers=conditional, timeout=timeout, extensions={"trace": deadline.trace}) as response:
        if response.status_code == 304:
            if not conditional:
                raise _Permanent("服务器答复“未修改”（HTTP 304），但本次请求并未附带缓存条件", 304)
            return Fetched(url, Path(known["path"]), known["sha256"], 304, not_modified=True, charset=known.get("charset", ""))
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
            if deadline.remaining <= 0:
                raise _Transient("下载超时")
            chunks.append(chunk)
        data = b"".join(chunks)
    if not data.strip():
        raise _Permanent("服务器返回了空内容", response.status_code)
    content_type = response.headers.get("content-type", "")
    charset = (response.charset_encoding or "").strip().lower()
    path, digest = archive.put(data, content_type)
    archive.remember(url, etag=response.headers.get("etag", ""), last_modified=response.headers.get("last-modified", ""),
                     sha256=digest, path=str(path), content_type=content_type, charset=charset)
    return Fetched(url, path, digest, response.status_code, charset=charset)


_DESCRIPTIONS = (
    (httpx.TimeoutException, "连接超时"),
    (httpx.TooManyRedirects, f"重定向次数过多（超过 {MAX_REDIRECTS} 次，或循环重定向）"),
    (httpx.DecodingError, "响应声明的压缩编码（Content-Encoding）与内容不符，无法解压"),
    (httpx.RemoteProtocolError, "响应不完整（连接被提前关闭）"),
    (httpx.ConnectError, "无法连接服务器"),
    (httpx.ProxyError, "代理服务器出错"),
    (httpx.NetworkError, "网络读写出错"),
    (httpx.UnsupportedProtocol, "地址或重定向目标的协议不受支持（只支持 http/https）"),
    (httpx.InvalidURL, "地址格式无效"),
    (httpx.LocalProtocolError, "请求无法发出（地址或请求头无效）"),
)


def _describe(exc: Exception) -> str:
    if isinstance(exc, _Transient):
        return str(exc)
    for kind, text in _DESCRIPTIONS:
        if isinstance(exc, kind):
            return text
    return f"下载出错（{type(exc).__name__}: {exc}）"
