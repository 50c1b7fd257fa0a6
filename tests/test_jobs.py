"""Scheduled audits that remember, against a local HTTP server on 127.0.0.1.

The server serves the seeds plus slow, 404, 500, flaky, redirecting, truncated and changing
responses. Tests drive `run_job` directly and through APScheduler.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from audits.jobs.fetch import Archive, fetch_all
from audits.jobs.run import run_job
from audits.jobs.history import JobBusy, Store, job_lock, record_decision
from audits.jobs.config import FetchSettings, Settings, load_job
from audits.jobs.schedule import build_scheduler, register_jobs, run_job_once
from tests.conftest import ROOT, SHARED, need_shared

CLEAN = (ROOT / "rules" / "cases" / "clean_2021.md").read_text(encoding="utf-8")
CONTACT = "（地址：示例市人民路18号，电话：0571-87654321，电子邮箱：jtj@example.gov.cn）"
PERIOD = "本报告所列数据的统计期限自2024年1月1日起至2024年12月31日止。"


class Site:
    """What the local server answers; tests change `mutable` between runs."""

    def __init__(self):
        self.mutable = CLEAN.replace(CONTACT, "").encode("utf-8")
        self.hits: dict[str, int] = {}
        self.conditional_hits = 0
        self.in_flight = self.most_in_flight = 0  # of the /wait/… requests
        self.lock = threading.Lock()


def _handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, body: bytes, ctype="text/plain; charset=utf-8", status=200):
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            if self.headers.get("If-None-Match") == etag:
                site.conditional_hits += 1
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path
            site.hits[path] = site.hits.get(path, 0) + 1
            if path.startswith("/seeds/"):
                self._send((SHARED / "seeds" / path.split("/")[-1]).read_bytes())
            elif path == "/mutable":
                self._send(site.mutable)
            elif path.startswith("/wait/"):
                with site.lock:
                    site.in_flight += 1
                    site.most_in_flight = max(site.most_in_flight, site.in_flight)
                time.sleep(0.5)
                with site.lock:
                    site.in_flight -= 1
                self._send(f"第{path.rsplit('/', 1)[1]}份".encode("utf-8"))
            elif path == "/slow":
                time.sleep(2.5)
                self._send(b"too late")
            elif path == "/missing":
                self.send_error(404)
            elif path == "/broken":
                self.send_error(500)
            elif path == "/flaky":
                if site.hits[path] == 1:
                    self.send_error(503)
                else:
                    self._send((SHARED / "seeds" / "002_c72821a3dfd52d3e.txt").read_bytes())
            elif path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/seeds/001_5fa92bbbf5bb350f.txt")
                self.end_headers()
            elif path == "/truncated":
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"<html><body><p>\xe6\x9f\xb3\xe5\xb7\x9e")
                self.wfile.flush()
                self.connection.shutdown(2)
            else:
                self.send_error(404)

    return Handler


@pytest.fixture(scope="module")
def server():
    need_shared()
    site = Site()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


MANIFEST = [
    # agency, region, agency_kind, report_year, url path
    ("柳州市科学技术局", "广西", "department", "2022", "/seeds/000_6138bd5dad981167.txt"),
    ("红旗区科学技术局", "", "department", "2023", "/moved"),
    ("灵武市科学技术局", "宁夏", "department", "2024", "/flaky"),
    ("示例市交通运输局", "示例省", "department", "2024", "/mutable"),
    ("慢速局", "", "department", "2024", "/slow"),
    ("失踪局", "", "department", "2024", "/missing"),
    ("故障局", "", "department", "2024", "/broken"),
    ("截断局", "", "department", "2024", "/truncated"),
]


# The four the server answers with a report: what the scheduler test needs (the other four each
# cost it seconds of timeouts and retries, and `runs` covers them).
REACHABLE = MANIFEST[:4]


def _job_folder(tmp: Path, base: str, interval: float = 0, manifest=MANIFEST) -> tuple[Path, Settings]:
    folder = tmp / "site"
    (folder / "jobs").mkdir(parents=True, exist_ok=True)
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["agency", "region", "agency_kind", "report_year", "url"])
        for agency, region, kind, year, path in manifest:
            writer.writerow([agency, region, kind, year, base + path])
    schedule = f"interval: {{seconds: {interval}}}" if interval else "cron: {day_of_week: mon, hour: 6}"
    (folder / "jobs" / "web.yaml").write_text(
        f"name: web\nsources:\n  manifest: ../manifest.csv\nrules: {ROOT / 'rules'}\nout: ../out\nschedule:\n  {schedule}\n",
        encoding="utf-8",
    )
    settings = Settings(
        state_dir=folder / ".state",
        jobs_dir=folder / "jobs",
        fetch=FetchSettings(timeout_seconds=1.0, retries=1, backoff_seconds=0.1, max_bytes=2_000_000),
    )
    return folder, settings


def _findings(out: Path) -> pl.DataFrame:
    return pl.read_csv(out / "findings.csv", infer_schema_length=0)


@pytest.fixture(scope="module")
def runs(server, tmp_path_factory):
    """Three runs of one job: fetch and audit; again unchanged; again after /mutable changed."""
    site, base = server
    folder, settings = _job_folder(tmp_path_factory.mktemp("job"), base)
    job = load_job(folder / "jobs" / "web.yaml")
    first = run_job(job, settings, workers=1)
    first_findings = _findings(first.out)
    second = run_job(job, settings, workers=1)
    second_findings = _findings(second.out)
    fingerprint = first_findings.filter(pl.col("rule_id") == "PERIOD")["fingerprint"][0]
    record_decision(settings.state_dir, fingerprint, "确认", "已通知该局补充统计期限", "reviewer-a")
    site.mutable = CLEAN.replace(PERIOD, "").encode("utf-8")  # contact restored, period removed
    third = run_job(job, settings, workers=1)
    return {
        "site": site, "settings": settings, "folder": folder, "base": base,
        "first": first, "second": second, "third": third,
        "first_findings": first_findings, "second_findings": second_findings, "third_findings": _findings(third.out),
        "decided": fingerprint,
    }


def test_fetch_and_audit(runs):
    docs = pl.read_csv(runs["first"].out / "documents.csv", infer_schema_length=0)
    base = runs["base"]
    status = dict(zip(docs["source"], docs["status"]))
    assert status[base + "/seeds/000_6138bd5dad981167.txt"] == "parsed"
    assert status[base + "/moved"] == "parsed"  # redirect followed
    assert status[base + "/flaky"] == "parsed"  # 503 then 200: retried
    assert status[base + "/mutable"] == "parsed"
    for path in ("/slow", "/missing", "/broken", "/truncated"):
        assert status[base + path] == "failed", path
    parse_errors = runs["first_findings"].filter(pl.col("rule_id") == "PARSE")
    messages = dict(zip(parse_errors["source"], parse_errors["message"]))
    assert "HTTP 404" in messages[base + "/missing"]
    assert "连接超时" in messages[base + "/slow"]
    assert "HTTP 500" in messages[base + "/broken"] and "重试" in messages[base + "/broken"]
    assert "响应不完整" in messages[base + "/truncated"]
    agencies = dict(zip(parse_errors["source"], parse_errors["agency"]))
    assert agencies[base + "/missing"] == "失踪局"  # a finding for that agency, from the manifest
    archived = list((runs["settings"].state_dir / "archive").rglob("*.txt"))
    assert len(archived) == 5  # 000, 001 (via redirect), 002 (flaky), and both versions of /mutable


def test_history_recorded_and_unchanged_documents_not_parsed_again(runs):
    assert (runs["first"].parsed, runs["first"].reused) == (4, 0)
    assert (runs["second"].parsed, runs["second"].reused) == (0, 4)
    assert runs["site"].conditional_hits >= 4  # ETag sent back, 304 answered
    db = sqlite3.connect(runs["settings"].state_dir / "history.sqlite")
    assert db.execute("SELECT count(*) FROM runs WHERE job = 'web'").fetchone()[0] == 3
    run_ids = {row[0] for row in db.execute("SELECT run_id FROM runs WHERE job = 'web'")}
    stored = {f.parent.name for f in (runs["settings"].state_dir / "history").glob("*/findings.parquet")}
    assert stored == run_ids, "each run's findings stored beside its row, and nothing else"
    states = runs["second_findings"]["state"].unique().to_list()
    assert states == ["open"]  # nothing new, nothing gone
    assert runs["first_findings"]["state"].unique().to_list() == ["new"]


def test_changed_document_reaudited_resolved_and_new(runs):
    base = runs["base"]
    third = runs["third_findings"].filter(pl.col("source") == base + "/mutable")
    assert dict(zip(third["rule_id"], third["state"]))["PERIOD"] == "new"
    assert "CONTACT" not in third["rule_id"].to_list()
    resolved = pl.read_csv(runs["third"].out / "resolved.csv", infer_schema_length=0)
    assert resolved.filter(pl.col("source") == base + "/mutable")["rule_id"].to_list() == ["CONTACT"]
    assert (runs["third"].parsed, runs["third"].reused) == (1, 3)


def test_reviewer_decisions_survive_reruns_and_show_on_pages(runs):
    third = runs["third_findings"]
    row = third.filter(pl.col("fingerprint") == runs["decided"])
    assert row.height == 1 and "已通知该局补充统计期限" in row["decision"][0]
    assert (row["decision_state"][0], row["decision_by"][0], row["decision_comment"][0]) == ("confirmed", "reviewer-a", "已通知该局补充统计期限")
    documents = pl.read_csv(runs["third"].out / "documents.csv", infer_schema_length=0)
    page = documents.filter(pl.col("source") == row["source"][0])["html"][0]
    html = (runs["third"].out / page).read_text(encoding="utf-8")
    assert runs["decided"] in html and "已通知该局补充统计期限" in html
    assert f"audits review {third['fingerprint'][0]}" in (runs["third"].out / documents.filter(pl.col("source") == third["source"][0])["html"][0]).read_text(encoding="utf-8")


def test_fingerprints_are_stable_across_runs(runs):
    first = set(runs["first_findings"]["fingerprint"].to_list())
    second = set(runs["second_findings"]["fingerprint"].to_list())
    assert first == second


def test_lock_prevents_two_runs_of_one_job(runs):
    job = load_job(runs["folder"] / "jobs" / "web.yaml")
    with job_lock(runs["settings"].state_dir, "web"):
        with pytest.raises(JobBusy):
            run_job(job, runs["settings"], workers=1)


def test_urls_are_fetched_several_at_a_time_but_few_on_one_server(server, tmp_path):
    site, base = server
    urls = [f"{base}/wait/{i}" for i in range(10)] + [base + "/missing"]
    archive = Archive(tmp_path / "archive")
    fetched = fetch_all(urls, archive, FetchSettings(retries=0, connections=8, connections_per_host=3))
    assert site.most_in_flight == 3  # every URL is on 127.0.0.1
    assert list(fetched) == urls
    assert [fetched[u].path.read_text(encoding="utf-8") for u in urls[:10]] == [f"第{i}份" for i in range(10)]
    assert "HTTP 404" in fetched[urls[-1]].problem
    index = json.loads((tmp_path / "archive" / "urls.json").read_text(encoding="utf-8"))
    assert sorted(index) == sorted(urls[:10])  # written once, with every answer


def test_scheduler_runs_the_job_and_its_store_survives_restart(server, tmp_path):
    site, base = server
    folder, settings = _job_folder(tmp_path, base, interval=1, manifest=REACHABLE)
    settings = settings.model_copy(update={"schedule": settings.schedule.model_copy(update={"misfire_grace_seconds": 30})})
    config = folder / "config.toml"
    config.write_text(
        'state_dir = ".state"\njobs_dir = "jobs"\n[fetch]\ntimeout_seconds = 1.0\nretries = 1\nbackoff_seconds = 0.1\n',
        encoding="utf-8",
    )
    scheduler = build_scheduler(settings)
    scheduler.start(paused=True)
    assert register_jobs(scheduler, settings, str(config)) == ["web"]
    scheduler.resume()
    try:
        deadline = time.time() + 90
        while time.time() < deadline and _runs(settings) < 2:
            time.sleep(0.5)
    finally:
        scheduler.shutdown(wait=True)
    assert _runs(settings) >= 2
    store = Store(settings.state_dir)
    try:
        reused = store.db.execute("SELECT reused FROM runs ORDER BY finished").fetchall()
    finally:
        store.close()
    assert reused[0][0] == 0 and reused[1][0] == 4
    restarted = build_scheduler(settings)
    restarted.start(paused=True)
    try:
        jobs = restarted.get_jobs()
        assert [j.id for j in jobs] == ["web"] and jobs[0].args == ("web", str(config))
    finally:
        restarted.shutdown(wait=False)


def _runs(settings: Settings) -> int:
    path = settings.state_dir / "history.sqlite"
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def _descendants(pid: int) -> list[int]:
    """The processes below `pid`: the parse workers are children of the fork server, its child."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = [], [pid]
    while frontier:
        below = [child for child, parent in parents.items() if parent in frontier]
        found += below
        frontier = below
    return found


def _parent(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _local_job(tmp: Path, name: str, inputs: Path) -> Path:
    folder = tmp / name
    (folder / "jobs").mkdir(parents=True)
    (folder / "jobs" / "k.yaml").write_text(
        f"name: k\nsources:\n  paths: [{inputs}]\nrules: {ROOT / 'rules'}\nout: ../out\nschedule:\n  interval: {{hours: 24}}\n",
        encoding="utf-8",
    )
    (folder / "config.toml").write_text('state_dir = ".state"\njobs_dir = "jobs"\n', encoding="utf-8")
    return folder


COPIES = 8  # of the five seeds: the run is killed after ten reports are parsed, before the 40th


def test_sigkill_mid_run_then_rerun_matches_an_uninterrupted_run(tmp_path):
    need_shared()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i in range(COPIES):
        for seed in sorted((SHARED / "seeds").iterdir()):
            text = seed.read_text(encoding="utf-8").replace("科学技术", f"科学技术{i}号", 1)
            (inputs / f"{i:02d}_{seed.name}").write_text(text, encoding="utf-8")
    killed, clean = _local_job(tmp_path, "killed", inputs), _local_job(tmp_path, "clean", inputs)
    command = [sys.executable, "-m", "audits.cli", "run", "--job", "k", "--workers", "1"]
    process = subprocess.Popen(command + ["--config", str(killed / "config.toml")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = killed / ".state" / "cache"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(cache.rglob("*.pkl"))) < 10:
        time.sleep(0.05)
    workers = _descendants(process.pid)
    below_children = set(workers) - {pid for pid in workers if _parent(pid) == process.pid}
    assert below_children, "no parse worker (below the fork server) was running when the run was killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # the workers get SIGKILL from the kernel when their parent dies; a loaded machine may take a
    # moment to reap them
    deadline = time.time() + 15
    while time.time() < deadline and [pid for pid in workers if _alive(pid)]:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)], "parse workers outlived the killed run"
    cached = len(list(cache.rglob("*.pkl")))
    assert 0 < cached < 5 * COPIES, f"the kill did not land mid-way ({cached} of {5 * COPIES} reports cached)"
    assert _runs(Settings(state_dir=killed / ".state")) == 0  # nothing half-recorded
    # The rerun (a process of its own, as after a crash) and, meanwhile, the uninterrupted run.
    rerun = subprocess.Popen(command + ["--config", str(killed / "config.toml")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run_job_once("k", str(clean / "config.toml"), workers=1)
    _, errors = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, errors
    for name in ("documents.csv", "cells.csv", "findings.csv"):
        a = (killed / "out" / name).read_text(encoding="utf-8")
        b = (clean / "out" / name).read_text(encoding="utf-8")
        assert a == b, name
    assert _runs(Settings(state_dir=killed / ".state")) == 1
    shutil.rmtree(inputs)


def test_roster_lists_agencies_with_no_report(tmp_path):
    from typer.testing import CliRunner

    from audits.cli import app

    config = tmp_path / "config.toml"
    config.write_text(f'roster = "{ROOT / "config" / "roster.example.csv"}"\n', encoding="utf-8")
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["run", str(ROOT / "audits" / "samples"), "--out", str(out), "--config", str(config), "--workers", "1"])
    assert done.exit_code == 0, done.output
    html = (out / "index.html").read_text(encoding="utf-8")
    section = html.split("未上报")[1]
    assert "示例县交通运输局" in section
    assert "淮安市洪泽区人民政府" not in section and "柳州市科学技术局" not in section


def test_job_file_errors_name_file_and_line(tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "bad.yaml").write_text("name: bad\nsources:\n  paths: [x]\nschedule:\n  cron: {hour: 6, minnute: 0}\n", encoding="utf-8")
    (tmp_path / "config.toml").write_text('jobs_dir = "jobs"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "audits.cli", "run", "--job", "bad", "--config", str(tmp_path / "config.toml")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "bad.yaml:5:" in done.stderr.replace("\n", "") and "minnute" in done.stderr


def test_schedule_stops_cleanly_on_sigterm(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "nightly.yaml").write_text(
        f"name: nightly\nsources:\n  paths: [{ROOT / 'rules' / 'cases'}]\nrules: {ROOT / 'rules'}\nout: ../out\nschedule:\n  cron: {{hour: 3}}\n",
        encoding="utf-8",
    )
    (tmp_path / "config.toml").write_text('state_dir = ".state"\njobs_dir = "jobs"\n', encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "audits.cli", "schedule", "--config", str(tmp_path / "config.toml")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline and not (tmp_path / ".state" / "jobs.sqlite").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "nightly" in output
    # In Chinese, with when the job runs next, in Beijing time; and the same in the state folder's log.
    assert "任务 nightly 下次运行：" in output and "03:00:00（Asia/Shanghai）" in output, output
    log = (tmp_path / ".state" / "logs" / "audits.log").read_text(encoding="utf-8")
    assert "调度器已启动" in log and "任务 nightly 下次运行：" in log and "调度器已停止" in log
