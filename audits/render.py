"""HTML audit summaries: one page per agency and an index, self-contained and safe to open.

Report text is hostile: every value goes through Jinja2 autoescape (no `|safe` on report text),
bidirectional-text controls in it are shown as visible marks instead of acting on the page (`shown`),
and the pages carry a Content-Security-Policy that allows only their own inline script and style.

A reviewer's decision counts: a dismissed (驳回) finding is shown as dismissed and is left out of
the counts, the verdict and the roll-ups; a confirmed (确认) one is shown as confirmed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from audits.frames import KEY, Frames
from audits.outputs import write_text
from audits.regions import Region, region_of
from audits.passages import marked
from audits.rulebook.book import Rule, Rulebook
from audits.vocabulary import AGENCY_KINDS, CATEGORIES, DECISIONS, FINDING_STATES, SEVERITIES, STATUSES, TABLE_NUMERALS, TEMPLATES, VERDICTS, number

KEY_FIGURES = [
    ("applications", "new_received", "total", "本年新收申请"),
    ("applications", "carried_over", "total", "上年结转"),
    ("applications", "total_processed", "total", "办理结果总计"),
    ("applications", "carried_forward", "total", "结转下年度"),
    ("review_litigation", "review", "total", "行政复议总计"),
    ("review_litigation", "lit_direct", "total", "直接起诉总计"),
    ("review_litigation", "lit_after_review", "total", "复议后起诉总计"),
]


# Characters that reorder text around them (U+202E RIGHT-TO-LEFT OVERRIDE and its kin): they carry
# no meaning in a Chinese report, and in a name they could make a page read backwards.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def shown(value):
    """What a page prints for a value: bidirectional controls replaced by a visible mark naming them
    (〔U+202E〕), so that they act on nothing and a reviewer sees they were there."""
    if isinstance(value, str) and BIDI_CONTROLS.search(value):
        marked = BIDI_CONTROLS.sub(lambda m: f"〔U+{ord(m.group()):04X}〕", value)
        return Markup(marked) if isinstance(value, Markup) else marked  # the mark holds no markup
    return value


def page_env() -> Environment:
    env = Environment(
        loader=PackageLoader("audits", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=shown,
    )
    env.globals.update(SEVERITY_ZH=SEVERITIES, CATEGORY_ZH=CATEGORIES, STATUS_ZH=STATUSES, STATE_ZH=FINDING_STATES, DECISION_ZH=DECISIONS, VERDICTS=VERDICTS, run=None)
    return env


@dataclass
class RunInfo:
    """What every page says about the run that wrote it."""

    date: str  # when the run wrote its pages, local time
    rules_version: str  # Rulebook.version
    rules: int
    documents: int
    exports: list[tuple[str, str]]  # (file beside the pages, what it holds)


EXPORTS = [
    ("findings.xlsx", "问题与报告（Excel）"),
    ("findings.csv", "问题（CSV）"),
    ("findings.parquet", "问题（Parquet）"),
    ("documents.csv", "报告（CSV）"),
    ("documents.parquet", "报告（Parquet）"),
    ("cells.csv", "表格单元格（CSV）"),
    ("cells.parquet", "表格单元格（Parquet）"),
]


def run_info(book: Rulebook, documents: int, exports: list[tuple[str, str]] | None = None) -> RunInfo:
    return RunInfo(dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"), book.version, len(book.rules), documents, EXPORTS if exports is None else exports)


@dataclass
class TableView:
    """One standard table re-drawn in its template's layout, with the cells a finding names marked."""

    key: str
    title: str
    cols: list[tuple[str, str]]  # key, label
    rows: list[tuple]  # (label, the row's <td> cells as escaped HTML)


@dataclass
class FindingView:
    rule_id: str
    title: str
    severity: str
    category: str
    message: str
    evidence: str
    explanation: str
    basis: str
    line: int | None
    quote: dict  # the line it points at: {before, mark, after}, the sentence the evidence quotes marked
    tables: list[TableView] = field(default_factory=list)
    outline: list[dict] = field(default_factory=list)
    fingerprint: str = ""
    state: str = ""
    decision: str = ""  # confirmed, dismissed, or "" when no reviewer has decided
    decision_by: str = ""
    decision_at: str = ""  # as recorded (ISO), shown to the minute
    decision_comment: str = ""

    @property
    def counts(self) -> bool:
        """Whether the finding counts in totals and verdicts: a dismissed one does not."""
        return self.decision != "dismissed"
    passages: list[dict] = field(default_factory=list)  # copied text: both passages, differences marked


@dataclass
class ReportView:
    anchor: str  # the id of its section on the agency page (y2024, or y2024-2 for a second report of a year)
    source: str
    source_href: str
    year: int | None
    published: str
    template: str
    status: str
    verdict: str
    verdict_class: str
    findings: list[FindingView]
    passed: list[dict]  # rules judged and passed: id, title
    not_applicable: list[dict]  # rules that do not apply to it: id, title, reason
    undetermined: list[dict]  # rules that could not be judged: id, title, reason
    problems: str
    ocr_lines: int  # lines read by OCR from scanned pages
    counts: dict[str, int]  # error, warning, info (dismissed findings left out), dismissed, confirmed


@dataclass
class AgencyPage:
    """The context of agency.html (every field the template may use)."""

    agency: str
    kind: str
    region: str
    region_source: str  # where the region comes from: 清单, 名录, 机关名称
    years: list
    reports: list[ReportView]
    figures: list[dict]  # key figures per year, when the batch holds several
    counts: dict[str, int]
    categories: dict[str, int]


def verdict(status: str, tables_found: str, severities: list[str], before_unified: bool = False) -> tuple[str, str]:
    """A report's verdict from its reading and the severities of the findings that count."""
    if before_unified:
        return "旧格式", "unknown"  # a report from before the unified format is not held to it
    if status == "failed" or (status == "partial" and len([t for t in tables_found.split(",") if t]) < 3):
        return "无法判断", "unknown"
    if "error" in severities:
        return "需整改", "bad"
    if "warning" in severities:
        return "待核实", "check"
    return "合格", "good"


def page_name(agency: str) -> str:
    return f"agency-{hashlib.sha1(agency.encode('utf-8')).hexdigest()[:10]}.html"


def csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


# Below this many reports the pages are written in this process: starting workers and sending
# them their share of the frames would cost more than it saves.
PARALLEL_FROM = 1000


def render_all(
    frames: Frames, findings: pl.DataFrame, statuses: pl.DataFrame, book: Rulebook, out: Path,
    extra: dict | None = None, run: RunInfo | None = None, processes: int | None = None, parallel_from: int = PARALLEL_FROM,
) -> pl.DataFrame:
    """Write one page per agency and index.html; returns `source → html, region, verdict` for
    documents.csv. From `parallel_from` reports on, the agencies' pages are written by `processes`
    worker processes (default: the cores, up to 8), each given its agencies' share of the frames.

    `extra` may hold `regions` (agency identity → Region, from a manifest or the roster) and
    `unreported` (roster agencies with no report)."""
    extra = extra or {}
    run = run or run_info(book, frames.documents.height)
    rules = {r.id: r for r in book.rules}
    # One page per agency identity (淮安市洪泽区人民政府 and 洪泽区人民政府 share one), titled with
    # the fullest name any of its reports prints; reports with no agency each get their own page.
    docs = frames.documents.with_columns(
        pl.when(pl.col("agency_id").fill_null("") == "").then(pl.col("source").cast(pl.Utf8)).otherwise(pl.col("agency_id")).alias("agency_group")
    ).with_columns(
        pl.col("agency").sort_by(pl.col("agency").str.len_chars(), descending=True).first().over("agency_group").alias("agency_title")
    )
    groups = [(identity, group) for (identity,), group in docs.sort("report_year").group_by("agency_group", maintain_order=True)]
    needed = findings.filter(pl.col("line").is_not_null())["source"].cast(pl.Utf8).unique() if not findings.is_empty() else pl.Series("source", [], pl.Utf8)
    lines = frames.lines.filter(pl.col("source").cast(pl.Utf8).is_in(needed.implode())).select("source", "no", "text")
    shown_statuses = statuses.filter(pl.col("state") != "failed")
    inputs = (frames.cells, findings, frames.sections, shown_statuses, lines)
    given: dict[str, Region] = extra.get("regions", {})
    processes = max(1, processes or min(os.cpu_count() or 1, 8))
    if processes == 1 or docs.height < parallel_from:
        pages, index_rows = agency_pages(groups, *inputs, book, run, given, out)
    else:
        pages, index_rows = _in_workers(groups, inputs, book, run, given, out, processes)
    totals = _totals(findings, rules, index_rows)
    script = (Path(__file__).parent / "templates" / "index.js").read_text(encoding="utf-8")
    env = page_env()
    env.globals["run"] = run
    # NOTE: the script is our own file, never report text; Markup keeps it from being escaped.
    html = env.get_template("index.html").render(
        rows=index_rows, totals=totals, unreported=extra.get("unreported", []), csp=csp(script), script=Markup(script), categories=CATEGORIES
    )
    write_text(out / "index.html", html)
    return pl.DataFrame(pages, schema={"source": KEY, "html": pl.Utf8, "region": pl.Utf8, "verdict": pl.Utf8})


def _in_workers(groups: list, inputs: tuple, book: Rulebook, run: RunInfo, given: dict, out: Path, processes: int) -> tuple[list, list]:
    """`agency_pages` over contiguous shards of the agencies (about equal in reports), one per
    worker, each sent only its agencies' rows of the frames; the shards' rows are joined in order,
    so pages and index are what one process writes."""
    from concurrent.futures import ProcessPoolExecutor

    from audits.workers import process_context

    total = sum(group.height for _, group in groups)
    shards: list[list] = [[] for _ in range(processes)]
    done = 0
    for identity, group in groups:
        shards[min(done * processes // max(total, 1), processes - 1)].append((identity, group))
        done += group.height
    shards = [shard for shard in shards if shard]
    with ProcessPoolExecutor(max_workers=len(shards), mp_context=process_context()) as pool:
        futures = []
        for shard in shards:
            sources = pl.concat([group["source"].cast(pl.Utf8) for _, group in shard]).implode()
            share = tuple(frame.filter(pl.col("source").cast(pl.Utf8).is_in(sources)) for frame in inputs)
            futures.append(pool.submit(agency_pages, shard, *share, book, run, given, out))
        results = [future.result() for future in futures]
    return [row for pages, _ in results for row in pages], [row for _, rows in results for row in rows]


def agency_pages(groups: list, cells: pl.DataFrame, findings: pl.DataFrame, sections: pl.DataFrame, statuses: pl.DataFrame, lines: pl.DataFrame,
                 book: Rulebook, run: RunInfo, given: dict, out: Path) -> tuple[list[dict], list[dict]]:
    """Write the pages of the agencies `groups` ((identity, its documents) in order); returns the
    documents' page rows and the index rows."""
    env = page_env()
    env.globals["run"] = run
    rules = {r.id: r for r in book.rules}
    cells_by, findings_by, sections_by, statuses_by = _group(cells), _group(findings), _group(sections), _group(statuses)
    lines_by = {source: dict(zip(part["no"].to_list(), part["text"].to_list())) for source, part in _group(lines).items()}
    pages, index_rows = [], []
    for identity, group in groups:
        names = [n for n in dict.fromkeys(group["agency"].to_list()) if n]
        agency = group["agency_title"][0] or f"未识别机关（{Path(str(group['source'][0])).name}）"
        name = page_name(identity)
        reports = [
            _report_view(doc, findings_by.get(doc["source"]), cells_by.get(doc["source"]), sections_by.get(doc["source"]), statuses_by.get(doc["source"]), lines_by.get(doc["source"], {}), rules, book)
            for doc in group.iter_rows(named=True)
        ]
        seen: dict = {}
        for report in reports:
            seen[report.year] = seen.get(report.year, 0) + 1
            report.anchor = f"y{report.year or 'unknown'}" + (f"-{seen[report.year]}" if seen[report.year] > 1 else "")
        region = region_of(names, given)
        page = AgencyPage(
            agency=agency,
            kind=AGENCY_KINDS.get(group["agency_kind"][0] or "", "未知"),
            region=region.label if region else "",
            region_source=region.source if region else "",
            years=[r.year for r in reports],
            reports=reports,
            figures=_figures(group, cells_by) if len(reports) > 1 else [],
            counts=_counts([f for r in reports for f in r.findings]),
            categories=_category_counts([f.category for r in reports for f in r.findings if f.counts]),
        )
        write_text(out / name, env.get_template("agency.html").render(page=page, csp=csp(""), script=""))
        for r in reports:
            pages.append({"source": r.source, "html": name, "region": page.region or None, "verdict": r.verdict})
            counted = [f for f in r.findings if f.counts and f.severity != "info"]
            index_rows.append({
                "agency": agency, "page": f"{name}#{r.anchor}", "region": page.region, "year": r.year, "verdict": r.verdict, "verdict_class": r.verdict_class, **r.counts,
                "rules": [{"id": i, "title": rules[i].title} for i in sorted({f.rule_id for f in counted})],
                "all_rules": " ".join(sorted({f.rule_id for f in r.findings})),
                "categories": " ".join(sorted({f.category for f in counted})),
                "decisions": " ".join(sorted({f.decision or "pending" for f in r.findings if f.severity != "info"})),
                "has_error": r.counts["error"] > 0,
                "error_categories": {f.category for f in counted if f.severity == "error"},
            })
    return pages, index_rows


def _group(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    if frame.is_empty():
        return {}
    return {source: part for (source,), part in frame.group_by("source")}


def _counts(findings: list[FindingView]) -> dict[str, int]:
    """Findings per severity, a dismissed one left out, and how many were dismissed and confirmed."""
    counted = [f.severity for f in findings if f.counts]
    decided = [f.decision for f in findings]
    return {**{s: counted.count(s) for s in ("error", "warning", "info")}, **{d: decided.count(d) for d in DECISIONS}}


def _category_counts(categories: list[str]) -> dict[str, int]:
    return {c: categories.count(c) for c in CATEGORIES if categories.count(c)}


def _report_view(doc, findings, cells, sections, statuses, lines, rules: dict[str, Rule], book: Rulebook) -> ReportView:
    rows = findings.iter_rows(named=True) if findings is not None else []
    drawn = _DrawnTables(doc["template"], cells, book)
    views = [_finding_view(f, rules[f["rule_id"]], drawn, sections, lines) for f in rows]
    states = {state: [] for state in ("passed", "not_applicable", "undetermined")}
    for s in statuses.iter_rows(named=True) if statuses is not None else []:
        states[s["state"]].append({"id": s["rule_id"], "title": rules[s["rule_id"]].title, "reason": s["reason"]})
    label, css = verdict(doc["status"], doc["tables_found"] or "", [v.severity for v in views if v.counts], doc["template"] in book.earlier)
    source = Path(doc["source"]).resolve()
    return ReportView(
        anchor="",
        source=doc["source"],
        source_href=source.as_uri(),
        year=doc["report_year"],
        published=str(doc["published"] or "页面未标注"),
        template=TEMPLATES.get(doc["template"], doc["template"]),
        status=doc["status"],
        verdict=label,
        verdict_class=css,
        findings=views,
        passed=states["passed"],
        not_applicable=states["not_applicable"],
        undetermined=states["undetermined"],
        problems=doc["problems"] or "",
        ocr_lines=doc.get("ocr_lines") or 0,
        counts=_counts(views),
    )


def _finding_view(f: dict, rule: Rule, drawn: "_DrawnTables", sections, lines: dict) -> FindingView:
    keys = [k for k in (f.get("cells") or "").split(";") if k]
    tables = sorted({k.split(".")[0] for k in keys if k.split(".")[0] in TABLE_NUMERALS}, key=list(TABLE_NUMERALS).index)
    view = FindingView(
        rule_id=rule.id,
        title=rule.title,
        severity=f["severity"],
        category=f["category"],
        message=f["message"],
        evidence=f["evidence"],
        explanation=rule.explanation,
        basis=rule.basis,
        line=f.get("line"),
        quote=_quote(lines.get(f["line"], ""), f.get("quote") or "") if f.get("line") else {},
        tables=[drawn.view(t, set(keys)) for t in tables],
        fingerprint=f.get("fingerprint") or "",
        state=f.get("state") or "",
        decision=f.get("decision_state") or "",
        decision_by=f.get("decision_by") or "",
        decision_at=(f.get("decision_at") or "")[:16].replace("T", " "),
        decision_comment=f.get("decision_comment") or "",
        passages=marked(json.loads(f.get("passages") or "[]")),
    )
    if rule.check.kind == "sections" and sections is not None:
        view.outline = [{"numeral": s["numeral"] or "（无序号）", "title": s["title"], "line": s["line"]} for s in sections.sort("position").iter_rows(named=True)]
    return view


QUOTE_MAX = 400  # characters of a line shown around the sentence a finding quotes


def _quote(text: str, quote: str) -> dict:
    """The normalised line (the text the rules read), cut to QUOTE_MAX characters around the sentence
    the finding quotes, which is marked; an empty dict when the line is empty."""
    text = text.strip()
    if not text:
        return {}
    start = text.find(quote) if quote else -1
    if start < 0:
        cut = text[:QUOTE_MAX]
        return {"before": cut + ("…" if len(text) > QUOTE_MAX else ""), "mark": "", "after": ""}
    mark = quote[:QUOTE_MAX]
    lo = max(min(start - (QUOTE_MAX - len(mark)) // 2, len(text) - QUOTE_MAX), 0)
    hi = min(lo + QUOTE_MAX, len(text))
    return {
        "before": ("…" if lo else "") + text[lo:start],
        "mark": mark,
        "after": text[start + len(mark):hi] + ("…" if hi < len(text) else ""),
    }


class _DrawnTables:
    """A report's three tables in its template's layout, laid out once and marked per finding."""

    def __init__(self, template: str, cells: pl.DataFrame | None, book: Rulebook):
        self.layout = book.layouts.get(template) or book.layouts.get("2021") or next(iter(book.layouts.values()))
        self.book = book
        self.printed: dict[str, dict] = {}
        if cells is not None:
            for c in cells.iter_rows(named=True):
                self.printed.setdefault(c["table"], {})[(c["row"], c["col"])] = c
        self.base: dict[str, tuple] = {}

    def view(self, table: str, hits: set[str]) -> TableView:
        cols, rows = self.base.get(table) or self.base.setdefault(table, self._lay_out(table))
        marked = []
        for key, label, cells in rows:
            row_hit = f"{table}.{key}" in hits
            html = "".join(hit if row_hit or cell_key in hits else plain for cell_key, plain, hit in cells)
            marked.append((label, Markup(html)))
        return TableView(table, self.book.labels.section(table), cols, marked)

    def _lay_out(self, table: str) -> tuple:
        """Each cell as HTML twice (plain, marked): a page draws the same table for many findings.

        The printed text is escaped here with markupsafe, exactly as autoescape would.
        """
        spec = self.layout.tables[table]
        printed = self.printed.get(table, {})
        own = {r.key for r in spec.rows}
        others = [r for lay in self.book.layouts.values() for r in lay.tables[table].rows if r.key not in own and any(k[0] == r.key for k in printed)]
        rows = []
        for row in list(spec.rows) + others:
            cells = []
            for col in spec.row_cols(row):
                cell = printed.get((row.key, col))
                flag = (cell or {}).get("flag") or ("absent" if cell is None else "")
                key = f"{table}.{row.key}.{col}"
                text = escape(_cell_text(cell))
                cells.append((key, f'<td class="{flag}" data-key="{key}">{text}</td>', f'<td class="hit {flag}" data-key="{key}">{text}</td>'))
            rows.append((row.key, row.label, cells))
        all_cols = list(dict.fromkeys(c for r in spec.rows for c in spec.row_cols(r)))
        return [(c, spec.col_labels.get(c, c)) for c in all_cols], rows


def _cell_text(cell: dict | None) -> str:
    if cell is None:
        return "—"
    if cell["value"] is None:
        return cell["raw"] or "（空）"
    return number(cell["value"])


def _figures(group: pl.DataFrame, cells_by: dict) -> list[dict]:
    rows = []
    for table, row, col, label in KEY_FIGURES:
        values = []
        for source in group["source"].to_list():
            part = cells_by.get(source)
            hit = part.filter((pl.col("table") == table) & (pl.col("row") == row) & (pl.col("col") == col)) if part is not None else None
            values.append(_cell_text(hit.row(0, named=True)) if hit is not None and hit.height else "—")
        rows.append({"label": label, "values": values})
    return rows


def _percent(part: int, whole: int) -> str:
    """A share as reviewers read it: 25%, 33.3% (never 50.0%)."""
    if not whole:
        return "—"
    return f"{100 * part / whole:.1f}".removesuffix(".0") + "%"


def _totals(findings: pl.DataFrame, rules: dict[str, Rule], rows: list[dict]) -> dict:
    """The index's roll-ups, dismissed findings left out: per rule, per category (findings and the
    share of reports with an error of it) and per region (reports, verdicts, the share with an error)."""
    reports = len(rows)
    by_region: dict[str, dict] = {}
    for row in rows:
        entry = by_region.setdefault(row["region"] or "（地区不详）", {"reports": 0, "with_error": 0, **{v: 0 for v in VERDICTS}})
        entry["reports"] += 1
        entry["with_error"] += row["has_error"]
        entry[row["verdict"]] += 1
    regions = [{"region": k, **v, "share": _percent(v["with_error"], v["reports"])} for k, v in sorted(by_region.items(), key=lambda kv: (kv[0] == "（地区不详）", kv[0]))]
    if findings.is_empty():
        return {"by_rule": [], "by_category": [], "categories": [], "regions": regions, "max": 1, "reports": reports}
    kept = findings.filter(pl.col("decision_state").fill_null("") != "dismissed") if "decision_state" in findings.columns else findings
    dismissed = findings.height - kept.height
    # Ties in order of the names: group_by's own order changes from one run to the next.
    by_rule = kept.group_by("rule_id", "severity").len().sort(["len", "rule_id", "severity"], descending=[True, False, False])
    gone = dict(findings.filter(pl.col("decision_state") == "dismissed").group_by("rule_id").len().iter_rows()) if dismissed else {}
    by_category = kept.filter(pl.col("severity") != "info").group_by("category").len().sort(["len", "category"], descending=[True, False])
    severities = {(c, s): n for c, s, n in kept.group_by("category", "severity").len().iter_rows()}
    categories = []
    for key, label in CATEGORIES.items():
        errors, warnings = severities.get((key, "error"), 0), severities.get((key, "warning"), 0)
        if errors or warnings:
            with_error = sum(key in row["error_categories"] for row in rows)
            categories.append({"label": label, "error": errors, "warning": warnings, "with_error": with_error, "share": _percent(with_error, reports)})
    return {
        "by_rule": [{"id": r, "title": rules[r].title, "severity": s, "n": n, "dismissed": gone.get(r, 0)} for r, s, n in by_rule.iter_rows()]
        + [{"id": r, "title": rules[r].title, "severity": rules[r].severity, "n": 0, "dismissed": n} for r, n in gone.items() if r not in set(by_rule["rule_id"].to_list())],
        "by_category": [{"key": c, "label": CATEGORIES.get(c, c), "n": n} for c, n in by_category.iter_rows()],
        "categories": categories,
        "regions": regions,
        "max": max(by_category["len"].to_list() or [1]),
        "reports": reports,
    }
