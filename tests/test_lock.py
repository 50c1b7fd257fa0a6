"""The job lock: one run of a job at a time across processes, released when its holder dies, and
a package that imports on systems without fcntl (Windows)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from audits.jobs.history import JobBusy, job_lock
from tests.conftest import ROOT

HOLD = """
import sys, time
from pathlib import Path
from audits.jobs.history import job_lock
with job_lock(Path(sys.argv[1]), "k"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_lock_held_by_another_process_refuses_then_is_freed_when_it_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JobBusy, match="任务 k 已在运行"):
            with job_lock(tmp_path, "k"):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the operating system frees the lock
        holder.wait()
    with job_lock(tmp_path, "k"):
        with pytest.raises(JobBusy):  # and it still excludes a second holder in this process
            with job_lock(tmp_path, "k"):
                pass
    with job_lock(tmp_path, "k"):  # released on leaving
        pass


def test_the_package_imports_and_locks_without_fcntl(tmp_path):
    # As on Windows: a module that is absent from sys.modules (None) cannot be imported.
    script = f"""
import sys
sys.modules["fcntl"] = None
import audits.cli, audits.jobs.run, audits.jobs.schedule
from pathlib import Path
from audits.jobs.history import JobBusy, job_lock
with job_lock(Path({str(tmp_path)!r}), "k"):
    try:
        with job_lock(Path({str(tmp_path)!r}), "k"):
            raise SystemExit("second holder admitted")
    except JobBusy:
        pass
print("ok")
"""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
