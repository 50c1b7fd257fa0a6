"""What scheduled audits remember: runs, a parse cache, finding states, reviewer decisions, locks.

The results store: a run's documents, cells and findings are Parquet files in a folder of their
own (columnar: a run of 50,000 reports is stored in seconds), and the runs are rows of one SQLite
table, with the store's schema version. A run's row is written last, once its files are complete,
so a run killed part way leaves no trace the next run sees. Parsed reports are cached by content
hash, so an unchanged document is not parsed again. Decisions are an append-only JSON-lines file
that no run rewrites.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import shutil
import sqlite3
from pathlib import Path

import polars as pl

from audits.locks import Busy, exclusive
from audits.model import ParsedReport
from audits.outputs import atomic_write

# The code that turns a file into a ParsedReport: a change to any of it invalidates cached parses
# (a hand-bumped version number was forgotten more than once).
_PARSER_CODE = ("ingest/*.py", "parse/*.py", "normalize.py", "model.py")

SCHEMA_VERSION = 2  # 1: documents, cells and findings in SQLite tables
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, job TEXT, started TEXT, finished TEXT,
    documents INTEGER, parsed INTEGER, reused INTEGER);
"""
_KEPT = {
    "documents": ["source", "agency", "agency_id", "report_year", "content_hash", "status", "template", "published"],
    "cells": ["agency_id", "report_year", "table", "row", "col", "value", "flag"],
    "findings": ["source", "agency_id", "report_year", "rule_id", "category", "severity", "message", "evidence", "fingerprint", "state"],
}


class JobBusy(Busy):
    """Another run of the same job holds its lock."""


def job_lock(state: Path, job: str):
    """One run of a job at a time, across processes, without waiting: a second run is refused."""
    return exclusive(state / "locks" / f"{job}.lock", f"任务 {job} 已在运行", JobBusy)


# The results store --------------------------------------------------------------------------


class Store:
    """The runs of scheduled jobs: SQLite for the runs, Parquet for what each run read and found."""

    def __init__(self, state: Path, keep_runs: int = 0):
        state.mkdir(parents=True, exist_ok=True)
        self.root = state / "history"
        self.keep_runs = keep_runs  # runs kept per job (0: all of them)
        self.db = sqlite3.connect(state / "history.sqlite", timeout=30)
        self.db.executescript(_SCHEMA)
        version = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is None:
            self._migrate_from_sqlite_tables()

    def close(self) -> None:
        self.db.close()

    # Read ----------------------------------------------------------------------------------

    def last_run(self, job: str) -> str | None:
        row = self.db.execute("SELECT run_id FROM runs WHERE job = ? ORDER BY finished DESC LIMIT 1", (job,)).fetchone()
        return row[0] if row else None

    def findings_of(self, run_id: str | None) -> pl.DataFrame:
        schema = {"source": pl.Utf8, "agency_id": pl.Utf8, "report_year": pl.Int32, "rule_id": pl.Utf8, "category": pl.Utf8,
                  "severity": pl.Utf8, "message": pl.Utf8, "evidence": pl.Utf8, "fingerprint": pl.Utf8}
        path = self.root / str(run_id) / "findings.parquet"
        if run_id is None or not path.is_file():
            return pl.DataFrame(schema=schema)
        return pl.read_parquet(path, columns=list(schema)).cast(schema)

    def earlier_cells(self, agency_ids: list[str]) -> pl.DataFrame:
        """The latest stored cells of every report year of these agencies (for cross-year rules)."""
        schema = {"agency_id": pl.Utf8, "report_year": pl.Int32, "table": pl.Utf8, "row": pl.Utf8, "col": pl.Utf8, "value": pl.Float64, "flag": pl.Utf8}
        runs = pl.DataFrame(self.db.execute("SELECT run_id, finished FROM runs").fetchall(), schema={"run_id": pl.Utf8, "finished": pl.Utf8}, orient="row")
        files = [str(self.root / run / "cells.parquet") for run in runs["run_id"] if (self.root / run / "cells.parquet").is_file()]
        if not agency_ids or not files:
            return pl.DataFrame(schema=schema)
        stored = (
            pl.scan_parquet(files, include_file_paths="file")
            .filter(pl.col("agency_id").is_in(agency_ids))
            .with_columns(pl.col("file").str.extract(r"([^/\\]+)[/\\]cells\.parquet$").alias("run_id"))
            .join(runs.lazy(), on="run_id")
        )
        latest = stored.group_by("agency_id", "report_year").agg(pl.col("finished").max())
        return stored.join(latest, on=["agency_id", "report_year", "finished"]).select(list(schema)).collect().cast(schema)

    def jobs(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT job FROM runs ORDER BY job")]

    def seen(self, fingerprint: str, job: str | None = None) -> dict | None:
        """The latest stored finding with this fingerprint (of `job` when given), with its job and
        agency; None when no recorded run has it."""
        found = self._findings(self._runs(job)).filter(pl.col("fingerprint") == fingerprint)
        if found.is_empty():
            return None
        keys = ["job", "agency", "agency_id", "report_year", "rule_id", "severity", "message"]
        return found.sort("finished", descending=True).select(keys).row(0, named=True)

    def current_findings(self, job: str | None = None) -> list[dict]:
        """The findings of each job's last run (of `job` only when given): what is open now."""
        runs = self._runs(job).sort("finished", descending=True).unique("job", keep="first")
        order = pl.col("severity").replace_strict({"error": 0, "warning": 1}, default=2)
        found = self._findings(runs).sort(["job", order, "agency", "rule_id"], nulls_last=True)
        return found.select("fingerprint", "job", "severity", "rule_id", "agency", "report_year", "state", "message").to_dicts()

    def _runs(self, job: str | None) -> pl.DataFrame:
        rows = self.db.execute("SELECT run_id, job, finished FROM runs WHERE ? IS NULL OR job = ?", (job, job)).fetchall()
        return pl.DataFrame(rows, schema={"run_id": pl.Utf8, "job": pl.Utf8, "finished": pl.Utf8}, orient="row")

    def _findings(self, runs: pl.DataFrame) -> pl.DataFrame:
        """The stored findings of `runs`, with each run's job and time and each finding's agency."""
        parts = []
        for run_id, job, finished in runs.iter_rows():
            folder = self.root / run_id
            if (folder / "findings.parquet").is_file():
                agencies = pl.read_parquet(folder / "documents.parquet", columns=["source", "agency"])
                found = pl.read_parquet(folder / "findings.parquet").join(agencies, on="source", how="left")
                parts.append(found.with_columns(pl.lit(job).alias("job"), pl.lit(finished).alias("finished")))
        empty = {"source": pl.Utf8, "agency_id": pl.Utf8, "report_year": pl.Int32, "rule_id": pl.Utf8, "severity": pl.Utf8, "message": pl.Utf8,
                 "fingerprint": pl.Utf8, "state": pl.Utf8, "agency": pl.Utf8, "job": pl.Utf8, "finished": pl.Utf8}
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame(schema=empty)

    # Write ---------------------------------------------------------------------------------

    def record(self, run_id: str, job: str, started: str, documents: pl.DataFrame, cells: pl.DataFrame, findings: pl.DataFrame, parsed: int, reused: int) -> None:
        """The run's files, then its row: a run is in the store once its row is, complete."""
        ids = documents.select("source", "agency_id", "report_year")
        tables = {
            "documents": documents.with_columns(pl.col("published").cast(pl.Utf8)),
            "cells": cells.join(ids, on="source"),
            "findings": findings.join(ids.select(pl.col("source").cast(pl.Utf8), "agency_id"), on="source", how="left"),
        }
        folder = self.root / run_id
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            kept = frame.select(_KEPT[name]).with_columns(pl.col(pl.Categorical).cast(pl.Utf8))
            atomic_write(folder / f"{name}.parquet", lambda tmp, kept=kept: kept.write_parquet(tmp))
        finished = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        with self.db:
            self.db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?)", (run_id, job, started, finished, documents.height, parsed, reused))
        self._prune(job)

    def _prune(self, job: str) -> None:
        """Keep the newest `keep_runs` runs of the job (all when 0); a killed run's folder has no row."""
        if self.keep_runs:
            old = self.db.execute("SELECT run_id FROM runs WHERE job = ? ORDER BY finished DESC LIMIT -1 OFFSET ?", (job, self.keep_runs)).fetchall()
            with self.db:
                self.db.executemany("DELETE FROM runs WHERE run_id = ?", old)
            for (run_id,) in old:
                shutil.rmtree(self.root / run_id, ignore_errors=True)
        known = {row[0] for row in self.db.execute("SELECT run_id FROM runs")}
        for folder in self.root.iterdir() if self.root.is_dir() else ():
            if folder.name not in known and not folder.name.startswith("."):
                shutil.rmtree(folder, ignore_errors=True)

    def _migrate_from_sqlite_tables(self) -> None:
        """A store of schema 1 kept documents, cells and findings in SQLite: each run's rows become
        its Parquet files, then the tables go."""
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if {"documents", "cells", "findings"} <= tables:
            for (run_id,) in self.db.execute("SELECT run_id FROM runs").fetchall():
                folder = self.root / run_id
                folder.mkdir(parents=True, exist_ok=True)
                for name, columns in _KEPT.items():
                    quoted = ", ".join(f'"{c}"' for c in columns)
                    rows = self.db.execute(f"SELECT {quoted} FROM {name} WHERE run_id = ?", (run_id,)).fetchall()
                    frame = pl.DataFrame(rows, schema=columns, orient="row")
                    atomic_write(folder / f"{name}.parquet", lambda tmp, frame=frame: frame.write_parquet(tmp))
            with self.db:
                for name in ("documents", "cells", "findings"):
                    self.db.execute(f"DROP TABLE {name}")
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


# Parse cache --------------------------------------------------------------------------------


class ParseCache:
    """Parsed reports by content hash and declared charset (and the layouts they were parsed with)."""

    def __init__(self, state: Path, layouts_dir: Path):
        digest = hashlib.sha256()
        package = Path(__file__).resolve().parents[1]
        for path in sorted(p for pattern in _PARSER_CODE for p in package.glob(pattern)):
            digest.update(path.read_bytes())
        for path in sorted(layouts_dir.glob("*.y*ml")):
            digest.update(path.read_bytes())
        self.root = state / "cache" / digest.hexdigest()[:16]
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def at(cls, root: Path) -> "ParseCache":
        """The cache in an existing folder (what worker processes are handed)."""
        cache = cls.__new__(cls)
        cache.root = root
        return cache

    def get(self, key: str) -> ParsedReport | None:
        path = self.root / f"{key}.pkl"
        if not path.is_file():
            return None
        try:
            return pickle.loads(path.read_bytes())
        except (pickle.UnpicklingError, EOFError, AttributeError):
            return None  # a cache file from a killed run: parse again

    def put(self, report: ParsedReport, key: str = "") -> None:
        """Under `key` (default: the content hash; a declared charset makes another key)."""
        data = pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(self.root / f"{key or report.content_hash}.pkl", lambda tmp: tmp.write_bytes(data))


# Reviewer decisions -------------------------------------------------------------------------


def history_exists(state: Path) -> bool:
    """Whether any job has recorded a run in this state folder (a review needs one to check against)."""
    return (state / "history.sqlite").is_file()


def record_decision(state: Path, fingerprint: str, decision: str, comment: str, who: str, finding: dict | None = None) -> dict:
    """Append a reviewer's decision. Fields: fingerprint, decision (确认 | 驳回), comment, by, at (UTC,
    ISO 8601), and what the finding was when decided (job, agency, agency_id, report_year, rule_id),
    so that the file reads on its own."""
    entry = {
        "fingerprint": fingerprint,
        "decision": decision,
        "comment": comment,
        "by": who,
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    } | ({k: finding.get(k) for k in ("job", "agency", "agency_id", "report_year", "rule_id")} if finding else {})
    state.mkdir(parents=True, exist_ok=True)
    with (state / "decisions.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


def decisions(state: Path) -> dict[str, dict]:
    """The latest decision per fingerprint (a torn last line from a crash is ignored)."""
    path = state / "decisions.jsonl"
    latest: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            latest[entry["fingerprint"]] = entry
    return latest
