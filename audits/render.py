"""HTML audit summaries: one page per agency and an index, self-contained and safe to open.

Report text is hostile: every value goes through Jinja2 autoescape (no `|safe` on report text),
and the pages carry a Content-Security-Policy that allows only their own inline script and style.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from audits.frames import KEY, Frames
from audits.outputs import write_text
from audits.rulebook.book import Rule, Rulebook
from audits.vocabulary import AGENCY_KINDS, CATEGORIES, SEVERITIES, STATUSES, TABLE_NUMERALS, TEMPLATES, number

KEY_FIGURES = [
    ("applications", "new_received", "total", "本年新收申请"),
    ("applications", "carried_over", "total", "上年结转"),
    ("applications", "total_processed", "total", "办理结果总计"),
    ("applications", "carried_forward", "total", "结转下年度"),
    ("review_litigation", "review", "total", "行政复议总计"),
    ("review_litigation", "lit_direct", "total", "直接起诉总计"),
    ("review_litigation", "lit_after_review", "total", "复议后起诉总计"),
]


def page_env() -> Environment:
    env = Environment(
        loader=PackageLoader("audits", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(SEVERITY_ZH=SEVERITIES, CATEGORY_ZH=CATEGORIES, STATUS_ZH=STATUSES)
    return env


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
    decision: str = ""


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
    counts: dict[str, int]


@dataclass
class AgencyPage:
    """The context of agency.html (every field the template may use)."""

    agency: str
    kind: str
    region: str
    years: list
    reports: list[ReportView]
    figures: list[dict]  # key figures per year, when the batch holds several
    counts: dict[str, int]
    categories: dict[str, int]


def verdict(status: str, tables_found: str, severities: list[str], before_unified: bool = False) -> tuple[str, str]:
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


def render_all(frames: Frames, findings: pl.DataFrame, statuses: pl.DataFrame, book: Rulebook, out: Path, extra: dict | None = None) -> pl.DataFrame:
    """Write one page per agency and index.html; returns `source → html` for documents.csv."""
    env = page_env()
    script = (Path(__file__).parent / "templates" / "index.js").read_text(encoding="utf-8")
    rules = {r.id: r for r in book.rules}
    # One page per agency identity (淮安市洪泽区人民政府 and 洪泽区人民政府 share one), titled with
    # the fullest name any of its reports prints; reports with no agency each get their own page.
    docs = frames.documents.with_columns(
        pl.when(pl.col("agency_id").fill_null("") == "").then(pl.col("source").cast(pl.Utf8)).otherwise(pl.col("agency_id")).alias("agency_group")
    ).with_columns(
        pl.col("agency").sort_by(pl.col("agency").str.len_chars(), descending=True).first().over("agency_group").alias("agency_title")
    )
    cells_by = _group(frames.cells)
    findings_by = _group(findings)
    sections_by = _group(frames.sections)
    statuses_by = _group(statuses.filter(pl.col("state") != "failed"))
    lines_by = {}
    needed = set(findings.filter(pl.col("line").is_not_null())["source"].to_list()) if not findings.is_empty() else set()
    if needed:
        for (source,), part in frames.lines.filter(pl.col("source").is_in(list(needed))).group_by("source"):
            lines_by[source] = dict(zip(part["no"].to_list(), part["text"].to_list()))
    pages, index_rows = [], []
    for (identity,), group in docs.sort("report_year").group_by("agency_group", maintain_order=True):
        agency = group["agency_title"][0] or "（未识别机关）"
        name = page_name(identity)
        reports = [
            _report_view(doc, findings_by.get(doc["source"]), cells_by.get(doc["source"]), sections_by.get(doc["source"]), statuses_by.get(doc["source"]), lines_by.get(doc["source"], {}), rules, book)
            for doc in group.iter_rows(named=True)
        ]
        seen: dict = {}
        for report in reports:
            seen[report.year] = seen.get(report.year, 0) + 1
            report.anchor = f"y{report.year}" + (f"-{seen[report.year]}" if seen[report.year] > 1 else "")
        page = AgencyPage(
            agency=agency,
            kind=AGENCY_KINDS.get(group["agency_kind"][0] or "", "未知"),
            region=(extra or {}).get("regions", {}).get(agency, ""),
            years=[r.year for r in reports],
            reports=reports,
            figures=_figures(group, cells_by) if len(reports) > 1 else [],
            counts=_counts([f.severity for r in reports for f in r.findings]),
            categories=_category_counts([f.category for r in reports for f in r.findings]),
        )
        write_text(out / name, env.get_template("agency.html").render(page=page, csp=csp(""), script=""))
        for r in reports:
            pages.append({"source": r.source, "html": name})
            index_rows.append({"agency": agency, "page": f"{name}#{r.anchor}", "region": page.region, "year": r.year, "verdict": r.verdict, "verdict_class": r.verdict_class, **r.counts, "rules": " ".join(sorted({f.rule_id for f in r.findings if f.severity != "info"})), "all_rules": " ".join(sorted({f.rule_id for f in r.findings})), "categories": " ".join(sorted({f.category for f in r.findings if f.severity != "info"}))})
    totals = _totals(findings, rules)
    missing = (extra or {}).get("unreported", [])
    # NOTE: the script is our own file, never report text; Markup keeps it from being escaped.
    html = env.get_template("index.html").render(
        rows=index_rows, totals=totals, unreported=missing, csp=csp(script), script=Markup(script), categories=CATEGORIES
    )
    write_text(out / "index.html", html)
    return pl.DataFrame(pages, schema={"source": KEY, "html": pl.Utf8})


def _group(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    if frame.is_empty():
        return {}
    return {source: part for (source,), part in frame.group_by("source")}


def _counts(severities: list[str]) -> dict[str, int]:
    return {s: severities.count(s) for s in ("error", "warning", "info")}


def _category_counts(categories: list[str]) -> dict[str, int]:
    return {c: categories.count(c) for c in CATEGORIES if categories.count(c)}


def _report_view(doc, findings, cells, sections, statuses, lines, rules: dict[str, Rule], book: Rulebook) -> ReportView:
    rows = findings.iter_rows(named=True) if findings is not None else []
    drawn = _DrawnTables(doc["template"], cells, book)
    views = [_finding_view(f, rules[f["rule_id"]], drawn, sections, lines) for f in rows]
    states = {state: [] for state in ("passed", "not_applicable", "undetermined")}
    for s in statuses.iter_rows(named=True) if statuses is not None else []:
        states[s["state"]].append({"id": s["rule_id"], "title": rules[s["rule_id"]].title, "reason": s["reason"]})
    label, css = verdict(doc["status"], doc["tables_found"] or "", [v.severity for v in views], doc["template"] in book.earlier)
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
        counts=_counts([v.severity for v in views]),
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
        decision=f.get("decision") or "",
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


def _totals(findings: pl.DataFrame, rules: dict[str, Rule]) -> dict:
    if findings.is_empty():
        return {"by_rule": [], "by_category": [], "max": 1}
    # Ties in order of the names: group_by's own order changes from one run to the next.
    by_rule = findings.group_by("rule_id", "severity").len().sort(["len", "rule_id", "severity"], descending=[True, False, False])
    by_category = findings.filter(pl.col("severity") != "info").group_by("category").len().sort(["len", "category"], descending=[True, False])
    return {
        "by_rule": [{"id": r, "title": rules[r].title, "severity": s, "n": n} for r, s, n in by_rule.iter_rows()],
        "by_category": [{"key": c, "label": CATEGORIES.get(c, c), "n": n} for c, n in by_category.iter_rows()],
        "max": max(by_category["len"].to_list() or [1]),
    }
