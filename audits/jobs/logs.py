"""Logs of scheduled audits, in Chinese: in the state folder (logs/audits.log), and on the console
for `audits schedule`. The scheduler and `audits run --job` (from system cron) append to the same
file, so that what happened to a job is in one place whichever way it ran."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

LEVELS = {"DEBUG": "调试", "INFO": "信息", "WARNING": "警告", "ERROR": "错误", "CRITICAL": "严重"}


class ChineseFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(level_zh)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.level_zh = LEVELS.get(record.levelname, record.levelname)
        return super().format(record)


def log_file(state: Path) -> Path:
    return state / "logs" / "audits.log"


@contextmanager
def logging_to(state: Path, console: bool = False):
    """Send the `audits` loggers' records to the state folder's log file (and to stderr when
    `console`) while the block runs."""
    path = log_file(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Appended, never rotated here: several processes write it; rotate with logrotate's copytruncate.
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if console:
        handlers.append(logging.StreamHandler())
    logger = logging.getLogger("audits")
    level = logger.level
    logger.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(ChineseFormatter())
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
