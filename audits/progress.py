"""What a run tells the operator as it goes: each stage (finding files, parsing, rules, pages,
outputs) with its count, total and time left.

On a terminal the stages are rich progress bars that stay on screen as the run's record; anywhere
else (cron, a pipe, a log) each stage is one line when it ends, so that logs are not flooded with
redraws. A logger, when given, gets the same line with a timestamp. Nothing here knows the audit.
"""

from __future__ import annotations

import logging
import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Stage:
    """One stage: `advance(n)` as work is done, `total` once it is known (it may start unknown)."""

    def __init__(self, stages: "Stages", title: str, total: int | None):
        self.stages, self.title, self.total, self.done = stages, title, total, 0
        self.started = time.monotonic()
        self._lock = threading.Lock()  # the rules stage advances from two threads
        self._task = stages.bar.add_task(title, total=total) if stages.bar else None

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
        if self._task is not None:
            self.stages.bar.advance(self._task, n)

    def set_total(self, total: int) -> None:
        self.total = total
        if self._task is not None:
            self.stages.bar.update(self._task, total=total)

    def finish(self) -> str:
        seconds = time.monotonic() - self.started
        if self._task is not None:
            # A stage whose total was an estimate ends full, not short of it.
            self.stages.bar.update(self._task, total=self.done or 1, completed=self.done or 1)
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        # "2 秒", not "2.0 秒": reviewers read a trailing .0 as a machine's float
        return f"{self.title}：{count}，用时 {f'{seconds:.1f}'.removesuffix('.0')} 秒"


class Stages:
    """The stages of one run. `start` ends the stage before it; `close` ends the last one."""

    def __init__(self, console: Console | None = None, log: logging.Logger | None = None):
        self.console, self.log = console, log
        self.bar = None
        if console is not None and console.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("已用"), TimeElapsedColumn(), TextColumn("剩余"), TimeRemainingColumn(),
                console=console,
            )
            self.bar.start()
        self.current: Stage | None = None

    def start(self, title: str, total: int | None = None) -> Stage:
        self._end()
        self.current = Stage(self, title, total)
        return self.current

    def _end(self) -> None:
        if self.current is None:
            return
        line = self.current.finish()
        self.current = None
        if self.console is not None and self.bar is None:
            self.console.print(line, soft_wrap=True, highlight=False)
        if self.log is not None:
            self.log.info(line)

    def close(self) -> None:
        self._end()
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> "Stages":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

