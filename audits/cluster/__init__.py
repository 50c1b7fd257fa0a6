"""Parsing on a Dask cluster: the same parse as `audits.workers.parse_batch`, on other machines.

Only parsing (reading, OCR inside it, and building each chunk's frames) leaves the client; the
rules, findings and outputs run on the client over the gathered frames, as in a local run. This
module is imported only when a cluster is asked for (`audits run --cluster`, config `[cluster]`),
so that without one Dask is never imported.

How it maps onto Dask:

- Inputs are paths every worker reads itself (the input folders, and for jobs the state folder
  with its archive of fetched files and its parse cache, are on storage every machine mounts at the
  same path). Before a batch, every worker is asked whether it sees a sample of the inputs and the
  cache folder, and runs the same code (a digest of the `audits` package): a worker that does not
  stops the run with a message, rather than turning every document into a failure.
- One Dask task parses a chunk of up to 50 documents and returns their frames (Arrow). Dask
  reschedules the tasks of a worker that dies on another worker; a chunk that has killed
  `distributed.scheduler.allowed-failures` workers is tried again a document at a time, and a
  document that still kills its worker on `ATTEMPTS` tries becomes a `failed` document saying so
  (a document that was only beside it on a dying worker comes through on another try).
- Dask runs tasks in threads, where no timer signal reaches. So each Dask worker parses in the same
  pebble process pool as a local run (one process per Dask thread, started by a worker plugin):
  the per-document time budget (SIGALRM in the pool process, pebble's timeout for a process stuck
  in C) and the per-process memory budget (RLIMIT_AS) hold exactly as locally, and a chunk that
  breaks one is retried a document at a time inside the same task.
- The layouts (rules/templates) travel with the plugin, so workers need the package but not the
  client's rules folder.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path

from audits.frames import Frames, build_frames, concat_frames
from audits.workers import CHUNK, Budget, Input, failed

LOCAL = re.compile(r"local(?::([0-9]+))?")
PROBES = 16  # inputs each worker is asked to see before a batch
WORKER_WAIT = 60  # seconds a batch waits for the cluster to have a worker again
ATTEMPTS = 3  # times a document alone is tried after its chunk killed workers, before it is failed


class ClusterError(Exception):
    """The cluster cannot be used (not reachable, no workers, workers that cannot see the inputs or
    run other code); the message is for the operator."""


class Cluster:
    """A connection to a Dask scheduler (and the LocalCluster behind it for `local[:N]`)."""

    def __init__(self, client, address: str, local=None):
        self.client = client
        self.address = address
        self.local = local

    @property
    def dashboard(self) -> str:
        """The dashboard's address, "" when the scheduler runs none (bokeh not installed)."""
        try:
            if "dashboard" not in self.client.scheduler_info().get("services", {}):
                return ""
            return self.client.dashboard_link or ""
        except Exception:  # noqa: BLE001 - the dashboard is a convenience
            return ""

    def threads(self) -> int:
        return sum(w.get("nthreads", 1) for w in self.client.scheduler_info(n_workers=-1)["workers"].values())

    def describe(self) -> str:
        workers = len(self.client.scheduler_info(n_workers=-1)["workers"])
        where = "本机临时集群" if self.local is not None else f"集群 {self.address} "
        dashboard = self.dashboard
        return f"解析在 Dask {where}上进行：{workers} 个工作进程，共 {self.threads()} 个线程" + (f"；仪表盘 {dashboard}" if dashboard else "")

    # The batch -------------------------------------------------------------------------------

    def parse_batch(self, inputs: list[Input], templates_dir: Path, on_progress=None, cache_dir: Path | None = None, budget: Budget = Budget()) -> tuple[Frames, int]:
        """`audits.workers.parse_batch` on the cluster: the same frames, in the inputs' order."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        from audits.cluster.worker import ParsePool, parse_task

        cache = str(cache_dir or "")
        self.check(inputs, cache)
        templates = {p.name: p.read_bytes() for p in sorted(Path(templates_dir).glob("*.y*ml"))}
        name = f"audits-parse-{uuid.uuid4().hex[:12]}"
        self.client.register_plugin(ParsePool(templates, budget.memory_mb), name=name)
        try:
            size = max(1, min(CHUNK, math.ceil(len(inputs) / (4 * max(1, self.threads())))))
            pending = {}

            def submit(key: tuple[int, int], chunk: list[Input], attempt: int = 0):
                # Every submission its own Dask key: a key still held by an erred future would hand
                # back that future's error instead of running the task again.
                future = self.client.submit(parse_task, chunk, name, cache, budget, key=f"{name}-{key[0]}-{key[1]}-{attempt}")
                pending[future.key] = (key, chunk, attempt)
                return future

            parts: dict[tuple[int, int], Frames] = {}
            reused = 0
            running = as_completed([submit((i, 0), inputs[i : i + size]) for i in range(0, len(inputs), size)])
            for future in running:
                key, chunk, attempt = pending.pop(future.key)
                try:
                    frames, n_reused = future.result()
                except KilledWorker:  # the chunk took more than `allowed-failures` workers down with it
                    if len(chunk) > 1:
                        for k, one in enumerate(chunk):
                            running.add(submit((key[0], k), [one]))
                        continue
                    # A document alone may still have been only beside the one that killed its
                    # worker: it fails only when that happens on every attempt.
                    if attempt + 1 < ATTEMPTS:
                        running.add(submit(key, chunk, attempt + 1))
                        continue
                    frames, n_reused = build_frames([failed(chunk[0].source or chunk[0].path, _killed())]), 0
                except Exception as exc:  # noqa: BLE001 - not a document's doing: the run cannot go on
                    raise ClusterError(f"集群解析失败（{type(exc).__name__}: {exc}）") from exc
                finally:
                    future.release()
                parts[key] = frames
                reused += n_reused
                if on_progress:
                    on_progress(len(chunk))
        finally:
            try:
                self.client.unregister_worker_plugin(name)
            except Exception:  # noqa: BLE001 - the workers may be gone; their pools went with them
                pass
        return concat_frames([parts[key] for key in sorted(parts)]), reused

    def check(self, inputs: list[Input], cache_dir: str) -> None:
        """Every worker runs our code, sees the inputs (a sample) and can write the cache folder."""
        step = max(1, len(inputs) // PROBES)
        sample = [i.path for i in inputs[::step][:PROBES]] + [inputs[-1].path]
        from audits.cluster.worker import code_digest, probe

        try:
            # A worker that has just died is being restarted by its nanny: wait for it a little.
            self.client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            raise ClusterError(f"Dask 集群 {self.address} 没有工作进程（已等待 {WORKER_WAIT} 秒）") from None
        answers = self.client.run(probe, sample, cache_dir)
        if not answers:
            raise ClusterError(f"Dask 集群 {self.address} 没有工作进程")
        ours = code_digest()
        for worker, answer in sorted(answers.items()):
            if answer["code"] != ours:
                raise ClusterError(f"工作进程 {worker} 运行的审核程序与本机不同（{answer['code']} ≠ {ours}）：请在每台机器上安装同一版本")
            if answer["daemon"]:
                raise ClusterError(
                    f"工作进程 {worker} 是守护进程，不能启动解析子进程："
                    "请以环境变量 DASK_DISTRIBUTED__WORKER__DAEMON=False 启动 dask worker"
                )
            if answer["missing"]:
                raise ClusterError(
                    f"工作进程 {worker} 读不到输入文件 {answer['missing'][0]}（共抽查 {len(sample)} 个，{len(answer['missing'])} 个读不到）："
                    "输入目录须放在各机器以同一路径挂载的共享存储上"
                )
            if answer["cache"]:
                raise ClusterError(f"工作进程 {worker} 不能写入解析缓存目录 {cache_dir}（{answer['cache']}）：状态目录须放在各机器共享的存储上")

    def close(self) -> None:
        self.client.close()
        if self.local is not None:
            self.local.close()


@contextmanager
def connect(address: str, timeout: float = 30.0):
    """A cluster for the run: `local` or `local:N` starts a LocalCluster of N single-threaded
    worker processes (default: the CPU count, at most 8) on this machine; anything else is a
    scheduler's address (`tcp://host:8786`, `host:8786`)."""
    address = address.strip()
    try:
        import dask
        import distributed
    except ModuleNotFoundError as exc:
        if exc.name not in ("dask", "distributed"):
            raise
        raise ClusterError("使用 Dask 集群需要安装可选依赖：pip install 'gov-disclosure-audits[cluster]'") from None
    local = None
    match = LOCAL.fullmatch(address)
    try:
        if match:
            n = int(match.group(1) or min(os.cpu_count() or 1, 8))
            if n < 1:
                raise ClusterError("local:N 中的 N 至少为 1")
            # Worker processes start their parse pool's processes: Dask must not start them as
            # daemons (the nanny reads this each time it starts or restarts a worker).
            dask.config.set({"distributed.worker.daemon": False})
            local = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40)
            client = distributed.Client(local, timeout=timeout)
        else:
            client = distributed.Client(address, timeout=timeout)
            client.wait_for_workers(1, timeout=timeout)
    except ClusterError:
        raise
    except (OSError, TimeoutError, ValueError) as exc:
        if local is not None:
            local.close()
        raise ClusterError(f"无法连接 Dask 集群 {address}（{type(exc).__name__}: {exc}）") from None
    cluster = Cluster(client, address, local)
    try:
        yield cluster
    finally:
        cluster.close()


def _killed() -> str:
    return (
        "解析此文件的集群工作进程多次意外退出（Dask 已在其他工作进程上重试，单独重试仍然如此）："
        "可能超出机器内存，或文件损坏、含有恶意构造的内容；详见各工作进程的日志"
    )
