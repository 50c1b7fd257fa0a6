"""What the benchmarks share: memory measurement, machine facts, and results.json."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results.json"
RULES_DIR = ROOT / "rules"
TEMPLATES_DIR = RULES_DIR / "templates"


def maxrss_mb() -> dict[str, float]:
    """Peak resident memory so far: this process, and the largest of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_peak_mb": round(own, 1), "children_peak_mb": round(kids, 1), "self_plus_children_peak_mb": round(own + kids, 1)}


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                    out.extend(int(x) for x in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


class TreeRss:
    """Samples the resident memory of this process plus all its descendants (the real total while
    worker processes run at the same time, which maxrss of self + children does not give)."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            total += _rss_kb(pid)
            todo.extend(_children(pid))
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self._sample())

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kb / 1024, 1)


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children so far (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores, from /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Contention:
    """How much CPU the rest of the machine used while a measurement ran (other processes compete
    for the same 2 cores and slow a run down; this says by how much they could have)."""

    def __enter__(self) -> "Contention":
        self._busy, self._own, self._t = machine_busy_seconds(), cpu_seconds(), time.perf_counter()
        self.load_before = os.getloadavg()[0]
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._t
        self.cpu_s = cpu_seconds() - self._own
        other = max(0.0, machine_busy_seconds() - self._busy - self.cpu_s)
        self.other_cpu_s = other
        self.other_cores = other / wall if wall else 0.0
        self.load_after = os.getloadavg()[0]

    def as_dict(self) -> dict:
        return {
            "cpu_s": round(self.cpu_s, 2),
            "other_processes_cpu_s": round(self.other_cpu_s, 2),
            "other_processes_cores": round(self.other_cores, 2),
            "loadavg_before_after": [round(self.load_before, 2), round(self.load_after, 2)],
        }


def wait_quiet(max_wait: float = 600, threshold: float = 0.3, probe: float = 3.0) -> dict:
    """Wait until the rest of the machine uses less than `threshold` cores (another session's tests
    share these 2 cores); gives up after `max_wait` seconds and says so in the result."""
    t0 = time.perf_counter()
    while True:
        busy0, own0 = machine_busy_seconds(), cpu_seconds()
        time.sleep(probe)
        others = max(0.0, machine_busy_seconds() - busy0 - (cpu_seconds() - own0)) / probe
        waited = time.perf_counter() - t0
        if others < threshold or waited >= max_wait:
            return {"waited_for_quiet_s": round(waited, 1), "other_cores_at_start": round(others, 2), "quiet_at_start": others < threshold}
        time.sleep(5)


def machine() -> dict:
    import polars as pl

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "platform": platform.platform(),
    }


def code_version() -> dict:
    """The commit measured, and whether the code under test (audits/, rules/) had local changes."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:  # a snapshot (git archive) of a commit, named by AUDITS_BENCH_COMMIT
        return {"commit": os.environ.get("AUDITS_BENCH_COMMIT", "unknown"), "code_changed_since_commit": False}
    return {"commit": commit, "code_changed_since_commit": bool(git("status", "--porcelain", "--", "audits", "rules"))}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def record(benchmark: str, result: dict, path: Path = RESULTS) -> None:
    """Add one run to results.json (a new run of the same benchmark, size and commit replaces the old one)."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    result = {**result, **code_version()}
    runs = data.setdefault(benchmark, [])
    same = (result.get("key"), result.get("commit"), result.get("code_changed_since_commit"))
    runs[:] = [r for r in runs if (r.get("key"), r.get("commit"), r.get("code_changed_since_commit")) != same]
    runs.append(result)
    runs.sort(key=lambda r: (str(r.get("key")), str(r.get("date"))))
    data["machine"] = machine()
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=False) + "\n", encoding="utf-8")


class Timer:
    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> "Timer":
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0

    def seconds_so_far(self) -> float:
        return time.perf_counter() - self._t0


def profile_top(fn, *args, top: int = 25, sort: str = "tottime", **kwargs):
    """Run fn under cProfile; returns (its result, the top functions as text)."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    result = prof.runcall(fn, *args, **kwargs)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats(sort).print_stats(top)
    return result, buf.getvalue()
