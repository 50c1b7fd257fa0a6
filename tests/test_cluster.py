"""The same audit with parsing on a Dask cluster (issue 12).

One LocalCluster of two worker processes serves the module. Over ../shared (seeds and corpus, its
PDFs included), a page whose report is the attachment beside it, a broken PDF and 300 generated
reports, the
run on the cluster — with one worker killed while it parses — gives frames, findings, rule states
and output files identical to the built-in pool's. The per-document time and memory budgets fail
a document on the cluster exactly as they do locally, a worker that cannot see the inputs stops
the run before any parsing, and without a cluster Dask is never imported.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import psutil
import pytest
from polars.testing import assert_frame_equal

from audits.audit import find_documents, run_audit
from audits.cluster import ClusterError, connect
from audits.frames import Frames
from audits.jobs.config import LimitSettings, Settings
from audits.progress import Stage, Stages
from audits.workers import Input, parse_batch
from benchmarks import synth
from tests.conftest import LAYOUTS, ROOT, SHARED, long_pdf, need_shared
from tests.test_attachments import ATTACHMENT, SEED, attachment_page
from tests.variants import load_seed, report_blocks, to_docx

RULES = ROOT / "rules"
TEMPLATES = RULES / "templates"


@pytest.fixture(scope="module")
def cluster():
    with connect("local:2") as session:
        yield session


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> list[Path]:
    need_shared()
    generated = tmp_path_factory.mktemp("synth")
    synth.generate(300, generated, seed=12, jobs=2, quiet=True)
    pages = tmp_path_factory.mktemp("pages")
    known = load_seed(SEED)
    (pages / "page.html").write_text(attachment_page(known), encoding="utf-8")
    (pages / ATTACHMENT).write_bytes(to_docx(report_blocks(known, LAYOUTS[known.template])))
    (pages / "broken.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)  # a failed document
    return [SHARED / "seeds", SHARED / "corpus", pages, generated]


def _children(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def _outputs(folder: Path) -> dict[str, bytes]:
    """Every output file; what tells two runs apart left out: the minute each page says the run
    was made, the workbook's creation time, GX's batch ids (named after the object's id in memory),
    and run.json's digests of the files holding them."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    for name in [n for n in files if n.endswith(".html")]:
        files[name] = re.sub("审核时间：[0-9: -]{16}".encode(), b"", files[name])
    with zipfile.ZipFile(io.BytesIO(files.pop("findings.xlsx"))) as book:
        files["findings.xlsx"] = b"".join(book.read(n) for n in sorted(book.namelist()) if n != "docProps/core.xml")
    gx = json.loads(files.pop("gx_validation.json"))
    for suite in gx:
        for result in suite["results"]:
            assert result["kwargs"].pop("batch_id")
    files["gx_validation.json"] = json.dumps(gx, sort_keys=True).encode()
    run = json.loads(files.pop("run.json"))
    for name in [n for n in run["files"] if n.endswith(".html")] + ["gx_validation.json", "findings.xlsx"]:
        run["files"].pop(name)
    files["run.json"] = json.dumps(run, sort_keys=True).encode()
    return files


def _same_frames(a: Frames, b: Frames) -> None:
    for name in Frames.__dataclass_fields__:
        assert_frame_equal(getattr(a, name), getattr(b, name)), name


class ParseWatched(Stages):
    """The run's stages, with `on_parse(n)` called as the parse stage advances by n documents."""

    def __init__(self, on_parse):
        super().__init__()
        self.on_parse = on_parse

    def start(self, title: str, total: int | None = None) -> Stage:
        stage = super().start(title, total)
        if title == "解析":
            advance = stage.advance

            def watched(n: int = 1) -> None:
                advance(n)
                self.on_parse(n)

            stage.advance = watched
        return stage


def test_the_audit_on_the_cluster_is_the_local_audit_even_when_a_worker_is_killed(tmp_path, batch, cluster):
    local_progress: list[int] = []
    local = run_audit(batch, RULES, tmp_path / "local", workers=2, stages=ParseWatched(local_progress.append))

    progress: list[int] = []
    killed: dict = {}

    def kill_a_busy_worker(n: int) -> None:
        progress.append(n)
        if killed:
            return
        busy = [worker for worker, keys in cluster.client.processing().items() if keys]
        assert busy, "no worker was parsing when the first chunk came back"
        worker = busy[0]
        pid = cluster.client.run(os.getpid, workers=[worker])[worker]
        killed.update(worker=worker, pid=pid, pool=_children(pid), parsing=cluster.client.processing()[worker])
        os.kill(pid, signal.SIGKILL)

    remote = run_audit(batch, RULES, tmp_path / "cluster", cluster=cluster, stages=ParseWatched(kill_a_busy_worker))

    documents = len(find_documents(batch).documents)
    assert documents > 330 and sum(local_progress) == sum(progress) == documents
    assert killed["parsing"] and killed["pool"], "the worker was killed while it parsed, with its parse processes"
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in killed["pool"]), (
        "the killed worker's parse processes died with it"
    )
    statuses = local.frames.documents["status"].value_counts()
    assert set(statuses["status"]) >= {"parsed", "failed"} and local.frames.documents.filter(pl.col("attachment") == ATTACHMENT).height == 1
    assert local.frames.documents.filter(pl.col("format") == "pdf").height >= 3

    _same_frames(local.frames, remote.frames)
    assert_frame_equal(local.findings, remote.findings)
    # each report's state per rule: the same rows (their order changes from one local run to the next)
    assert_frame_equal(local.statuses.sort(local.statuses.columns), remote.statuses.sort(remote.statuses.columns))
    assert [s for s in local.skipped] == [s for s in remote.skipped]
    assert local.findings.height > 1000
    assert _outputs(tmp_path / "local") == _outputs(tmp_path / "cluster")


def test_the_time_budget_fails_a_document_on_the_cluster_as_locally(tmp_path, cluster):
    need_shared()
    pdf = tmp_path / "slow.pdf"
    pdf.write_bytes(long_pdf())  # 30 pages of text: over a budget of 0.05 s, warm worker or not
    good = SHARED / "seeds" / "000_6138bd5dad981167.txt"
    budget = LimitSettings(seconds_per_document=0.05).budget()
    local, _ = parse_batch([pdf, good], TEMPLATES, workers=2, budget=budget)
    remote, _ = parse_batch([pdf, good], TEMPLATES, budget=budget, cluster=cluster)
    _same_frames(local, remote)
    (problem,) = remote.documents.filter(pl.col("source").cast(pl.Utf8) == str(pdf))["problems"].to_list()
    assert "处理时间超过单份文档的上限" in problem and "seconds_per_document" in problem


def test_the_memory_budget_fails_documents_on_the_cluster_as_locally(cluster):
    need_shared()
    files = [SHARED / "seeds" / "000_6138bd5dad981167.txt", SHARED / "seeds" / "002_c72821a3dfd52d3e.txt"]
    budget = LimitSettings(memory_mb_per_worker=200).budget()  # too little to import the parser
    local, _ = parse_batch(files, TEMPLATES, workers=2, budget=budget)
    remote, _ = parse_batch(files, TEMPLATES, budget=budget, cluster=cluster)
    _same_frames(local, remote)
    assert remote.documents["status"].to_list() == ["failed", "failed"]
    assert all("上限（200 MB）" in p and "memory_mb_per_worker" in p for p in remote.documents["problems"].to_list())


def crash_on_poison(inputs, plugin, cache_dir, budget):
    """The parse task, except that a chunk holding `poison.txt` takes its Dask worker down with it
    (as a machine's OOM killer or a crash outside the parse process would)."""
    from audits.cluster.worker import parse_task

    if any(Path(i.path).name == "poison.txt" for i in inputs):
        os._exit(1)
    return parse_task(inputs, plugin, cache_dir, budget)


def test_a_document_that_keeps_killing_its_dask_worker_fails_alone(tmp_path, cluster, monkeypatch):
    need_shared()
    # Enough documents that the poison shares a chunk: that chunk is retried a document at a time,
    # and the documents beside the poison (the first of its chunk included) come through.
    seeds = sorted((SHARED / "seeds").glob("*.txt")) + sorted((SHARED / "corpus").glob("0*.txt"))[:15]
    poison = tmp_path / "poison.txt"
    poison.write_bytes(seeds[0].read_bytes())
    files = [*seeds[:10], poison, *seeds[10:]]
    scheduler = cluster.client.run_on_scheduler
    allowed = scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)
    scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 0))  # one death is a KilledWorker
    monkeypatch.setattr("audits.cluster.worker.parse_task", crash_on_poison)
    try:
        remote, _ = parse_batch(files, TEMPLATES, cluster=cluster)
    finally:
        scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", allowed))
    local, _ = parse_batch(seeds, TEMPLATES, workers=2)
    docs = remote.documents
    assert docs["source"].cast(pl.Utf8).to_list() == [str(p) for p in files]
    (problem,) = docs.filter(pl.col("source").cast(pl.Utf8) == str(poison))["problems"].to_list()
    assert "集群工作进程多次意外退出" in problem
    keep = pl.col("source").cast(pl.Utf8) != str(poison)
    _same_frames(local, Frames(*(getattr(remote, name).filter(keep) for name in Frames.__dataclass_fields__)))


def test_a_batch_the_workers_cannot_see_is_refused_before_parsing(tmp_path, cluster):
    missing = tmp_path / "elsewhere" / "report.txt"
    with pytest.raises(ClusterError, match="读不到输入文件.*共享存储"):
        cluster.parse_batch([Input(str(missing))], TEMPLATES)
    with pytest.raises(ClusterError, match="不能写入解析缓存目录"):
        cluster.parse_batch([Input(str(SHARED / "seeds" / "000_6138bd5dad981167.txt"))], TEMPLATES, cache_dir=Path("/proc/audits-cache"))


def test_the_command_line_names_the_cluster_and_its_dashboard(tmp_path):
    from typer.testing import CliRunner

    from audits.cli import app

    result = CliRunner().invoke(app, ["run", "--rules", str(RULES), "--out", str(tmp_path / "out"), "--cluster", "local:1"])
    assert result.exit_code == 0, result.output
    assert "本机临时集群上进行：1 个工作进程" in result.output and "仪表盘 http://" in result.output
    assert "找到 16 份文档" in result.output and "审核了 16 份" in result.output
    unknown = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "o2"), "--cluster", "local:0"])
    assert unknown.exit_code == 1 and "local:N 中的 N 至少为 1" in unknown.output


def test_a_scheduler_that_does_not_answer_is_named():
    with pytest.raises(ClusterError, match="无法连接 Dask 集群 tcp://127.0.0.1:9"):
        with connect("tcp://127.0.0.1:9", timeout=2):
            pass


def test_a_job_parses_on_the_cluster_of_its_settings(tmp_path):
    settings = Settings(state_dir=tmp_path / "state", cluster={"address": "local:1"})
    from audits.jobs.config import Job

    job = Job(name="c", sources={"paths": [str(SHARED / "seeds")]}, out=str(tmp_path / "out"), schedule={"interval": {"days": 1}})
    from audits.jobs.run import run_job

    first = run_job(job, settings)
    again = run_job(job, settings)  # the parse cache, written by the cluster's workers, is reused
    alone = run_job(job.model_copy(update={"out": str(tmp_path / "out2")}), Settings(state_dir=tmp_path / "state2"), workers=1)
    assert first.reused == 0 and again.reused == again.frames.documents.height > 0
    _same_frames(first.frames, alone.frames)
    assert_frame_equal(first.findings, alone.findings)


def test_without_a_cluster_dask_is_not_imported(tmp_path):
    code = (
        "import sys; from pathlib import Path; from audits.audit import run_audit; "
        f"run_audit([Path({str(SHARED / 'seeds')!r})], Path({str(RULES)!r}), Path({str(tmp_path / 'out')!r}), workers=1); "
        "assert not {'dask', 'distributed'} & set(sys.modules), sorted(m for m in sys.modules if 'dask' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
