"""Nothing a file or a kill can do takes the batch down or loses a report (issue 10).

Each reproduction of the fault campaign is a case: the run exits 0, every input appears in
documents.csv, the good report in the same batch keeps identical cells and findings, and the
failure is named. Then the output folder: written as one set, locked against a concurrent run,
and never seen half old, half new by a reader while runs are killed at random moments.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from audits.cli import app
from audits.locks import exclusive
from tests.conftest import ROOT, SHARED, long_pdf, need_shared, read_csv

GOOD = "000_6138bd5dad981167.txt"


def _config(folder: Path, **limits) -> Path:
    path = folder / "config.toml"
    body = "[limits]\n" + "".join(f"{k} = {v}\n" for k, v in limits.items())
    path.write_text(body, encoding="utf-8")
    return path


def _run(inputs: list[Path], out: Path, *extra: str):
    result = CliRunner().invoke(app, ["run", *map(str, inputs), "--rules", str(ROOT / "rules"), "--out", str(out), *extra])
    return result


def _good_alone(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    out = tmp_path_factory.mktemp("good-alone")
    assert _run([SHARED / "seeds" / GOOD], out, "--workers", "1").exit_code == 0
    return _rows(out, "cells", GOOD), _rows(out, "findings", GOOD)


def _rows(out: Path, stem: str, name: str) -> list[dict]:
    drop = {"source", "html", "fingerprint"}
    return [{k: v for k, v in row.items() if k not in drop} for row in read_csv(out / f"{stem}.csv") if row["source"].endswith(name)]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    need_shared()
    return _good_alone(tmp_path_factory)


def _assert_good_unchanged(out: Path, good) -> None:
    cells, findings = good
    assert _rows(out, "cells", GOOD) == cells
    assert _rows(out, "findings", GOOD) == findings


def _batch(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    shutil.copy(SHARED / "seeds" / GOOD, folder / GOOD)
    return folder


def _document(out: Path, name: str) -> dict:
    (row,) = [r for r in read_csv(out / "documents.csv") if r["source"].endswith(name)]
    return row


def _parse_error(out: Path, name: str) -> str:
    return " ".join(f["message"] for f in read_csv(out / "findings.csv") if f["source"].endswith(name) and f["rule_id"] == "PARSE")


# One document, one failure ---------------------------------------------------------------------


def test_a_twenty_digit_cell_is_kept_as_printed_and_flagged(tmp_path, good):
    report = (SHARED / "seeds" / "002_c72821a3dfd52d3e.txt").read_text(encoding="utf-8")
    # seed 002 prints table 四 one cell per line; the first 总计 of 行政复议 becomes 20 digits
    lines = report.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "尚未审结") + 1
    while not lines[at].strip().isdigit():
        at += 1
    huge = "12345678901234567890"
    lines[at] = huge
    folder = _batch(tmp_path, {"huge.txt": "\n".join(lines).encode("utf-8")})
    result = _run([folder], tmp_path / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    cells = [c for c in read_csv(tmp_path / "out" / "cells.csv") if c["source"].endswith("huge.txt") and c["raw"] == huge]
    assert len(cells) == 1 and cells[0]["value"] == "" and cells[0]["flag"] == "unreadable"
    assert pl.read_parquet(tmp_path / "out" / "cells.parquet").filter(pl.col("raw") == huge)["value"].to_list() == [None]
    assert any(f["rule_id"] == "CELL-UNREADABLE" and huge in f["evidence"] for f in read_csv(tmp_path / "out" / "findings.csv"))
    _assert_good_unchanged(tmp_path / "out", good)


def test_a_row_of_thousands_of_run_together_digits_is_read_in_time_and_flagged(tmp_path):
    # A fuzzed page printed 3,000 digits where a row of table 三 holds seven cells: listing every way
    # to cut them took 21 GB (or the worker's memory budget, after 6 s); they are now left uncut.
    need_shared()
    from audits.workers import Budget, parse_batch

    report = (SHARED / "corpus" / "025_pingtan-zrzy_2019.txt").read_text(encoding="utf-8")
    row = "一、本年新收政府信息公开申请数量 30 0 0 0 03 "
    assert row in report
    path = tmp_path / "run.txt"
    path.write_text(report.replace(row, "一、本年新收政府信息公开申请数量 " + "1" * 3000 + " ", 1), encoding="utf-8")
    started = time.monotonic()
    frames, _ = parse_batch([path], ROOT / "rules" / "templates", workers=1, budget=Budget(seconds=60, memory_mb=1024))
    assert time.monotonic() - started < 60
    assert frames.documents["status"].to_list() == ["partial"]
    cells = frames.cells.filter((pl.col("table") == "applications") & (pl.col("row") == "new_received"))
    assert cells.height == 7 and set(cells["flag"].cast(pl.Utf8)) == {"ambiguous"} and cells["value"].null_count() == 7
    note = frames.notes.filter((pl.col("table") == "applications") & (pl.col("row") == "new_received"))["detail"].to_list()
    assert any("连写数字过长（3000 位），可拆分的方式过多" in n for n in note), note
    # the other rows are read as without the run
    rest = frames.cells.filter(pl.col("row") == "carried_over")
    assert rest["value"].to_list() == [0.0] * 7


def test_long_lines_and_junk_are_read_in_time(tmp_path, good):
    seed = (SHARED / "seeds" / GOOD).read_text(encoding="utf-8")
    files = {
        "one_line_250k.txt": ("某" * 250_000).encode("utf-8"),  # quadratic title search: 669 s before
        "report_on_one_line.txt": seed.replace("\n", " ").encode("utf-8"),
        "high_bytes.bin.txt": bytes(random.Random(7).randrange(0x80, 0x100) for _ in range(200_000)),
    }
    folder = _batch(tmp_path, files)
    config = _config(tmp_path, seconds_per_document=60)
    result = _run([folder], tmp_path / "out", "--workers", "2", "--config", str(config))
    assert result.exit_code == 0, result.output
    for name in files:
        doc = _document(tmp_path / "out", name)
        assert "时间超过" not in _parse_error(tmp_path / "out", name), name
        assert doc["status"] in ("failed", "partial", "parsed")
    # the report with its lines joined still yields its tables and sections
    assert int(_document(tmp_path / "out", "report_on_one_line.txt")["sections_found"]) >= 5
    _assert_good_unchanged(tmp_path / "out", good)


def test_a_document_over_its_time_budget_fails_alone_naming_the_limit(tmp_path, good):
    folder = _batch(tmp_path, {"slow.pdf": long_pdf()})  # 30 pages of text: over a budget of 0.05 s
    config = _config(tmp_path, seconds_per_document=0.05)
    result = _run([folder], tmp_path / "out", "--workers", "2", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert _document(tmp_path / "out", "slow.pdf")["status"] == "failed"
    assert "处理时间超过单份文档的上限" in _parse_error(tmp_path / "out", "slow.pdf")
    assert "seconds_per_document" in _parse_error(tmp_path / "out", "slow.pdf")


def test_workers_that_run_out_of_memory_are_retried_then_named(tmp_path):
    # 200 MB of address space is too little for a worker to even import its libraries: every chunk
    # fails, every document is tried again alone, and each is named — the run itself goes on.
    folder = _batch(tmp_path, {"other.txt": (SHARED / "seeds" / "002_c72821a3dfd52d3e.txt").read_bytes()})
    config = _config(tmp_path, memory_mb_per_worker=200)
    result = _run([folder], tmp_path / "out", "--workers", "2", "--config", str(config))
    assert result.exit_code == 0, result.output
    docs = read_csv(tmp_path / "out" / "documents.csv")
    assert len(docs) == 2 and {d["status"] for d in docs} == {"failed"}
    for name in (GOOD, "other.txt"):
        problem = _parse_error(tmp_path / "out", name)
        assert "上限（200 MB）" in problem and "memory_mb_per_worker" in problem, problem


# The output folder -------------------------------------------------------------------------------


def _consistent(folder: Path) -> str | None:
    """The run id of a complete set in `folder`, read through one directory handle; None when the
    folder is being switched (a moment with no folder, or files of the old set already removed)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        def read(name: str) -> bytes:
            handle = os.open(name, os.O_RDONLY, dir_fd=fd)
            try:
                chunks = []
                while chunk := os.read(handle, 1 << 20):
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                os.close(handle)

        manifest = json.loads(read("run.json"))
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(read(name)).hexdigest() == digest, f"{name} is not the file of run {manifest['documents']}"
        listed = set(manifest["files"]) | set(manifest["kept"]) | {"run.json"}
        present = {n for n in os.listdir(fd) if not n.startswith(".")}
        assert present <= listed, f"files of another run beside this one: {sorted(present - listed)[:5]}"
        return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)


def test_outputs_replace_the_old_set_and_keep_what_is_not_ours(tmp_path):
    need_shared()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".gitkeep").write_text("", encoding="utf-8")
    (out / "说明.txt").write_text("本目录由审核程序写入", encoding="utf-8")
    assert _run([SHARED / "seeds"], out, "--workers", "1").exit_code == 0
    first = _consistent(out)
    pages = {p.name for p in out.glob("agency-*.html")}
    assert first and len(pages) == 5
    assert _run([SHARED / "seeds" / GOOD], out, "--workers", "1").exit_code == 0
    assert _consistent(out) not in (None, first)
    assert len(list(out.glob("agency-*.html"))) == 1, "the pages of the previous run's other agencies are gone"
    assert (out / ".gitkeep").exists() and (out / "说明.txt").read_text(encoding="utf-8") == "本目录由审核程序写入"
    assert not list(tmp_path.glob(".out.staging-*"))
    os.chmod(out / "index.html", 0o644)
    assert oct(os.stat(out / "index.html").st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_concurrent_run_is_refused_and_a_stale_staging_folder_removed(tmp_path):
    need_shared()
    out = tmp_path / "out"
    stale = tmp_path / ".out.staging-killedrun"
    stale.mkdir()
    (stale / "index.html").write_text("half", encoding="utf-8")
    with exclusive(tmp_path / ".out.lock", "busy"):
        result = _run([SHARED / "seeds" / GOOD], out, "--workers", "1")
    assert result.exit_code == 1 and "正由另一次审核写入" in result.output
    assert not out.exists()
    assert _run([SHARED / "seeds" / GOOD], out, "--workers", "1").exit_code == 0
    assert not stale.exists() and _consistent(out)


def test_a_folder_holding_folders_of_its_own_is_not_replaced(tmp_path):
    need_shared()
    (tmp_path / "out" / "项目资料").mkdir(parents=True)
    result = _run([SHARED / "seeds" / GOOD], tmp_path / "out", "--workers", "1")
    assert result.exit_code == 2 and "不属于审核输出的子目录 项目资料" in result.output
    assert (tmp_path / "out" / "项目资料").is_dir()


@pytest.mark.slow
def test_a_reader_never_sees_half_a_set_while_runs_are_killed(tmp_path):
    need_shared()
    out = tmp_path / "out"
    sets = [[SHARED / "seeds"], [SHARED / "seeds" / GOOD, SHARED / "corpus" / "hongze_2023.pdf"]]
    command = [sys.executable, "-m", "audits.cli", "run", "--rules", str(ROOT / "rules"), "--out", str(out), "--workers", "1"]
    assert subprocess.run(command + list(map(str, sets[0])), cwd=ROOT, capture_output=True).returncode == 0
    seen: dict[str, int] = {}
    problems: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                run = _consistent(out)
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if run:
                seen[run] = seen.get(run, 0) + 1

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    rng = random.Random(20261130)
    kills = 0
    try:
        for i in range(8):
            process = subprocess.Popen(command + list(map(str, sets[i % 2])), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if i % 2 == 0:  # every other run is killed at a random moment, the others finish
                time.sleep(rng.uniform(1.0, 6.0))
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    kills += 1
            process.wait(timeout=300)
    finally:
        stop.set()
        reader.join()
    assert not problems, problems[:3]
    assert kills >= 2 and len(seen) >= 2 and sum(seen.values()) > 50
    assert _consistent(out)
