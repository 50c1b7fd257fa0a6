"""HTML audit summaries: one page per agency and an index, self-contained and safe to open.

Report text is hostile: every value goes through Jinja2 autoescape (no `|safe` on report text),
and the pages carry a Content-Security-Policy that allows only their own inline script and style.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from audits.frames import KEY, Frames
from audits.outputs import write_text
from audits.rulebook import Rule, Rulebook

SEVERITY_ZH = {"error": "错误", "warning": "警告", "info": "提示"}
CATEGORY_ZH = {
    "table_identity": "表格勾稽",
    "cross_year": "跨年度核对",
    "table_completeness": "表格完整性",
    "mandatory_section": "必备内容",
    "date_range": "统计期限",
    "contact_info": "联系方式",
    "claim_contradiction": "正文与表格矛盾",
    "timeliness": "发布时限",
    "template_version": "格式版本",
    "content_integrity": "内容完整与安全",
    "parse_error": "文件读取",
}
TABLE_ZH = {"active": "二、主动公开政府信息情况", "applications": "三、收到和处理政府信息公开申请情况", "review_litigation": "四、政府信息公开行政复议、行政诉讼情况"}
KEY_FIGURES = [
    ("applications", "new_received", "total", "本年新收申请"),
    ("applications", "carried_over", "total", "上年结转"),
    ("applications", "total_processed", "total", "办理结果总计"),
    ("applications", "carried_forward", "total", "结转下年度"),
    ("review_litigation", "review", "total", "行政复议总计"),
    ("review_litigation", "lit_direct", "total", "直接起诉总计"),
    ("review_litigation", "lit_after_review", "total", "复议后起诉总计"),
]


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("audits", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(SEVERITY_ZH=SEVERITY_ZH, CATEGORY_ZH=CATEGORY_ZH)
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
    source: str
    source_href: str
    year: int | None
    published: str
    template: str
    status: str
    verdict: str
    verdict_class: str
    findings: list[FindingView]
    passed: list[dict]
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
    csp: str = ""


def verdict(status: str, tables_found: str, severities: list[str]) -> tuple[str, str]:
    if status == "failed" or (status == "partial" and len([t for t in tables_found.split(",") if t]) < 3):
        return "无法判断", "unknown"
    if "error" in severities:
        return "需整改", "bad"
    if "warning" in severities:
        return "待核实", "check"
    return "合格", "good"


def page_name(agency: str) -> str:
    return f"agency-{hashlib.sha1(agency.encode('utf-8')).hexdigest()[:10]}.html"


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def render_all(frames: Frames, findings: pl.DataFrame, book: Rulebook, out: Path, extra: dict | None = None) -> pl.DataFrame:
    """Write one page per agency and index.html; returns `source → html` for documents.csv."""
    env = _env()
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
            _report_view(doc, findings_by.get(doc["source"]), cells_by.get(doc["source"]), sections_by.get(doc["source"]), lines_by.get(doc["source"], {}), rules, book)
            for doc in group.iter_rows(named=True)
        ]
        page = AgencyPage(
            agency=agency,
            kind={"department": "政府部门", "government": "人民政府（管委会）", "township": "乡镇（街道）"}.get(group["agency_kind"][0] or "", "未知"),
            region=(extra or {}).get("regions", {}).get(agency, ""),
            years=[r.year for r in reports],
            reports=reports,
            figures=_figures(group, cells_by) if len(reports) > 1 else [],
            counts=_counts([f.severity for r in reports for f in r.findings]),
            categories=_category_counts([f.category for r in reports for f in r.findings]),
        )
        write_text(out / name, env.get_template("agency.html").render(page=page, csp=_csp(""), script=""))
        for r in reports:
            pages.append({"source": r.source, "html": name})
            index_rows.append({"agency": agency, "page": name, "region": page.region, "year": r.year, "verdict": r.verdict, "verdict_class": r.verdict_class, **r.counts, "rules": " ".join(sorted({f.rule_id for f in r.findings if f.severity != "info"})), "all_rules": " ".join(sorted({f.rule_id for f in r.findings})), "categories": " ".join(sorted({f.category for f in r.findings if f.severity != "info"}))})
    totals = _totals(findings, rules)
    missing = (extra or {}).get("unreported", [])
    # NOTE: the script is our own file, never report text; Markup keeps it from being escaped.
    html = env.get_template("index.html").render(
        rows=index_rows, totals=totals, unreported=missing, csp=_csp(script), script=Markup(script), categories=CATEGORY_ZH
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
    return {c: categories.count(c) for c in CATEGORY_ZH if categories.count(c)}


def _report_view(doc, findings, cells, sections, lines, rules: dict[str, Rule], book: Rulebook) -> ReportView:
    rows = findings.iter_rows(named=True) if findings is not None else []
    drawn = _DrawnTables(doc["template"], cells, book)
    views = [_finding_view(f, rules[f["rule_id"]], drawn, sections, lines) for f in rows]
    failed_rules = {v.rule_id for v in views}
    passed = [{"id": r.id, "title": r.title} for r in rules.values() if r.id not in failed_rules]
    label, css = verdict(doc["status"], doc["tables_found"] or "", [v.severity for v in views])
    source = Path(doc["source"]).resolve()
    return ReportView(
        source=doc["source"],
        source_href=source.as_uri(),
        year=doc["report_year"],
        published=str(doc["published"] or "页面未标注"),
        template={"2019": "2019 年版", "2021": "2021 年版", "mixed": "新旧混用", "unknown": "未识别"}.get(doc["template"], doc["template"]),
        status=doc["status"],
        verdict=label,
        verdict_class=css,
        findings=views,
        passed=passed,
        problems=doc["problems"] or "",
        counts=_counts([v.severity for v in views]),
    )


def _finding_view(f: dict, rule: Rule, drawn: "_DrawnTables", sections, lines: dict) -> FindingView:
    keys = [k for k in (f.get("cells") or "").split(";") if k]
    tables = sorted({k.split(".")[0] for k in keys if k.split(".")[0] in TABLE_ZH}, key=list(TABLE_ZH).index)
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
        quote=_quote(lines.get(f["line"], ""), f["evidence"] or "") if f.get("line") else {},
        tables=[drawn.view(t, set(keys)) for t in tables],
        fingerprint=f.get("fingerprint") or "",
        state=f.get("state") or "",
        decision=f.get("decision") or "",
    )
    if rule.category == "mandatory_section" and sections is not None and rule.id.startswith("SEC"):
        view.outline = [{"numeral": s["numeral"] or "（无序号）", "title": s["title"], "line": s["line"]} for s in sections.sort("position").iter_rows(named=True)]
    return view


QUOTE_MAX = 400  # characters of a line shown around the sentence a finding quotes
_QUOTED = re.compile(r"第\s*\d+\s*行[^：“]*：“")


def _quote(text: str, evidence: str) -> dict:
    """The normalised line (the text the rules read), cut to QUOTE_MAX characters around the sentence
    the evidence quotes (`第N行：“…”`), which is marked; an empty dict when the line is empty."""
    text = text.strip()
    if not text:
        return {}
    mark, start = "", -1
    found = _QUOTED.search(evidence)
    if found:
        rest = evidence[found.end():]
        # the sentence may hold quotes of its own: take the longest “…” span that occurs in the line
        for end in sorted((i for i, ch in enumerate(rest) if ch == "”"), reverse=True):
            if rest[:end] and rest[:end] in text:
                mark, start = rest[:end], text.index(rest[:end])
                break
    if start < 0:
        cut = text[:QUOTE_MAX]
        return {"before": cut + ("…" if len(text) > QUOTE_MAX else ""), "mark": "", "after": ""}
    mark = mark[:QUOTE_MAX]
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
        return TableView(table, TABLE_ZH[table], cols, marked)

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
    value = cell["value"]
    return str(int(value)) if value == int(value) else f"{value:g}"


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
    by_rule = findings.group_by("rule_id", "severity").len().sort("len", descending=True)
    by_category = findings.filter(pl.col("severity") != "info").group_by("category").len().sort("len", descending=True)
    return {
        "by_rule": [{"id": r, "title": rules[r].title, "severity": s, "n": n} for r, s, n in by_rule.iter_rows()],
        "by_category": [{"key": c, "label": CATEGORY_ZH.get(c, c), "n": n} for c, n in by_category.iter_rows()],
        "max": max(by_category["len"].to_list() or [1]),
    }
