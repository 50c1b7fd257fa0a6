"""One run of a scheduled job: fetch, audit with memory of earlier runs, record the run."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import polars as pl

from audits.audit import AuditResult, Memory, unreported, audit_batch, default_rules_dir, parse_batch
from audits.frames import KEY, Frames, build_frames, concat_frames
from audits.identity import agency_key
from audits.ingest import discover
from audits.model import ParsedReport
from audits.jobs.config import read_manifest
from audits.jobs.fetch import Archive, fetch_all
from audits.jobs.history import ParseCache, Store, decisions, job_lock
from audits.parse.report import agency_kind
from audits.rulebook.book import load_rulebook


def run_job(job, settings, workers: int | None = None) -> AuditResult:
    """Fetch the job's sources, audit them with the memory of earlier runs, record the run."""

    state = settings.state_dir
    with job_lock(state, job.name):
        started = dt.datetime.now(dt.UTC)
        run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        rules_dir = job.path(job.rules) if job.rules else default_rules_dir()
        out = job.path(job.out) if job.out else Path("reports") / job.name
        book = load_rulebook(rules_dir)
        manifest = read_manifest(job.path(job.sources.manifest)) if job.sources.manifest else []
        remote = [row for row in manifest if row["url"].lower().startswith(("http://", "https://"))]
        fetched = fetch_all([row["url"] for row in remote], Archive(state / "archive"), settings.fetch)
        local = [job.path(row["url"]) for row in manifest if row not in remote and row["url"]]
        found = discover(job.local_inputs() + local)
        archived = {str(f.path): url for url, f in fetched.items() if f.path}
        cache = ParseCache(state, rules_dir / "templates")
        frames, reused = parse_batch(found.documents + [Path(p) for p in archived], rules_dir / "templates", workers=workers, cache_dir=cache.root)
        failed = [_fetch_failure(url, f.problem) for url, f in fetched.items() if not f.path]
        frames = _apply_manifest(concat_frames([frames, build_frames(failed)]), manifest, archived, job)
        store = Store(state)
        try:
            previous_run = store.last_run(job.name)
            memory = Memory(
                history=store.earlier_cells(frames.documents["agency_id"].unique().drop_nulls().to_list()),
                previous=store.findings_of(previous_run),
                decisions=decisions(state),
            )
            regions = {r["agency"]: r["region"] for r in manifest if r.get("region")}
            findings, resolved, statuses = audit_batch(frames, book, out, memory, {"regions": regions, "unreported": unreported(settings, frames)})
            parsed = frames.documents.height - reused - len(failed)
            store.record(run_id, job.name, started.isoformat(), frames.documents, frames.cells, findings, parsed, reused)
        finally:
            store.close()
    return AuditResult(frames, findings, out, found.skipped, resolved, parsed, reused, statuses)


def _fetch_failure(url: str, problem: str) -> ParsedReport:
    report = ParsedReport(source=url, format="http", status="failed")
    report.problems.append(f"下载失败：{problem}")
    return report


def _apply_manifest(frames: Frames, manifest: list[dict], archived: dict[str, str], job) -> Frames:
    """Fetched files are named by their URL; manifest rows set agency, kind, year and identity."""
    rename = dict(archived)
    renamed = {
        name: getattr(frames, name).with_columns(pl.col("source").replace(rename))
        for name in ("documents", "cells", "sections", "lines", "snippets", "notes")
    }
    documents = renamed["documents"].with_columns(
        pl.col("source").replace_strict({v: k for k, v in rename.items()}, default=None, return_dtype=pl.Utf8).alias("local_path")
    )
    if manifest:
        rows = []
        for row in manifest:
            url = row["url"]
            source = url if url.lower().startswith(("http://", "https://")) else str(job.path(url))
            rows.append({
                "source": source,
                "m_agency": row["agency"] or None,
                "m_kind": row["agency_kind"] or (agency_kind(row["agency"]) if row["agency"] else None),
                "m_year": int(row["report_year"]) if row["report_year"] else None,
                "m_id": row.get("agency_id") or (agency_key(row["agency"]) if row["agency"] else None),
            })
        pins = pl.DataFrame(rows, schema={"source": KEY, "m_agency": pl.Utf8, "m_kind": pl.Utf8, "m_year": pl.Int32, "m_id": pl.Utf8})
        documents = documents.join(pins, on="source", how="left").with_columns(
            pl.coalesce("m_agency", "agency").alias("agency"),
            pl.coalesce("m_kind", "agency_kind").alias("agency_kind"),
            pl.coalesce("m_year", "report_year").alias("report_year"),
            pl.coalesce("m_id", "agency_id").alias("agency_id"),
        ).drop("m_agency", "m_kind", "m_year", "m_id")
    renamed["documents"] = documents
    return Frames(**renamed)


