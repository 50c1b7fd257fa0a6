"""Parsing a batch in worker processes, where no document can take the others down.

Files are parsed in chunks by a pool of worker processes, each chunk returning its frames (which
cross process boundaries cheaply, as Arrow). Every document runs under a time budget; every worker
under a memory budget. A document over its time budget, a worker that runs out of memory or dies
(a crash in a C library on a hostile file): the chunk's documents are tried again one at a time,
and the one that fails again becomes a `failed` document whose problem names the limit or the
crash. The batch goes on.
"""

from __future__ import annotations

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

from audits.frames import Frames, build_frames, concat_frames
from audits.ingest import Limits, display_path, read_document
from audits.layouts import load_layouts
from audits.model import ParsedReport
from audits.parse.report import parse

CHUNK = 50  # documents per task handed to a parse worker, which returns their frames


@dataclass(frozen=True)
class Budget:
    """What one document may cost (config `[limits]`)."""

    seconds: float = 300.0  # wall time to read and parse one document
    memory_mb: int = 4096  # address space of one parse worker


class Input(NamedTuple):
    """A file to parse, the name its document carries (default: the path) and the charset its
    server declared ("" when none)."""

    path: str
    source: str = ""
    charset: str = ""


class DocumentTimeout(BaseException):
    """The document's time is up. A BaseException, like KeyboardInterrupt: the readers' own
    `except Exception` (a broken file is a problem, not a crash) must not swallow it."""


@lru_cache(maxsize=4)
def _layouts(templates_dir: str):
    return load_layouts(Path(templates_dir))


def parse_file(path: str, templates_dir: str, cache_dir: str = "", source: str = "", charset: str = "", seconds: float = 0) -> ParsedReport:
    """Read and parse one file, or take it from the parse cache; never raises."""
    from audits.jobs.history import ParseCache

    source = source or display_path(path)
    try:
        with _time_limit(seconds):
            text, data = read_document(Path(path), Limits(), declared=charset or None)
            digest = hashlib.sha256(data).hexdigest()
            key = f"{digest}-{charset}" if charset else digest
            cache = ParseCache.at(Path(cache_dir)) if cache_dir else None
            cached = cache.get(key) if cache else None
            if cached is not None:
                cached.source, cached.reused = source, True
                return cached
            report = parse(text, _layouts(templates_dir), digest)
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
    """Parse some files and return their frames and how many came from the parse cache."""
    reports = [parse_file(i.path, templates_dir, cache_dir, i.source, i.charset, seconds) for i in inputs]
    return build_frames(reports), sum(r.reused for r in reports)


def parse_batch(
    paths: list[Path | Input], templates_dir: Path, workers: int | None = None, on_progress=None,
    cache_dir: Path | None = None, budget: Budget = Budget(),
) -> tuple[Frames, int]:
    """Parse files in worker processes; returns the frames and how many reports came from the
    parse cache. Every input comes back as a document, whatever happens to its worker."""
    from pebble import ProcessPool

    workers = max(1, workers or min(os.cpu_count() or 1, 8))
    inputs = [p if isinstance(p, Input) else Input(str(p)) for p in paths]
    if not inputs:
        return build_frames([]), 0
    # Small batches (a few PDFs) are cut finer so that every worker gets a share.
    size = max(1, min(CHUNK, math.ceil(len(inputs) / (4 * workers))))
    args = (str(templates_dir), str(cache_dir or ""), budget.seconds)
    parts: dict[tuple[int, int], Frames] = {}  # by (chunk, document in it): the inputs' order
    reused = 0
    # NOTE: spawn, not fork: Polars' thread pool does not survive a fork, and forked workers would
    # inherit a scheduled job's lock and keep it after the parent is killed.
    context = multiprocessing.get_context("spawn")
    with ProcessPool(max_workers=min(workers, len(inputs)), context=context, initializer=_worker_start, initargs=(budget.memory_mb,)) as pool:

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
