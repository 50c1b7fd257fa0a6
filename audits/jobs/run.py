"""One run of a scheduled job: fetch, audit with memory of earlier runs, record the run.

Every manifest row is exactly one document, whatever its address holds: it is named by its URL or
path, with `#row<N>` (its line in the manifest) when the same address is listed more than once. A
row with nothing to read (an empty, unsupported or missing address, a failed download) is a failed
document whose problem says why, so that it is a finding for that agency.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import polars as pl

from audits.audit import AuditResult, Memory, audit_batch, default_rules_dir, roster_regions, unreported
from audits.engines import gx_engine
from audits.frames import KEY, Frames, build_frames, concat_frames
from audits.identity import agency_key
from audits.ingest import discover
from audits.jobs.config import read_manifest
from audits.jobs.fetch import Archive, fetch_all
from audits.jobs.history import ParseCache, Store, decisions, job_lock
from audits.model import Attachment, ParsedReport
from audits.parse.report import agency_kind
from audits.progress import Stages
from audits.regions import given_regions
from audits.rulebook.book import load_rulebook
from audits.workers import Input, parse_batch

log = logging.getLogger(__name__)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]+):")  # two letters at least: C:\ is a path
_YEAR = re.compile(r"[0-9]{4}")


@dataclass(frozen=True)
class Entry:
    """One document of the run: its name, the file to read (None: nothing to read, `problem` says
    why), the charset its server declared, and the manifest row that pins its agency."""

    source: str
    path: Path | None
    problem: str = ""
    charset: str = ""
    row: dict | None = None


def run_job(job, settings, workers: int | None = None, stages: Stages | None = None, cluster=None) -> AuditResult:
    """Fetch the job's sources, audit them with the memory of earlier runs, record the run. Parsing
    runs on `cluster`, or on the cluster of the settings' `[cluster] address` when there is one."""
    if cluster is None and settings.cluster.address:
        from audits.cluster import connect

        with connect(settings.cluster.address) as cluster:
            log.info("任务 %s：%s", job.name, cluster.describe())
            return run_job(job, settings, workers, stages, cluster)

    gx_engine.warm_up_in_background()  # imported while the job fetches and parses
    state = settings.state_dir
    stages = stages or Stages()
    with job_lock(state, job.name):
        started = dt.datetime.now(dt.UTC)
        run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        rules_dir = job.path(job.rules) if job.rules else default_rules_dir()
        out = job.path(job.out) if job.out else Path("reports") / job.name
        book = load_rulebook(rules_dir)
        manifest_path = job.path(job.sources.manifest) if job.sources.manifest else None
        manifest = read_manifest(manifest_path) if manifest_path else []
        urls = list(dict.fromkeys(row["url"] for row in manifest if _scheme(row["url"]) in ("http", "https")))
        archive = Archive(state / "archive")
        fetching = stages.start("下载", len(urls))
        fetched = fetch_all(urls, archive, settings.fetch, on_fetched=fetching.advance)
        listed = _manifest_entries(manifest, manifest_path, fetched, job)
        finding = stages.start("查找文件")
        found = discover(job.local_inputs())
        taken = {e.path.resolve() for e in listed if e.path}  # a file a manifest row names is that row's
        entries = (
            [Entry(str(p), p) for p in dict.fromkeys(found.documents) if p.resolve() not in taken]
            + [Entry(p, None, f"找不到任务 sources.paths 中的路径 {p}") for p in found.missing]
            + listed
        )
        finding.advance(len(entries))
        finding.set_total(len(entries))
        cache = ParseCache(state, rules_dir / "templates")
        readable = [Input(str(e.path), e.source, e.charset) for e in entries if e.path]
        budget = settings.limits.budget()
        parsing = stages.start("解析", len(readable))
        frames, reused = parse_batch(readable, rules_dir / "templates", workers=workers, cache_dir=cache.root, on_progress=parsing.advance, budget=budget, cluster=cluster)
        frames = _read_attachments(frames, archive, settings, lambda inputs: parse_batch(inputs, rules_dir / "templates", workers=workers, budget=budget, cluster=cluster)[0])
        failed = [_unreadable(e) for e in entries if not e.path]
        frames = _apply_manifest(concat_frames([frames, build_frames(failed)]), entries)
        store = Store(state, settings.history.keep_runs)
        try:
            previous_run = store.last_run(job.name)
            memory = Memory(
                history=store.earlier_cells(frames.documents["agency_id"].unique().drop_nulls().to_list()),
                previous=store.findings_of(previous_run),
                decisions=decisions(state),
            )
            # The manifest's regions first, then the roster's.
            regions = {**roster_regions(settings), **given_regions([(r.get("agency") or "", r.get("region") or "") for r in manifest], "清单")}
            findings, resolved, statuses = audit_batch(frames, book, out, memory, {"regions": regions, "unreported": unreported(settings, frames)}, stages, workers)
            parsed = frames.documents.height - reused - len(failed)
            store.record(run_id, job.name, started.isoformat(), frames.documents, frames.cells, findings, parsed, reused)
        finally:
            store.close()
    return AuditResult(frames, findings, out, found.skipped, resolved, parsed, reused, statuses)


def _read_attachments(frames: Frames, archive: Archive, settings, parse) -> Frames:
    """Fetched pages whose report is an attachment: the attachments are fetched (same limits and
    archive as pages) and each page's first one that arrives is read as its report, under the page's
    address; a page whose attachments cannot be fetched stays unreadable, saying why."""
    pages = frames.documents.filter(
        (pl.col("status") == "failed") & (pl.col("attachments") != "") & pl.col("source").cast(pl.Utf8).str.contains("^https?://")
    )
    if pages.is_empty():
        return frames
    wanted = {row["source"]: [urljoin(row["source"].split("#row")[0], href) for href in row["attachments"].split("\n")] for row in pages.iter_rows(named=True)}
    fetched = fetch_all(sorted({url for urls in wanted.values() for url in urls}), archive, settings.fetch)
    inputs, problems = [], {}
    for row in pages.iter_rows(named=True):
        got = next((fetched[url] for url in wanted[row["source"]] if fetched[url].path), None)
        if got is not None:
            inputs.append(Input(str(got.path), row["source"], got.charset, page=_page(row)))
        else:
            names = "、".join(urlsplit(url).path.rsplit("/", 1)[-1] for url in wanted[row["source"]])
            problems[row["source"]] = f"报告正文在网页的附件中（{names}），下载附件失败：{fetched[wanted[row['source']][0]].problem}"
    read = parse(inputs) if inputs else build_frames([])
    replaced = pl.col("source").cast(pl.Utf8).is_in([i.source for i in inputs])
    merged = Frames(*(pl.concat([getattr(frames, n).filter(~replaced), getattr(read, n)]) for n in Frames.__dataclass_fields__))
    documents = merged.documents.with_columns(
        pl.col("source").cast(pl.Utf8).replace_strict(problems, default=None).fill_null(pl.col("problems")).alias("problems")
    )
    return Frames(documents, *(getattr(merged, n) for n in list(Frames.__dataclass_fields__)[1:]))


def _page(row: dict) -> ParsedReport:
    """What a page says of its report (title, agency, year, date, links), from its document row."""
    page = ParsedReport(source=row["source"], format="html", title=row["title"] or "", agency=row["agency"] or "")
    page.report_year, page.agency_kind, page.published = row["report_year"], row["agency_kind"] or "", row["published"]
    page.attachments = tuple(Attachment(href, href.rsplit("/", 1)[-1]) for href in row["attachments"].split("\n"))
    return page


def _scheme(url: str) -> str:
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else ""


def _manifest_entries(manifest: list[dict], manifest_path: Path | None, fetched: dict, job) -> list[Entry]:
    """One entry per manifest row, named by its address (made unique by its line when repeated)."""
    # A URL as written, a local path resolved against the job's folder.
    addresses = [str(job.path(row["url"])) if row["url"] and not _scheme(row["url"]) else row["url"] for row in manifest]
    repeated = {a for a in addresses if a and addresses.count(a) > 1}
    entries = []
    for row, address in zip(manifest, addresses):
        line = row["_line"]
        if address:
            source = f"{address}#row{line}" if address in repeated else address
            path, problem, charset = _locate(row["url"], address, fetched)
        else:
            source, path, charset = f"{manifest_path.resolve()}#row{line}", None, ""
            problem = f"清单第 {line} 行没有填写地址（url 为空）"
        entries.append(Entry(source, path, problem, charset, row))
    return entries


def _locate(url: str, address: str, fetched: dict) -> tuple[Path | None, str, str]:
    """The file a manifest address stands for, or why there is none; and the declared charset."""
    scheme = _scheme(url)
    if scheme in ("http", "https"):
        got = fetched[url]
        return (got.path, "", got.charset) if got.path else (None, f"下载失败：{got.problem}", "")
    if scheme:
        return None, f"不支持的地址“{url}”：清单中只能填写 http/https 网址或本地文件路径（不支持 {scheme}:）", ""
    path = Path(address)
    if path.is_file():
        return path, "", ""
    if path.is_dir():
        return None, f"清单中的路径 {path} 是文件夹，每行只能指向一个文件", ""
    return None, f"找不到清单中的本地文件 {path}", ""


def _unreadable(entry: Entry) -> ParsedReport:
    report = ParsedReport(source=entry.source, format="http" if _scheme(entry.source) in ("http", "https") else "", status="failed")
    report.problems.append(entry.problem)
    return report


def _apply_manifest(frames: Frames, entries: list[Entry]) -> Frames:
    """Each manifest row sets its document's agency, kind, year and identity; documents say which
    file was read and the charset its server declared."""
    rows = []
    for e in entries:
        row = e.row or {}
        agency, year = row.get("agency") or None, row.get("report_year", "")
        good_year = bool(_YEAR.fullmatch(year))
        rows.append({
            "source": e.source,
            "local_path": str(e.path) if e.path and e.path != Path(e.source) else None,
            "declared_charset": e.charset or None,
            "m_agency": agency,
            "m_kind": row.get("agency_kind") or (agency_kind(agency) if agency else None),
            "m_year": int(year) if good_year else None,
            "m_id": row.get("agency_id") or (agency_key(agency) if agency else None),
            "m_problem": f"清单第 {row['_line']} 行的 report_year“{year}”不是年份，已按报告正文判断" if year and not good_year else None,
        })
    schema = {"source": KEY, "local_path": pl.Utf8, "declared_charset": pl.Utf8, "m_agency": pl.Utf8, "m_kind": pl.Utf8,
              "m_year": pl.Int32, "m_id": pl.Utf8, "m_problem": pl.Utf8}
    pins = pl.DataFrame(rows, schema=schema)
    documents = frames.documents.join(pins, on="source", how="left").with_columns(
        pl.coalesce("m_agency", "agency").alias("agency"),
        pl.coalesce("m_kind", "agency_kind").alias("agency_kind"),
        pl.coalesce("m_year", "report_year").alias("report_year"),
        pl.coalesce("m_id", "agency_id").alias("agency_id"),
        pl.concat_str([pl.col("problems").replace("", None), "m_problem"], separator="；", ignore_nulls=True).alias("problems"),
    ).drop("m_agency", "m_kind", "m_year", "m_id", "m_problem")
    return Frames(documents, frames.cells, frames.sections, frames.lines, frames.snippets, frames.notes)
