"""What scheduled audits remember: runs, a parse cache, finding states, reviewer decisions, locks.

The results store is one SQLite file; a run's documents, cells and findings go in with one
transaction, so a run killed part way leaves no trace and the next run starts from the last
complete one. Parsed reports are cached by content hash, so an unchanged document is not parsed
again. Decisions are an append-only JSON-lines file that no run rewrites.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from filelock import FileLock, Timeout

from audits.model import ParsedReport
from audits.outputs import atomic_write

PARSER_VERSION = "2"  # bump when parsing changes, so cached parses are not reused

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, job TEXT, started TEXT, finished TEXT,
    documents INTEGER, parsed INTEGER, reused INTEGER);
CREATE TABLE IF NOT EXISTS documents (run_id TEXT, source TEXT, agency TEXT, agency_id TEXT,
    report_year INTEGER, content_hash TEXT, status TEXT, template TEXT, published TEXT);
CREATE TABLE IF NOT EXISTS cells (run_id TEXT, agency_id TEXT, report_year INTEGER, "table" TEXT,
    "row" TEXT, col TEXT, value REAL, flag TEXT);
CREATE TABLE IF NOT EXISTS findings (run_id TEXT, source TEXT, agency_id TEXT, report_year INTEGER,
    rule_id TEXT, category TEXT, severity TEXT, message TEXT, evidence TEXT, fingerprint TEXT, state TEXT);
CREATE INDEX IF NOT EXISTS cells_by_agency ON cells (agency_id, report_year);
CREATE INDEX IF NOT EXISTS findings_by_run ON findings (run_id);
"""


class JobBusy(RuntimeError):
    """Another run of the same job holds its lock."""


@contextmanager
def job_lock(state: Path, job: str):
    """One run of a job at a time, across processes, without waiting: a second run is refused.

    An operating-system lock (flock on POSIX, msvcrt.locking on Windows, through filelock), so that
    it is released when the process holding it dies, however it dies.
    """
    path = state / "locks" / f"{job}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise JobBusy(f"任务 {job} 已在运行") from None
    try:
        yield
    finally:
        lock.release()


# Fingerprints and states --------------------------------------------------------------------

def fingerprints(findings: pl.DataFrame, documents: pl.DataFrame) -> pl.Series:
    """A finding's stable identity: agency, report year, rule, and the cells or sentence involved.

    Not the message, the run or the file path, so it survives re-runs and re-downloads.
    """
    ids = dict(zip(documents["source"].to_list(), documents["agency_id"].to_list()))
    values = []
    for row in findings.iter_rows(named=True):
        subject = row["cells"] or row["quote"] or ""
        key = "|".join([ids.get(row["source"]) or row["source"], str(row["report_year"]), row["rule_id"], subject])
        values.append(hashlib.sha1(key.encode("utf-8")).hexdigest()[:16])
    return pl.Series("fingerprint", values, dtype=pl.Utf8)


class Store:
    def __init__(self, state: Path):
        state.mkdir(parents=True, exist_ok=True)
        self.state = state
        self.db = sqlite3.connect(state / "history.sqlite", timeout=30)
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    # Read ----------------------------------------------------------------------------------

    def last_run(self, job: str) -> str | None:
        row = self.db.execute("SELECT run_id FROM runs WHERE job = ? ORDER BY finished DESC LIMIT 1", (job,)).fetchone()
        return row[0] if row else None

    def findings_of(self, run_id: str | None) -> pl.DataFrame:
        schema = {"source": pl.Utf8, "agency_id": pl.Utf8, "report_year": pl.Int32, "rule_id": pl.Utf8, "category": pl.Utf8,
                  "severity": pl.Utf8, "message": pl.Utf8, "evidence": pl.Utf8, "fingerprint": pl.Utf8}
        if run_id is None:
            return pl.DataFrame(schema=schema)
        rows = self.db.execute(
            "SELECT source, agency_id, report_year, rule_id, category, severity, message, evidence, fingerprint FROM findings WHERE run_id = ?",
            (run_id,),
        ).fetchall()
        return pl.DataFrame(rows, schema=schema, orient="row")

    def earlier_cells(self, agency_ids: list[str]) -> pl.DataFrame:
        """The latest stored cells of every report year of these agencies (for cross-year rules)."""
        schema = {"agency_id": pl.Utf8, "report_year": pl.Int32, "table": pl.Utf8, "row": pl.Utf8, "col": pl.Utf8, "value": pl.Float64, "flag": pl.Utf8}
        if not agency_ids:
            return pl.DataFrame(schema=schema)
        marks = ",".join("?" * len(agency_ids))
        rows = self.db.execute(
            f"""SELECT c.agency_id, c.report_year, c."table", c."row", c.col, c.value, c.flag FROM cells c
                JOIN (SELECT agency_id, report_year, MAX(r.finished) AS finished FROM cells JOIN runs r USING (run_id)
                      WHERE agency_id IN ({marks}) GROUP BY agency_id, report_year) latest
                  ON c.agency_id = latest.agency_id AND c.report_year = latest.report_year
                JOIN runs r ON r.run_id = c.run_id AND r.finished = latest.finished""",
            agency_ids,
        ).fetchall()
        return pl.DataFrame(rows, schema=schema, orient="row")

    def jobs(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT job FROM runs ORDER BY job")]

    def seen(self, fingerprint: str, job: str | None = None) -> dict | None:
        """The latest stored finding with this fingerprint (of `job` when given), with its job and
        agency; None when no recorded run has it."""
        row = self.db.execute(
            """SELECT r.job, d.agency, f.agency_id, f.report_year, f.rule_id, f.severity, f.message FROM findings f
               JOIN runs r USING (run_id) LEFT JOIN documents d ON d.run_id = f.run_id AND d.source = f.source
               WHERE f.fingerprint = ? AND (? IS NULL OR r.job = ?) ORDER BY r.finished DESC LIMIT 1""",
            (fingerprint, job, job),
        ).fetchone()
        keys = ("job", "agency", "agency_id", "report_year", "rule_id", "severity", "message")
        return dict(zip(keys, row)) if row else None

    def current_findings(self, job: str | None = None) -> list[dict]:
        """The findings of each job's last run (of `job` only when given): what is open now."""
        rows = self.db.execute(
            """SELECT f.fingerprint, r.job, f.severity, f.rule_id, d.agency, f.report_year, f.state, f.message FROM findings f
               JOIN runs r USING (run_id) LEFT JOIN documents d ON d.run_id = f.run_id AND d.source = f.source
               WHERE r.run_id IN (SELECT run_id FROM runs r2 WHERE r2.finished = (SELECT MAX(finished) FROM runs r3 WHERE r3.job = r2.job))
                 AND (? IS NULL OR r.job = ?)
               ORDER BY r.job, CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, d.agency, f.rule_id""",
            (job, job),
        ).fetchall()
        keys = ("fingerprint", "job", "severity", "rule_id", "agency", "report_year", "state", "message")
        return [dict(zip(keys, row)) for row in rows]

    # Write ---------------------------------------------------------------------------------

    def record(self, run_id: str, job: str, started: str, documents: pl.DataFrame, cells: pl.DataFrame, findings: pl.DataFrame, parsed: int, reused: int) -> None:
        """The whole run in one transaction: all of it is stored, or none."""
        finished = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        ids = documents.select("source", "agency_id", "report_year")
        with self.db:
            self.db.executemany(
                "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
                [(run_id, *r) for r in documents.select("source", "agency", "agency_id", "report_year", "content_hash", "status", "template", pl.col("published").cast(pl.Utf8)).iter_rows()],
            )
            self.db.executemany(
                "INSERT INTO cells VALUES (?,?,?,?,?,?,?,?)",
                [(run_id, *r) for r in cells.join(ids, on="source").select("agency_id", "report_year", "table", "row", "col", "value", "flag").iter_rows()],
            )
            self.db.executemany(
                "INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(run_id, *r) for r in findings.join(ids.select(pl.col("source").cast(pl.Utf8), "agency_id"), on="source", how="left").select(
                    "source", "agency_id", "report_year", "rule_id", "category", "severity", "message", "evidence", "fingerprint", "state").iter_rows()],
            )
            self.db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?)", (run_id, job, started, finished, documents.height, parsed, reused))


def finding_states(current: pl.DataFrame, previous: pl.DataFrame, audited: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`current` with `state` (new / open), and the previous findings now resolved.

    A previous finding is resolved only when its agency and year were read again and it is gone. A
    report that could not be read this time (download failed, file unreadable) resolves nothing:
    its agency's previous findings stay open, carried over to the document that failed.
    """
    keys = ["agency_id", "report_year"]
    before = set(previous["fingerprint"].to_list())
    now = current.with_columns(pl.when(pl.col("fingerprint").is_in(list(before))).then(pl.lit("open")).otherwise(pl.lit("new")).alias("state"))
    gone = previous.filter(~pl.col("fingerprint").is_in(current["fingerprint"].to_list()))
    read = audited.filter(pl.col("status") != "failed").select(keys).unique()
    unread = (
        audited.filter(pl.col("status") == "failed").join(read, on=keys, how="anti")
        .unique(keys, keep="first", maintain_order=True)
        .select(*keys, pl.col("source").cast(pl.Utf8), "agency")
    )
    kept = gone.drop("source").join(unread, on=keys).with_columns(pl.lit("open").alias("state"))
    # What the store does not keep (the cells, the line) is left empty on the carried findings.
    now = pl.concat([now, kept], how="diagonal_relaxed").select(now.columns).sort("source", maintain_order=True)
    resolved = gone.join(read, on=keys, how="semi").with_columns(pl.lit("resolved").alias("state"))
    return now, resolved


# Parse cache --------------------------------------------------------------------------------


class ParseCache:
    """Parsed reports by content hash and declared charset (and the layouts they were parsed with)."""

    def __init__(self, state: Path, layouts_dir: Path):
        digest = hashlib.sha256(PARSER_VERSION.encode())
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
