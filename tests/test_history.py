"""The results store: runs in SQLite, each run's documents, cells and findings as Parquet; a store
of the old schema migrated; runs kept as configured; a killed run's files never read."""

from __future__ import annotations

import sqlite3

import polars as pl

from audits.jobs.history import Store

OLD_SCHEMA = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, job TEXT, started TEXT, finished TEXT, documents INTEGER, parsed INTEGER, reused INTEGER);
CREATE TABLE documents (run_id TEXT, source TEXT, agency TEXT, agency_id TEXT, report_year INTEGER, content_hash TEXT, status TEXT, template TEXT, published TEXT);
CREATE TABLE cells (run_id TEXT, agency_id TEXT, report_year INTEGER, "table" TEXT, "row" TEXT, col TEXT, value REAL, flag TEXT);
CREATE TABLE findings (run_id TEXT, source TEXT, agency_id TEXT, report_year INTEGER, rule_id TEXT, category TEXT, severity TEXT, message TEXT, evidence TEXT, fingerprint TEXT, state TEXT);
"""


def _run(store: Store, run_id: str, carried_forward: float, job: str = "web") -> None:
    documents = pl.DataFrame({"source": ["a.txt"], "agency": ["某局"], "agency_id": ["某局"], "report_year": [2023], "content_hash": ["h"], "status": ["parsed"], "template": ["2021"], "published": [None]}, schema_overrides={"published": pl.Date, "report_year": pl.Int32})
    cells = pl.DataFrame({"source": ["a.txt"], "table": ["applications"], "row": ["carried_forward"], "col": ["total"], "value": [carried_forward], "flag": [""]})
    findings = pl.DataFrame({"source": ["a.txt"], "report_year": [2023], "rule_id": ["PERIOD"], "category": ["date_range"], "severity": ["error"], "message": ["未说明统计期限"], "evidence": [""], "fingerprint": [run_id], "state": ["new"]}, schema_overrides={"report_year": pl.Int32})
    store.record(run_id, job, "2026-01-01T00:00:00", documents, cells, findings, 1, 0)


def test_runs_recorded_and_the_latest_cells_read_back(tmp_path):
    store = Store(tmp_path)
    _run(store, "r1", 3.0)
    _run(store, "r2", 5.0)
    cells = store.earlier_cells(["某局"])
    assert cells.select("report_year", "row", "col", "value").rows() == [(2023, "carried_forward", "total", 5.0)]
    assert store.findings_of(store.last_run("web"))["fingerprint"].to_list() == ["r2"]
    assert store.earlier_cells(["他局"]).is_empty()
    store.close()


def test_a_killed_runs_files_are_never_read_and_are_removed(tmp_path):
    store = Store(tmp_path)
    _run(store, "r1", 3.0)
    killed = tmp_path / "history" / "r9"
    killed.mkdir()
    pl.DataFrame({"agency_id": ["某局"], "report_year": [2023], "table": ["applications"], "row": ["carried_forward"], "col": ["total"], "value": [99.0], "flag": [""]}).write_parquet(killed / "cells.parquet")
    assert store.earlier_cells(["某局"])["value"].to_list() == [3.0]
    _run(store, "r2", 4.0)
    assert not killed.exists()
    store.close()


def test_runs_are_kept_as_configured(tmp_path):
    store = Store(tmp_path, keep_runs=2)
    for i in range(4):
        _run(store, f"r{i}", float(i))
    assert [r[0] for r in store.db.execute("SELECT run_id FROM runs ORDER BY finished")] == ["r2", "r3"]
    assert sorted(p.name for p in (tmp_path / "history").iterdir()) == ["r2", "r3"]
    store.close()


def test_a_store_of_the_old_schema_is_migrated(tmp_path):
    db = sqlite3.connect(tmp_path / "history.sqlite")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO runs VALUES ('old', 'web', 's', '2025-01-01', 1, 1, 0)")
    db.execute("INSERT INTO documents VALUES ('old', 'a.txt', '某局', '某局', 2022, 'h', 'parsed', '2021', NULL)")
    db.execute("INSERT INTO cells VALUES ('old', '某局', 2022, 'applications', 'carried_forward', 'total', 7.0, '')")
    db.execute("INSERT INTO findings VALUES ('old', 'a.txt', '某局', 2022, 'PERIOD', 'date_range', 'error', 'm', 'e', 'fp', 'new')")
    db.commit()
    db.close()
    store = Store(tmp_path)
    assert store.earlier_cells(["某局"]).select("report_year", "value").rows() == [(2022, 7.0)]
    assert store.findings_of("old")["fingerprint"].to_list() == ["fp"]
    tables = {row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"meta", "runs"}
    store.close()
