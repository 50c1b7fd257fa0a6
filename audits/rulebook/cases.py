"""Rule cases: each rule's passing and failing reports, run against any rules folder.

`<rules>/cases/<RULE-ID>.yaml` holds one rule's cases (sqlfluff style). A case is a report — the
clean report `<rules>/cases/clean_2021.md` with `replace:` edits (each `old` must occur), a `text:`
given inline, a real `report:` under the shared folder, or only `cells:` — optionally with `doc:`
fields and `cells:` overriding what was parsed, a `previous:` and/or `next:` year's report of the
same agency, and an `other:` report of another agency judged in the same batch (for rules that
compare agencies), each built the same way. It says which
`findings:` the rule must give (each matched by severity, and text contained in message and
evidence, cells contained in its cells) and, optionally, the rule's `state:` for the report.

Every selected case's report goes into one batch, judged by the whole rulebook once. A case built
from the clean report must fail for one reason only: no other rule may find anything in it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from audits.frames import build_frames
from audits.ingest import read_bytes
from audits.model import Cell, Finding, ParsedReport
from audits.parse.report import parse
from audits.rulebook.book import Rulebook
from audits.yamlio import plain, read_yaml

CLEAN = "clean_2021"
_OTHER_YEARS = ("previous", "next")  # the same agency's reports of the years around the case's


@dataclass(frozen=True)
class Case:
    rule: str
    name: str
    spec: dict = field(repr=False)

    @property
    def id(self) -> str:
        return f"{self.rule}::{self.name}"

    @property
    def needs_shared(self) -> bool:
        return "report" in self.spec or any("report" in (self.spec.get(k) or {}) for k in (*_OTHER_YEARS, "other"))


@dataclass
class Outcome:
    case: Case
    problems: list[str]  # empty when the case holds
    skipped: str = ""


def load_cases(folder: Path) -> list[Case]:
    """Every case of `<folder>/cases/*.yaml`, in file and case order."""
    cases = []
    for path in sorted((folder / "cases").glob("*.yaml")):
        doc = plain(read_yaml(path))
        cases.extend(Case(doc["rule"], name, spec or {}) for name, spec in doc["cases"].items())
    return cases


def run_cases(book: Rulebook, cases: list[Case], shared: Path | None) -> list[Outcome]:
    """Judge every case's report in one batch with the whole rulebook, then hold each to its case."""
    from audits.engines.run import run_rules
    from audits.settle import settle_batch

    outcomes: dict[str, Outcome] = {}
    reports: list[ParsedReport] = []
    built = _Builder(book, shared)
    for case in cases:
        if case.needs_shared and (shared is None or not (shared / "seeds").is_dir()):
            outcomes[case.id] = Outcome(case, [], skipped=f"需要共享资料目录（{shared or '未指定'}）中的真实报告")
            continue
        try:
            reports += built.reports(case)
        except (AssertionError, OSError) as exc:
            outcomes[case.id] = Outcome(case, [f"无法构造此用例的报告：{exc}"])
    frames = build_frames(reports)
    # Each case is its own agency, so that cross-year rules pair a case only with its own `previous`;
    # its `other` report is another agency.
    frames.documents = frames.documents.with_columns(
        pl.col("source").cast(pl.Utf8).str.replace(r"#(previous|next)$", "").alias("agency_id")
    )
    frames = settle_batch(frames, book.layouts)
    judgement = run_rules(book, frames)
    found: dict[str, list[Finding]] = {}
    for f in judgement.findings:
        found.setdefault(f.source, []).append(f)
    states = {(str(s), r): (st, why) for s, r, st, why in judgement.statuses.iter_rows()}
    for case in cases:
        if case.id not in outcomes:
            outcomes[case.id] = Outcome(case, _hold(case, found.get(_source(case), []), states.get((_source(case), case.rule))))
    return [outcomes[c.id] for c in cases]


def _source(case: Case) -> str:
    return f"case/{case.id}"


def _hold(case: Case, findings: list[Finding], state: tuple[str, str] | None) -> list[str]:
    """What is wrong with the case's outcome (nothing when it holds), in the rule author's words."""
    problems = []
    mine = [f for f in findings if f.rule_id == case.rule]
    want = case.spec.get("findings") or []
    shown = lambda fs: "；".join(f"[{f.severity}] {f.message} | {f.evidence}" for f in fs) or "无"  # noqa: E731
    if len(mine) != len(want):
        problems.append(f"应有 {len(want)} 条发现，实际 {len(mine)} 条：{shown(mine)}")
    unmatched = list(mine)
    for w in want:
        hit = next((f for f in unmatched if _matches(f, w)), None)
        if hit is None:
            problems.append(f"没有符合 {w} 的发现；实际的发现：{shown(unmatched)}")
        else:
            unmatched.remove(hit)
    expected_state = case.spec.get("state") or ("failed" if want else "passed")
    if state is None or state[0] != expected_state:
        problems.append(f"规则对此报告的状态应为 {expected_state}，实际为 {state[0] if state else '无'}（{state[1] if state else ''}）")
    if "base" in case.spec:
        others = [f for f in findings if f.rule_id != case.rule]
        if others:
            problems.append("用例不止一处问题，其他规则也有发现：" + "；".join(f"{f.rule_id}: {f.message}" for f in others))
    return problems


def _matches(found: Finding, want: dict) -> bool:
    return (
        found.severity == want.get("severity", found.severity)
        and want.get("message", "") in found.message
        and want.get("evidence", "") in found.evidence
        and set(want.get("cells", [])) <= {c.key for c in found.cells}
    )


class _Builder:
    """Builds case reports; a real report or the clean report is read and parsed once, then copied."""

    def __init__(self, book: Rulebook, shared: Path | None):
        self.book, self.shared = book, shared
        self.parsed: dict[tuple, ParsedReport] = {}

    def reports(self, case: Case) -> list[ParsedReport]:
        """The case's report, after its `previous:` and `next:` years' reports and its `other:`
        agency's report when it has them."""
        others = [self._report(case.spec[k], f"{_source(case)}#{k}") for k in (*_OTHER_YEARS, "other") if k in case.spec]
        return [*others, self._report(case.spec, _source(case))]

    def _report(self, spec: dict, source: str) -> ParsedReport:
        if "base" in spec:
            text = (self.book.folder / "cases" / f"{spec['base']}.md").read_text(encoding="utf-8")
            for old, new in spec.get("replace", []):
                assert old in text, f"replace: {old!r} 不在 {spec['base']} 中"
                text = text.replace(old, new)
            report = self._parse(("text", text), lambda: text.encode("utf-8"))
        elif "text" in spec:
            report = self._parse(("text", spec["text"]), lambda: spec["text"].encode("utf-8"))
        elif "report" in spec:
            path = self.shared / spec["report"]
            report = self._parse(("path", str(path)), path.read_bytes)
        else:
            report = ParsedReport(
                source="", status="parsed", agency="示例市交通运输局", agency_kind="department",
                report_year=2024, template="2021", tables_found=("active", "applications", "review_litigation"),
            )
        report = dataclasses.replace(report, source=source, cells=list(report.cells), problems=list(report.problems))
        for name, value in (spec.get("doc") or {}).items():
            if name in ("published", "signed") and value is not None and not isinstance(value, dt.date):
                value = dt.date.fromisoformat(str(value))
            setattr(report, name, value)
        if spec.get("cells"):
            report.cells = _override_cells(report.cells, spec["cells"])
        return report

    def _parse(self, key: tuple, data) -> ParsedReport:
        if key not in self.parsed:
            self.parsed[key] = parse(read_bytes("case", data()), {**self.book.layouts, **self.book.earlier})
        return self.parsed[key]


def _override_cells(cells: list[Cell], override: dict) -> list[Cell]:
    """table → row → col → value (null: a blank cell; "flag:value" pins a parser flag, e.g. "ambiguous:12")."""
    by_key = {(c.table, c.row, c.col): c for c in cells}
    for table, rows in override.items():
        for row, cols in rows.items():
            for col, value in cols.items():
                flag, raw = ("blank", "") if value is None else ("", str(value))
                if isinstance(value, str):
                    flag, _, raw = value.partition(":")
                    value = float(raw) if raw else None
                by_key[(table, row, col)] = Cell(table, row, col, None if value is None else float(value), raw, flag, 1)
    return list(by_key.values())
