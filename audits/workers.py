"""Parsing a batch in worker processes, where no document can take the others down.

Files are parsed in chunks by a pool of worker processes, each chunk returning its frames (which
cross process boundaries cheaply, as Arrow). Every document runs under a time budget; every worker
under a memory budget. A document over its time budget, a worker that runs out of memory or dies
(a crash in a C library on a hostile file): the chunk's documents are tried again one at a time,
and the one that fails again becomes a `failed` document whose problem names the limit or the
crash. The batch goes on.
"""

from __future__ import annotations

import atexit
import hashlib
import math
import multiprocessing
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, TimeoutError, wait
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from audits.frames import Frames, build_frames, concat_frames
from audits.ingest import Limits, display_path, read_document, word_documents
from audits.layouts import load_layouts
from audits.model import ParsedReport
from audits.parse.report import NO_TITLE, parse, status_of

CHUNK = 50  # documents per task handed to a parse worker, which returns their frames


@dataclass(frozen=True)
class Budget:
    """What one document may cost (config `[limits]`)."""

    seconds: float = 300.0  # wall time to read and parse one document
    memory_mb: int = 4096  # address space of one parse worker


class Input(NamedTuple):
    """A file to parse, the name its document carries (default: the path), the charset its server
    declared ("" when none) and, for a page's attachment fetched apart, the page it belongs to."""

    path: str
    source: str = ""
    charset: str = ""
    page: ParsedReport | None = None


class DocumentTimeout(BaseException):
    """The document's time is up. A BaseException, like KeyboardInterrupt: the readers' own
    `except Exception` (a broken file is a problem, not a crash) must not swallow it."""


@lru_cache(maxsize=4)
def _layouts(templates_dir: str):
    return load_layouts(Path(templates_dir))


def parse_file(
    path: str, templates_dir: str, cache_dir: str = "", source: str = "", charset: str = "", seconds: float = 0,
    page: ParsedReport | None = None, converted: bytes | str | None = None,
) -> ParsedReport:
    """Read and parse one file, or take it from the parse cache; never raises. `converted` is a Word
    97/WPS file's DOCX when the chunk converted its Word files together."""
    from audits.jobs.history import ParseCache

    source = source or display_path(path)
    try:
        with _time_limit(seconds):
            if page is not None:
                report = read_attachment(Path(path), page, templates_dir)
                report.source = source
                return report
            text, data = read_document(Path(path), Limits(), declared=charset or None, converted=converted)
            digest = hashlib.sha256(data).hexdigest()
            key = f"{digest}-{charset}" if charset else digest
            cache = ParseCache.at(Path(cache_dir)) if cache_dir else None
            cached = cache.get(key) if cache else None
            if cached is not None:
                cached.source, cached.reused = source, True
                return cached
            report = parse(text, _layouts(templates_dir), digest)
            if holds_only_its_title(report):
                report = _from_attachment(Path(path), report, templates_dir)
            report.source = source
            if cache and data:
                cache.put(report, key)
    except DocumentTimeout:
        report = failed(source, f"处理时间超过单份文档的上限 {seconds:g} 秒，未能读完（配置 [limits] seconds_per_document）")
    except MemoryError:
        report = failed(source, "所需内存超过解析进程的上限，未能读完（配置 [limits] memory_mb_per_worker）")
    except Exception as exc:  # noqa: BLE001 - one bad report must not take the batch down
        report = failed(source, f"解析程序出错（{type(exc).__name__}: {exc}）")
    return report


def holds_only_its_title(report: ParsedReport) -> bool:
    """A page whose report is an attachment: it links to documents and holds no table and hardly a
    section of its own (only its title and the site's chrome, or 附件下载)."""
    return bool(report.attachments) and not report.tables_found and len(report.sections) < 3


def _from_attachment(page: Path, report: ParsedReport, templates_dir: str) -> ParsedReport:
    """The report in a page's attachment saved beside the page (same folder, the linked file's name),
    audited as the report with the page's title, date and links kept; else the page, failed,
    naming what is missing."""
    for attachment in report.attachments:
        beside = page.parent / Path(unquote(urlsplit(attachment.href).path)).name
        if beside.is_file() and beside.resolve() != page.resolve():
            return read_attachment(beside, report, templates_dir)
    names = "、".join(a.name for a in report.attachments)
    missing = failed(report.source, f"报告正文在网页的附件中（{names}），未提供附件：请把附件与网页放在同一目录，或在任务清单中使用网页地址以便下载")
    missing.attachments, missing.title, missing.agency, missing.report_year = report.attachments, report.title, report.agency, report.report_year
    missing.agency_kind, missing.published, missing.format = report.agency_kind, report.published, report.format
    return missing


def read_attachment(path: Path, page: ParsedReport, templates_dir: str) -> ParsedReport:
    """An attachment read as the report of `page`: published when the page was (the page's 发布时间
    dates the publication); where the attachment is silent on its title, the page's stands."""
    text, data = read_document(path, Limits())
    report = parse(text, _layouts(templates_dir), hashlib.sha256(data).hexdigest())
    report.attachments, report.attachment = page.attachments, path.name
    report.published = page.published or report.published
    if not report.title and page.title:
        report.title, report.agency, report.report_year, report.agency_kind = page.title, page.agency, page.report_year, page.agency_kind
        report.problems = [p for p in report.problems if p != NO_TITLE]
        report.status = status_of(report)
    return report


def failed(source: str, problem: str) -> ParsedReport:
    report = ParsedReport(source=source, status="failed")
    report.problems.append(problem)
    return report


@contextmanager
def _time_limit(seconds: float):
    """Interrupt the document after `seconds` (a timer signal; only the main thread can take one,
    and a worker process parses in its main thread)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise DocumentTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_chunk(inputs: list[Input], templates_dir: str, cache_dir: str = "", seconds: float = 0) -> tuple[Frames, int]:
    """Parse some files and return their frames and how many came from the parse cache. The chunk's
    Word 97/WPS files go through LibreOffice in one call."""
    converted = word_documents([Path(i.path) for i in inputs if not i.page and not _cached(i, cache_dir)])
    reports = [parse_file(i.path, templates_dir, cache_dir, i.source, i.charset, seconds, i.page, converted.get(Path(i.path))) for i in inputs]
    return build_frames(reports), sum(r.reused for r in reports)


def _cached(item: Input, cache_dir: str) -> bool:
    """Whether the parse cache holds the file already (then it needs no conversion)."""
    if not cache_dir:
        return False
    from audits.jobs.history import ParseCache

    try:
        digest = hashlib.sha256(Path(item.path).read_bytes()).hexdigest()
    except OSError:
        return False
    return ParseCache.at(Path(cache_dir)).get(f"{digest}-{item.charset}" if item.charset else digest) is not None


def parse_batch(
    paths: list[Path | Input], templates_dir: Path, workers: int | None = None, on_progress=None,
    cache_dir: Path | None = None, budget: Budget = Budget(), cluster=None,
) -> tuple[Frames, int]:
    """Parse files in worker processes; returns the frames and how many reports came from the
    parse cache. Every input comes back as a document, whatever happens to its worker. With
    `cluster` (an `audits.cluster.Cluster`), the worker processes are the cluster's."""
    inputs = [p if isinstance(p, Input) else Input(str(p)) for p in paths]
    if not inputs:
        return build_frames([]), 0
    if cluster is not None:
        return cluster.parse_batch(inputs, templates_dir, on_progress=on_progress, cache_dir=cache_dir, budget=budget)
    from pebble import ProcessPool

    workers = max(1, workers or min(os.cpu_count() or 1, 8))
    # Small batches (a few PDFs) are cut finer so that every worker gets a share.
    size = max(1, min(CHUNK, math.ceil(len(inputs) / (4 * workers))))
    with ProcessPool(max_workers=min(workers, len(inputs)), context=process_context(), initializer=_worker_start, initargs=(budget.memory_mb,)) as pool:
        return parse_in_pool(pool, inputs, size, str(templates_dir), str(cache_dir or ""), budget, on_progress)


@lru_cache(maxsize=1)
def process_context():
    """Workers forked from a server process that has imported the parser once (and lives as long
    as this process): a worker starts in milliseconds instead of importing everything anew (about
    0.4 s a worker), which a process starting pool after pool (the scheduler, the tests) paid each
    time. Where there is no fork server (Windows), workers are spawned.

    NOTE: not plain fork: Polars' thread pool does not survive a fork once it has run, and forked
    workers would inherit a scheduled job's lock and keep it after the parent is killed. The fork
    server is started fresh (spawned) and runs no Polars query, so neither is in it."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["audits.workers"])
    atexit.register(_stop_fork_server)
    return context


def _stop_fork_server() -> None:
    """Wait for the fork server at exit, as for any child: otherwise nobody reaps it, and the CPU
    of every worker it forked is missing from what `time` and the benchmarks count for the run."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # Python 3.8 to 3.13 have it
    if stop is not None:
        stop()


def parse_in_pool(pool, inputs: list[Input], size: int, templates_dir: str, cache_dir: str, budget: Budget, on_progress=None) -> tuple[Frames, int]:
    """Parse `inputs` in chunks of `size` on a pebble process pool (whose workers started with
    `_worker_start`): a chunk that fails (a worker over its time or memory budget, or dead) is tried
    again a document at a time, and a document that fails alone is a `failed` document saying why.
    The frames come back in the inputs' order."""
    args = (templates_dir, cache_dir, budget.seconds)
    parts: dict[tuple[int, int], Frames] = {}  # by (chunk, document in it): the inputs' order
    reused = 0

    def schedule(chunk: list[Input]):
        # The timer inside the worker stops a slow document; this stops a worker stuck where no
        # signal reaches (inside a C library) — the chunk is then tried a document at a time.
        return pool.schedule(parse_chunk, args=(chunk, *args), timeout=budget.seconds + 10 * len(chunk) + 30)

    pending = {schedule(inputs[i : i + size]): ((i, 0), inputs[i : i + size]) for i in range(0, len(inputs), size)}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            key, chunk = pending.pop(future)
            try:
                frames, n_reused = future.result()
            except Exception as exc:  # noqa: BLE001 - whatever happened to the worker, the batch goes on
                if len(chunk) > 1:
                    pending.update({schedule([one]): ((key[0], k), [one]) for k, one in enumerate(chunk)})
                    continue
                frames, n_reused = build_frames([failed(chunk[0].source or chunk[0].path, _why(exc, budget))]), 0
            parts[key] = frames
            reused += n_reused
            if on_progress:
                on_progress(len(chunk))
    return concat_frames([parts[key] for key in sorted(parts)]), reused


def _why(exc: BaseException, budget: Budget) -> str:
    """Why a document's worker gave up on it, in the reviewer's words."""
    from pebble import ProcessExpired

    if isinstance(exc, TimeoutError):
        return f"处理时间超过单份文档的上限（{budget.seconds:g} 秒），解析进程被终止（配置 [limits] seconds_per_document）"
    if isinstance(exc, MemoryError) or "failed to map" in str(exc):
        return f"所需内存超过解析进程的上限（{budget.memory_mb} MB），未能读完（配置 [limits] memory_mb_per_worker）"
    if isinstance(exc, ProcessExpired):
        return (
            f"解析进程在读取此文件时意外退出（退出码 {exc.exitcode}），单独重试一次仍然如此："
            f"可能超过内存上限（{budget.memory_mb} MB），或文件损坏、含有恶意构造的内容"
        )
    return f"解析进程出错（{type(exc).__name__}: {exc}），单独重试一次仍然如此"


def _worker_start(memory_mb: int) -> None:
    """A parse worker: ends with the run that started it, and stays within its memory budget."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except OSError:
        pass
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # not on this platform: the time budget still holds
