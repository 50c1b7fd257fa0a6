"""Rule files (rules/*.yaml) → validated `Rule`s, every mistake named with file, line and column.

A rule is data: id, title, category, severity, basis, explanation, message and a `check:` block of
one registered kind. Loading checks everything a rule names before anything runs: the kind and its
engine, tables, rows, columns and cell keys against the layouts of the templates the rule applies
to, names inside expressions, `{placeholders}` against the kind's, regular expressions compiled by
the engine that will run them, section keys. All mistakes of a folder are reported together.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audits.engines import ENGINES
from audits.kinds import KINDS, Check, Scope
from audits.layouts import Layout, load_layouts
from audits.vocabulary import AGENCY_KINDS, CATEGORIES, SEVERITIES, Labels
from audits.yamlio import YamlFileError, plain, position, pydantic_errors, read_yaml, validate, value_position

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class AppliesTo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    templates: list[str] = Field(default_factory=list)  # empty: every template
    agency_kinds: list[str] = Field(default_factory=list)
    report_years: dict[str, int] = Field(default_factory=dict)  # {from: 2021, to: 2024}
    earlier_formats: bool = False  # also reports in a format before the unified one (2018 and earlier)

    @field_validator("templates", mode="before")
    @classmethod
    def _as_text(cls, value):
        return [str(v) for v in value]

    def expr(self) -> pl.Expr:
        """Where the rule applies, as a Polars expression over the documents frame."""
        cond = pl.lit(True)
        if self.templates:
            cond &= pl.col("template").is_in(self.templates)
        if self.agency_kinds:
            cond &= pl.col("agency_kind").is_in(self.agency_kinds)
        if "from" in self.report_years:
            cond &= pl.col("report_year").fill_null(9999) >= self.report_years["from"]
        if "to" in self.report_years:
            cond &= pl.col("report_year").fill_null(0) <= self.report_years["to"]
        return cond

    def describe(self) -> str:
        """Which reports it covers, in words (why a report outside it is not judged)."""
        parts = []
        if self.templates:
            parts.append("、".join("新旧混用" if t == "mixed" else f"{t} 年版" for t in self.templates) + "格式")
        if self.agency_kinds:
            parts.append("、".join(AGENCY_KINDS.get(k, k) for k in self.agency_kinds))
        years = self.report_years
        if "from" in years and "to" in years:
            parts.append(f"{years['from']}—{years['to']} 年度")
        elif "from" in years:
            parts.append(f"{years['from']} 年度起")
        elif "to" in years:
            parts.append(f"{years['to']} 年度及以前")
        return "本规则只适用于" + "、".join(parts) + "的报告" if parts else "所有报告"


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
            raise ValueError(f"category 必须是 {'、'.join(CATEGORIES)} 之一")
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value):
        if value not in SEVERITIES:
            raise ValueError("severity 必须是 error、warning 或 info")
        return value

    @property
    def engine(self) -> str:
        return type(self.check).engine


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str
    rules: list[dict]


class RulebookError(YamlFileError):
    """Every mistake found in a rules folder; `str()` lists them, one `file:line:col: message` a line."""

    def __init__(self, errors: list[YamlFileError]):
        first = errors[0]
        super().__init__(first.path, first.line, first.col, first.message)
        self.errors = errors
        self.args = ("\n".join(str(e) for e in errors),)

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class Rulebook:
    rules: list[Rule]
    layouts: dict[str, Layout]  # the unified formats, which the rules hold reports to
    folder: Path
    earlier: dict[str, Layout] = field(default_factory=dict)  # formats before the unified one

    @cached_property
    def labels(self) -> Labels:
        return Labels(self.layouts)

    def by_id(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    @cached_property
    def version(self) -> str:
        """The rule set's version: a hash of its rule files and template layouts (names and bytes),
        so that two runs with the same version judged by the same rules."""
        digest = hashlib.sha256()
        for path in sorted([*self.folder.glob("*.y*ml"), *(self.folder / "templates").glob("*.y*ml")]):
            digest.update(path.relative_to(self.folder).as_posix().encode("utf-8") + b"\0")
            digest.update(path.read_bytes() + b"\0")
        return digest.hexdigest()[:12]


def load_rulebook(folder: Path) -> Rulebook:
    """All rule files of a folder and its `templates/` layouts, checked as a whole."""
    if not folder.is_dir():
        raise YamlFileError(folder, 1, 1, "规则目录不存在")
    formats = load_layouts(folder / "templates")
    # The rules hold reports to the unified formats; earlier ones are recognised, not held to them.
    layouts = {name: layout for name, layout in formats.items() if layout.unified}
    if not layouts:
        raise YamlFileError(folder / "templates", 1, 1, "没有模板版式文件（templates/*.yaml）")
    rules: list[Rule] = []
    errors: list[YamlFileError] = []
    seen: dict[str, Path] = {}
    for path in sorted(folder.glob("*.y*ml")):
        try:
            doc = read_yaml(path)
            rule_file = validate(path, doc, RuleFile)
        except YamlFileError as exc:
            errors.append(exc)
            continue
        for i, node in enumerate(doc["rules"]):
            try:
                rule = Rule.model_validate(plain(node)).model_copy(update={"family": rule_file.family})
            except ValidationError as exc:
                errors.extend(pydantic_errors(path, node, exc, frozenset(KINDS)))
                continue
            if rule.id in seen:
                line, col = position(doc, ("rules", i, "id"))
                errors.append(YamlFileError(path, line, col, f"规则编号 {rule.id} 重复（已见于 {seen[rule.id].name}）"))
                continue
            seen[rule.id] = path
            found = list(_problems(rule, layouts, path, node))
            errors.extend(found)
            if not found:
                rules.append(rule)
    if errors:
        raise RulebookError(errors)
    return Rulebook(rules, layouts, folder, {name: f for name, f in formats.items() if not f.unified})


def _problems(rule: Rule, layouts: dict[str, Layout], path: Path, node):
    """What pydantic cannot see: the engine, what the rule names, its placeholders."""

    def at(loc: tuple, message: str, offset: int = 0) -> YamlFileError:
        line, col = value_position(path, node, loc, offset)
        return YamlFileError(path, line, col, f"{rule.id}: {message}")

    kind = type(rule.check)
    if kind.engine not in ENGINES:
        yield at(("check", "kind"), f"检查种类 {kind.name()} 由引擎 {kind.engine} 执行，但没有这个引擎（可用：{'、'.join(ENGINES)}）")
    else:
        unexpressed = [v.__name__ for v in kind.verdicts if v not in ENGINES[kind.engine]]
        if unexpressed:
            yield at(("check", "kind"), f"引擎 {kind.engine} 无法判断检查种类 {kind.name()} 的 {'、'.join(unexpressed)}")
    applies = rule.applies_to
    known = [*layouts, "mixed"]
    for i, template in enumerate(applies.templates):
        if template not in known:
            yield at(("applies_to", "templates", i), f"未知的模板 {template}（可用：{'、'.join(known)}）")
    for i, agency_kind in enumerate(applies.agency_kinds):
        if agency_kind not in AGENCY_KINDS:
            yield at(("applies_to", "agency_kinds", i), f"未知的机关类型 {agency_kind}（可用：{'、'.join(AGENCY_KINDS)}）")
    for key in applies.report_years:
        if key not in ("from", "to"):
            yield at(("applies_to", "report_years", key), f"report_years 只能有 from 和 to：{key}")
    scope = Scope(layouts, tuple(t for t in applies.templates if t in known))
    for problem in rule.check.references(scope):
        yield at(("check", *problem.loc), problem.message, problem.offset)
    allowed = rule.check.placeholders()
    for m in PLACEHOLDER.finditer(rule.message):
        if m.group(1) not in allowed:
            choices = "、".join("{" + name + "}" for name in allowed) or "无"
            yield at(("message",), f"消息中的 {{{m.group(1)}}} 不是检查种类 {kind.name()} 提供的占位符（可用：{choices}）", m.start())
