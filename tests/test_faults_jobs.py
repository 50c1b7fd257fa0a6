"""Faults in scheduled jobs: each one is, at worst, a finding for the one document concerned.

A loopback HTTP server answers with redirect loops, a bad Content-Encoding, bodies and headers
sent a byte at a time, identical bytes at several URLs, and 500s on demand. Manifests hold
unsupported, missing and empty addresses; job and rule folders hold YAML alias bombs. Every run
returns, lists every manifest row in documents.csv, names the failure in Chinese, and leaves the
good report of the batch exactly as a run without the faults has it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from audits.jobs.config import FetchSettings, Settings, load_job
from audits.jobs.run import run_job
from audits.jobs.schedule import build_scheduler, register_jobs, run_job_by_name, run_job_once
from tests.conftest import ROOT

CLEAN = (ROOT / "rules" / "cases" / "clean_2021.md").read_text(encoding="utf-8")
CONTACT = "（地址：示例市人民路18号，电话：0571-87654321，电子邮箱：jtj@example.gov.cn）"
PERIOD = "本报告所列数据的统计期限自2024年1月1日起至2024年12月31日止。"
NO_CONTACT = CLEAN.replace(CONTACT, "").encode("utf-8")  # a report with a finding (CONTACT)
NO_PERIOD = CLEAN.replace(PERIOD, "").encode("utf-8")  # the good report of each batch (finding: PERIOD)
FAST = FetchSettings(timeout_seconds=1.0, retries=1, backoff_seconds=0.1, deadline_seconds=1.5, max_bytes=2_000_000)
GOOD = ("示例市交通运输局", "/good")


class Site:
    def __init__(self):
        self.bodies = {"/good": NO_PERIOD, "/solo": NO_CONTACT, "/same-a": NO_CONTACT, "/same-b": NO_CONTACT,
                       "/shared": NO_CONTACT, "/memo": NO_CONTACT}
        self.broken: set[str] = set()
        self.conditional: dict[str, int] = {}


def _handler(site: Site):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _head(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def _trickle(self, data: bytes) -> None:
            """A byte every 0.1 s: each read is quick, the whole never ends (for the client)."""
            try:
                for byte in data[:600]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        def do_GET(self):
            path = self.path
            if path in site.broken:
                self.send_error(500)
            elif path == "/loop":
                self._head(302, {"Location": "/loop", "Content-Length": "0"})
            elif path == "/gzip":  # declared gzip, sent plain
                body = CLEAN.encode("utf-8")
                self._head(200, {"Content-Type": "text/plain", "Content-Encoding": "gzip", "Content-Length": str(len(body))})
                self.wfile.write(body)
            elif path == "/loris":
                self._head(200, {"Content-Type": "text/plain", "Content-Length": "100000"})
                self._trickle(CLEAN.encode("utf-8"))
            elif path == "/loris-head":
                self._trickle(b"HTTP/1.0 200 OK\r\nX-Filler: " + b"a" * 1000)
            elif path == "/gbk":
                body = CLEAN.replace("示例市交通运输局", "示例市编码局").encode("gbk")
                self._head(200, {"Content-Type": "text/plain; charset=GBK", "Content-Length": str(len(body))})
                self.wfile.write(body)
            elif path in site.bodies:
                body = site.bodies[path]
                etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                if self.headers.get("If-None-Match"):
                    site.conditional[path] = site.conditional.get(path, 0) + 1
                    if self.headers["If-None-Match"] == etag:
                        self._head(304, {"ETag": etag})
                        return
                self._head(200, {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)), "ETag": etag})
                self.wfile.write(body)
            else:
                self.send_error(404)

    return Handler


@pytest.fixture(scope="module")
def server():
    site = Site()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _job(folder: Path, name: str, rows: list[tuple], base: str):
    """A job over a manifest of (agency, address[, report_year, extra cells…]) rows; addresses
    starting with '/' are on the server."""
    (folder / "jobs").mkdir(parents=True)
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["agency", "region", "agency_kind", "report_year", "url"])
        for agency, address, *rest in rows:
            year, *extra = rest or ["2024"]
            writer.writerow([agency, "", "department", year, base + address if address.startswith("/") else address, *extra])
    (folder / "jobs" / f"{name}.yaml").write_text(
        f"name: {name}\nsources:\n  manifest: ../manifest.csv\nrules: {ROOT / 'rules'}\nout: ../out\nschedule:\n  interval: {{hours: 24}}\n",
        encoding="utf-8",
    )
    return load_job(folder / "jobs" / f"{name}.yaml"), Settings(state_dir=folder / ".state", jobs_dir=folder / "jobs", fetch=FAST)


def _csv(out: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(out / f"{name}.csv", infer_schema_length=0)


def _of(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    return frame.filter(pl.col("source") == source)


# One batch with every fetch and manifest fault, and the same good report alone -----------------

FAULTY = [
    GOOD,                                          # line 2
    ("甲市科学技术局", "/same-a"),                  # 3: identical bytes at three URLs
    ("乙市科学技术局", "/same-b"),                  # 4
    ("丙市科学技术局", "/shared"),                  # 5: one URL for two agencies
    ("丁市科学技术局", "/shared"),                  # 6
    ("循环局", "/loop"),                           # 7
    ("压缩局", "/gzip"),                           # 8
    ("慢速局", "/loris"),                          # 9
    ("慢头局", "/loris-head"),                     # 10
    ("编码局", "/gbk"),                            # 11
    ("文件局", "file:///etc/passwd"),              # 12
    ("传输局", "ftp://example.gov.cn/report.pdf"),  # 13
    ("脚本局", "javascript:void(0)"),              # 14
    ("缺失局", "missing/report.txt"),              # 15
    ("空址局", ""),                                # 16
    ("年份局", "/solo", "2024年", "多余的一格"),      # 17: a year that is no number, a cell too many
]


@pytest.fixture(scope="module")
def batch(server, tmp_path_factory):
    site, base = server
    tmp = tmp_path_factory.mktemp("faults")
    alone_job, alone_settings = _job(tmp / "alone", "alone", [GOOD, ("某市科学技术局", "/solo")], base)
    alone = run_job(alone_job, alone_settings, workers=1)
    job, settings = _job(tmp / "faulty", "faulty", FAULTY, base)
    started = time.monotonic()
    result = run_job(job, settings, workers=1)
    return {"base": base, "folder": tmp / "faulty", "settings": settings, "seconds": time.monotonic() - started,
            "alone": alone.out, "out": result.out, "documents": _csv(result.out, "documents"), "findings": _csv(result.out, "findings")}


def _sources(batch) -> list[str]:
    base, folder = batch["base"], batch["folder"]
    repeated = {"/shared"}
    sources = []
    for line, (_, address, *_rest) in enumerate(FAULTY, start=2):
        if address in repeated:
            sources.append(f"{base}{address}#row{line}")
        elif address.startswith("/"):
            sources.append(base + address)
        elif address == "":
            sources.append(f"{(folder / 'manifest.csv').resolve()}#row{line}")
        elif ":" in address:
            sources.append(address)
        else:
            sources.append(str(folder.resolve() / "jobs" / address))
    return sources


def test_every_manifest_row_is_one_document(batch):
    documents = batch["documents"]
    assert sorted(documents["source"].to_list()) == sorted(_sources(batch))
    agencies = dict(zip(documents["source"], documents["agency"]))
    assert [agencies[s] for s in _sources(batch)] == [agency for agency, *_ in FAULTY]


def test_a_manifest_year_that_is_no_number_is_a_warning_not_a_crash(batch):
    source = batch["base"] + "/solo"
    document = _of(batch["documents"], source)
    assert document["status"].to_list() == ["parsed"] and document["report_year"].to_list() == ["2024"]  # read from the report
    parse = _of(batch["findings"], source).filter(pl.col("rule_id") == "PARSE")
    assert parse["severity"].to_list() == ["warning"] and "第 17 行" in parse["message"][0] and "不是年份" in parse["message"][0]


def test_good_report_is_untouched_by_the_faults_around_it(batch):
    good = batch["base"] + GOOD[1]
    for name in ("cells", "findings"):
        alone, faulty = _of(_csv(batch["alone"], name), good), _of(_csv(batch["out"], name), good)
        assert alone.height > 0 and faulty.equals(alone), name
    assert _of(batch["documents"], good)["status"].to_list() == ["parsed"]


def test_identical_bytes_and_shared_urls_are_neither_merged_nor_doubled(batch):
    """Four rows serve the bytes of /solo: each has exactly the findings /solo has alone."""
    base, findings = batch["base"], batch["findings"]
    solo = sorted(_of(_csv(batch["alone"], "findings"), base + "/solo")["rule_id"].to_list())
    assert "CONTACT" in solo
    for source in (base + "/same-a", base + "/same-b", base + "/shared#row5", base + "/shared#row6"):
        mine = _of(findings, source)
        assert sorted(mine["rule_id"].to_list()) == solo, source
        assert mine["fingerprint"].n_unique() == mine.height, source
    assert findings["fingerprint"].n_unique() == findings.height


FAILURES = {  # address → what the PARSE finding must say
    "/loop": "重定向次数过多",
    "/gzip": "无法解压",
    "/loris": "秒仍未完成",
    "/loris-head": "秒仍未完成",
    "file:///etc/passwd": "不支持的地址",
    "ftp://example.gov.cn/report.pdf": "不支持的地址",
    "javascript:void(0)": "不支持的地址",
    "missing/report.txt": "找不到清单中的本地文件",
    "": "没有填写地址",
}


def test_each_failure_is_one_chinese_finding_for_its_agency(batch):
    documents, findings = batch["documents"], batch["findings"]
    by_address = {address: source for (_, address, *_), source in zip(FAULTY, _sources(batch))}
    agencies = {address: agency for agency, address, *_ in FAULTY}
    for address, words in FAILURES.items():
        source = by_address[address]
        assert _of(documents, source)["status"].to_list() == ["failed"], address
        parse = _of(findings, source).filter(pl.col("rule_id") == "PARSE")
        assert parse.height == 1, address
        assert words in parse["message"][0], (address, parse["message"][0])
        assert parse["agency"][0] == agencies[address] and parse["category"][0] == "parse_error"


def test_slow_servers_are_cut_off_at_the_deadline(batch):
    # Two trickling servers cut at 1.5 s each, the rest answering at once; uncut, each trickles 60 s.
    assert batch["seconds"] < 40


def test_declared_charset_is_archived_and_reaches_the_reader(batch):
    url = batch["base"] + "/gbk"
    state = batch["settings"].state_dir
    index = json.loads((state / "archive" / "urls.json").read_text(encoding="utf-8"))
    assert index[url]["charset"] == "gbk"
    digest = index[url]["sha256"]
    assert [p.name for p in (state / "cache").rglob(f"{digest}*.pkl")] == [f"{digest}-gbk.pkl"]  # parsed knowing it
    document = _of(batch["documents"], url)
    assert document["declared_charset"].to_list() == ["gbk"] and document["status"].to_list() == ["parsed"]
    assert _of(batch["documents"], batch["base"] + "/good")["declared_charset"].to_list() == ["utf-8"]


# A lost archive and a failed download resolve nothing ---------------------------------------


def test_lost_archive_and_failed_download_keep_findings_open(server, tmp_path):
    site, base = server
    memo = base + "/memo"
    job, settings = _job(tmp_path, "memo", [("示例市审计局", "/memo"), GOOD], base)
    first = run_job(job, settings, workers=1)
    before = _of(_csv(first.out, "findings"), memo)
    assert "CONTACT" in before["rule_id"].to_list()

    archive = settings.state_dir / "archive"
    for path in archive.rglob("*.txt"):
        path.unlink()  # the index still remembers each URL's ETag
    asked = site.conditional.get("/memo", 0)
    second = run_job(job, settings, workers=1)
    now = _of(_csv(second.out, "findings"), memo)
    assert _of(_csv(second.out, "documents"), memo)["status"].to_list() == ["parsed"]
    assert _of(_csv(second.out, "resolved"), memo).height == 0
    assert now.select("fingerprint", "message").equals(before.select("fingerprint", "message"))
    assert set(now["state"]) == {"open"}
    assert site.conditional.get("/memo", 0) == asked  # no "changed since?" for a copy that is gone
    good_before = _of(_csv(second.out, "findings"), base + "/good")

    site.broken.add("/memo")
    try:
        third = run_job(job, settings, workers=1)
    finally:
        site.broken.discard("/memo")
    findings = _of(_csv(third.out, "findings"), memo)
    assert _of(_csv(third.out, "documents"), memo)["status"].to_list() == ["failed"]
    kept = findings.filter(pl.col("rule_id") != "PARSE")
    assert set(kept["fingerprint"]) == set(before["fingerprint"]) and set(kept["state"]) == {"open"}
    assert set(kept["agency"]) == {"示例市审计局"}
    parse = findings.filter(pl.col("rule_id") == "PARSE")
    assert parse.height == 1 and "下载失败" in parse["message"][0] and "HTTP 500" in parse["message"][0]
    assert _of(_csv(third.out, "resolved"), memo).height == 0
    assert _of(_csv(third.out, "findings"), base + "/good").equals(good_before)


# YAML bombs and invalid job files ------------------------------------------------------------

BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([""] + list("abcdefgh"), "abcdefghi")
)


def _bomb_line(message: str, path: Path) -> int:
    """The line a refusal names, checked to hold an alias of the bomb."""
    line = int(re.search(re.escape(path.name) + r":(\d+):", message).group(1))
    assert "*" in path.read_text(encoding="utf-8").splitlines()[line - 1]
    return line


@pytest.fixture
def jobs_folder(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "clean.md").write_text(CLEAN, encoding="utf-8")
    rules = tmp_path / "bad_rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "bomb.yaml").write_text("family: bomb\n" + BOMB + "rules: [*i]\n", encoding="utf-8")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "bomb.yaml").write_text("name: bomb\n" + BOMB, encoding="utf-8")
    (jobs / "bad.yaml").write_text("name: bad\nsources:\n  paths: [x]\nschedule:\n  cron: {hour: 6, minnute: 0}\n", encoding="utf-8")
    schedule = "schedule:\n  interval: {hours: 24}\n"
    (jobs / "other.yaml").write_text(f"name: other\nsources:\n  paths: [{inputs}, {tmp_path / 'no-inbox'}]\nrules: {ROOT / 'rules'}\nout: ../out\n{schedule}", encoding="utf-8")
    (jobs / "badrules.yaml").write_text(f"name: badrules\nsources:\n  paths: [{inputs}]\nrules: {rules}\nout: ../out2\n{schedule}", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('state_dir = ".state"\njobs_dir = "jobs"\n', encoding="utf-8")
    return tmp_path, config


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audits.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_alias_bomb_in_jobs_and_an_invalid_job_do_not_stop_the_others(jobs_folder, caplog):
    folder, config = jobs_folder
    done = _cli("run", "--job", "bomb", "--config", str(config))  # in a process of its own: a hang fails
    assert done.returncode == 2
    _bomb_line(done.stderr.replace("\n", ""), folder / "jobs" / "bomb.yaml")

    summary, _ = run_job_once("other", str(config))  # what `audits run --job other` prints
    _bomb_line(summary, folder / "jobs" / "bomb.yaml")
    assert "YAML 炸弹" in summary and "bad.yaml:5:" in summary and "已跳过无效的任务文件" in summary
    documents = _csv(folder / "out", "documents")
    assert documents["source"].to_list() == [str(folder / "inputs" / "clean.md"), str(folder / "no-inbox")]
    assert documents["status"].to_list() == ["parsed", "failed"]
    assert "找不到任务 sources.paths 中的路径" in _of(_csv(folder / "out", "findings"), str(folder / "no-inbox"))["message"][0]

    with pytest.raises(LookupError) as refused:
        run_job_once("bomb", str(config))
    _bomb_line(str(refused.value), folder / "jobs" / "bomb.yaml")

    settings = Settings(state_dir=folder / ".state", jobs_dir=folder / "jobs")
    scheduler = build_scheduler(settings)
    scheduler.start(paused=True)
    try:
        with caplog.at_level(logging.ERROR, logger="audits.schedule"):
            assert register_jobs(scheduler, settings, str(config)) == ["badrules", "other"]
    finally:
        scheduler.shutdown(wait=False)
    logged = caplog.text.replace("\n", "")
    assert "任务文件无效" in logged and "bad.yaml:5:" in logged
    _bomb_line(logged, folder / "jobs" / "bomb.yaml")


def test_alias_bomb_in_rules_is_refused_with_its_line(jobs_folder):
    folder, config = jobs_folder
    bomb = folder / "bad_rules" / "bomb.yaml"
    done = _cli("run", "--job", "badrules", "--config", str(config))
    assert done.returncode == 2
    _bomb_line(done.stderr.replace("\n", ""), bomb)
    assert "YAML 炸弹" in done.stderr.replace("\n", "")
    message = run_job_by_name("badrules", str(config))  # what the scheduler calls: logged, not raised
    assert "未能运行" in message
    _bomb_line(message, bomb)
