"""What runs on the Dask workers: the check before a batch, the parse task and the parse pool."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from distributed import WorkerPlugin, get_worker

from audits.frames import Frames
from audits.workers import Budget, Input, parse_in_pool


def code_digest() -> str:
    """A digest of the `audits` package's code: the client and every worker must run the same."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def probe(paths: list[str], cache_dir: str) -> dict:
    """What a worker sees: its code, which of `paths` it cannot read, whether it can write the cache."""
    import multiprocessing

    missing = [p for p in paths if not os.access(p, os.R_OK)]
    problem = ""
    if cache_dir:
        try:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            if not os.access(cache_dir, os.W_OK):
                problem = "没有写权限"
        except OSError as exc:
            problem = exc.strerror or str(exc)
    return {"code": code_digest(), "missing": missing, "cache": problem, "daemon": multiprocessing.current_process().daemon}


def parse_task(inputs: list[Input], plugin: str, cache_dir: str, budget: Budget) -> tuple[Frames, int]:
    """One chunk on a Dask worker, through the worker's parse pool."""
    return get_worker().plugins[plugin].parse(inputs, cache_dir, budget)


class ParsePool(WorkerPlugin):
    """A Dask worker plugin: the layouts written to the worker's disk and a pebble process pool with
    one process per worker thread, kept from setup to teardown (the end of the batch). Dask runs the
    plugin on workers that join or restart during the batch too."""

    idempotent = False

    def __init__(self, templates: dict[str, bytes], memory_mb: int):
        self.templates = templates
        self.memory_mb = memory_mb

    def setup(self, worker) -> None:
        self.templates_dir = _write_templates(self.templates)
        self._ready, self._stop = threading.Event(), threading.Event()
        self._pool = None
        # The pool's processes are started from a thread kept for the pool's lifetime: they are
        # told to die with their parent (PR_SET_PDEATHSIG), which on Linux means the thread that
        # started them, and Dask's task threads come and go.
        threading.Thread(target=self._keep, args=(worker.state.nthreads,), daemon=True, name="audits-parse-pool").start()

    def _keep(self, processes: int) -> None:
        import multiprocessing

        from pebble import ProcessPool

        from audits.workers import _worker_start

        try:
            pool = ProcessPool(max_workers=processes, context=multiprocessing.get_context("spawn"), initializer=_worker_start, initargs=(self.memory_mb,))
            try:
                pool.schedule(int).result()  # starts the processes from this thread
            except Exception:  # noqa: BLE001 - a process that cannot start fails its chunk, which says why
                pass
            self._pool = pool
        finally:
            self._ready.set()
        self._stop.wait()
        pool.stop()
        pool.join()

    def parse(self, inputs: list[Input], cache_dir: str, budget: Budget) -> tuple[Frames, int]:
        self._ready.wait()
        if self._pool is None:
            raise RuntimeError("the parse pool did not start (see the worker's log)")
        return parse_in_pool(self._pool, inputs, len(inputs), self.templates_dir, cache_dir, budget)

    def teardown(self, worker) -> None:
        self._stop.set()


def _write_templates(files: dict[str, bytes]) -> str:
    """The layouts on this machine's disk, in a folder named by their content (written once)."""
    import tempfile

    digest = hashlib.sha256()
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + data)
    folder = Path(tempfile.gettempdir()) / "audits-templates" / digest.hexdigest()[:16]
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=folder.parent))
        for name, data in files.items():
            (staging / name).write_bytes(data)
        try:
            os.rename(staging, folder)
        except OSError:  # another worker on this machine wrote it first
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    return str(folder)

