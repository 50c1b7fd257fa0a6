"""Rule files (rules/*.yaml) → validated `Rule`s. Every error names file, line and column."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator

from audits.checks import Check, ClaimCheck, CrossYearCheck, IdentityCheck, LexiconCheck
from audits.layouts import Layout, load_layouts
from audits.yamlio import YamlFileError, position, read_yaml, validate

CATEGORIES = (
    "table_identity",
    "cross_year",
    "table_completeness",
    "mandatory_section",
    "date_range",
    "contact_info",
    "claim_contradiction",
    "timeliness",
    "template_version",
    "content_integrity",
    "parse_error",
)
SEVERITIES = ("error", "warning", "info")


class AppliesTo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    templates: list[str] = Field(default_factory=list)  # empty: every template
    agency_kinds: list[str] = Field(default_factory=list)
    report_years: dict[str, int] = Field(default_factory=dict)  # {from: 2021, to: 2024}

    @field_validator("templates", mode="before")
    @classmethod
    def _as_text(cls, value):
        return [str(v) for v in value]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")
    title: str
    category: str
    severity: str
    basis: str
    explanation: str
    message: str
    applies_to: AppliesTo = AppliesTo()
    check: Check
    family: str = ""

    @field_validator("category")
    @classmethod
    def _category(cls, value):
        if value not in CATEGORIES:
            raise ValueError(f"category 必须是 {', '.join(CATEGORIES)} 之一")
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value):
        if value not in SEVERITIES:
            raise ValueError("severity 必须是 error、warning 或 info")
        return value


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str
    rules: list[dict]


@dataclass(frozen=True)
class Rulebook:
    rules: list[Rule]
    layouts: dict[str, Layout]
    folder: Path

    def by_id(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)


def load_rulebook(folder: Path) -> Rulebook:
    """All rule files of a folder and its `templates/` layouts, checked as a whole."""
    if not folder.is_dir():
        raise YamlFileError(folder, 1, 1, "规则目录不存在")
    layouts = load_layouts(folder / "templates")
    if not layouts:
        raise YamlFileError(folder / "templates", 1, 1, "没有模板版式文件（templates/*.yaml）")
    rules: list[Rule] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.y*ml")):
        doc = read_yaml(path)
        rule_file = validate(path, doc, RuleFile)
        for i, node in enumerate(doc["rules"]):
            rule = validate(path, node, Rule).model_copy(update={"family": rule_file.family})
            line, col = position(doc, ("rules", i))
            if rule.id in seen:
                raise YamlFileError(path, line, col, f"规则编号 {rule.id} 重复（已见于 {seen[rule.id].name}）")
            _check_semantics(rule, layouts, path, node)
            seen[rule.id] = path
            rules.append(rule)
    return Rulebook(rules, layouts, folder)


def _check_semantics(rule: Rule, layouts: dict[str, Layout], path: Path, node) -> None:
    """What pydantic cannot see: table and cell keys exist, expressions and patterns parse."""

    def fail(message: str, *loc) -> None:
        line, col = position(node, ("check", *loc))
        raise YamlFileError(path, line, col, f"{rule.id}: {message}")

    check = rule.check
    tables = {name for layout in layouts.values() for name in layout.tables}
    if isinstance(check, (IdentityCheck, CrossYearCheck)):
        if check.table not in tables:
            fail(f"未知的表 {check.table}", "table")
        try:
            identity_sides(check.expr)
        except ValueError as exc:
            fail(str(exc), "expr")
    if isinstance(check, ClaimCheck):
        for i, figure in enumerate(check.figure):
            if len(figure.split(".")) != 3 or figure.split(".")[0] not in tables:
                fail(f"单元格键 {figure} 应为 表.行.列", "figure", i)
        for field in ("pattern", "unless"):
            try:
                re.compile(getattr(check, field))
            except re.error as exc:
                fail(f"正则表达式无效: {exc}", field)
    if isinstance(check, LexiconCheck):
        for i, pattern in enumerate(check.patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                fail(f"正则表达式无效: {exc}", "patterns", i)


_COMPARISON = re.compile(r"(<=|>=|=)")


def identity_sides(expr: str) -> tuple[pl.Expr, str, pl.Expr]:
    """`a + b = c` → (expr a + b, "=", expr c), parsed by Polars' SQL parser — never `eval`."""
    parts = _COMPARISON.split(expr)
    if len(parts) != 3:
        raise ValueError(f"表达式应有且只有一个 =、<= 或 >=: {expr}")
    lhs, op, rhs = (p.strip() for p in parts)
    try:
        return pl.sql_expr(_sql(lhs)), op, pl.sql_expr(_sql(rhs))
    except Exception as exc:  # noqa: BLE001 - polars raises several error types for bad SQL
        raise ValueError(f"表达式无法解析: {expr} ({exc})") from None


def identity_names(expr: str) -> list[str]:
    """The cell keys an identity names (`leaves` included as is)."""
    return [n for n in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)]


def _sql(side: str) -> str:
    # Quote identifiers so that keys like `other` are never read as SQL keywords.
    return re.sub(r"[A-Za-z_][A-Za-z0-9_]*", lambda m: f'"{m.group(0)}"', side)


def applies_expr(rule: Rule) -> pl.Expr:
    """Where a rule applies, as a Polars expression over the documents frame (vectorised over a batch)."""
    a = rule.applies_to
    cond = pl.lit(True)
    if a.templates:
        cond &= pl.col("template").is_in(a.templates)
    if a.agency_kinds:
        cond &= pl.col("agency_kind").is_in(a.agency_kinds)
    if "from" in a.report_years:
        cond &= pl.col("report_year").fill_null(9999) >= a.report_years["from"]
    if "to" in a.report_years:
        cond &= pl.col("report_year").fill_null(0) <= a.report_years["to"]
    return cond
