"""The catalogue for rule authors: every kind (parameters, placeholders, an example) and every rule
(title, severity, basis, its cases), generated from the registry and the rule files themselves."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from ruamel.yaml import YAML

from audits.kinds import KINDS
from audits.rulebook.book import Rulebook
from audits.rulebook.cases import load_cases
from audits.vocabulary import CATEGORIES, SEVERITIES

ENGINE_NAMES = {"pandera": "pandera（单元格与表格）", "great_expectations": "Great Expectations（每份报告或每个句子一行）"}


@dataclass
class KindEntry:
    name: str
    title: str
    engine: str
    reads: str
    description: str
    parameters: list[dict]  # name, type, default ("" when required)
    placeholders: dict[str, str]  # of its example
    example: str


@dataclass
class RuleEntry:
    id: str
    title: str
    category: str
    severity: str
    basis: str
    explanation: str
    message: str
    kind: str
    applies: str
    cases: list[dict]  # name, passes (bool), what (the findings it expects, in words)


def kinds() -> list[KindEntry]:
    entries = []
    for name, kind in KINDS.items():
        example = kind.model_validate(YAML(typ="safe").load(kind.example))
        entries.append(
            KindEntry(
                name=name,
                title=kind.title,
                engine=ENGINE_NAMES.get(kind.engine, kind.engine),
                reads=kind.reads,
                description=kind.description,
                parameters=[
                    {"name": field, "type": _type_name(info.annotation), "default": "" if info.is_required() else repr(info.get_default(call_default_factory=True))}
                    for field, info in kind.model_fields.items()
                    if field != "kind"
                ],
                placeholders=example.placeholders(),
                example=kind.example,
            )
        )
    return entries


def rules(book: Rulebook) -> list[RuleEntry]:
    cases: dict[str, list[dict]] = {}
    for case in load_cases(book.folder):
        want = case.spec.get("findings") or []
        what = "；".join(f"{SEVERITIES.get(w.get('severity', ''), '')} {w.get('message', '')}".strip() for w in want)
        cases.setdefault(case.rule, []).append({"name": case.name, "passes": not want, "what": what or "无发现"})
    return [
        RuleEntry(
            id=r.id,
            title=r.title,
            category=CATEGORIES[r.category],
            severity=SEVERITIES[r.severity],
            basis=r.basis,
            explanation=r.explanation,
            message=r.message,
            kind=r.check.kind,
            applies=r.applies_to.describe(),
            cases=cases.get(r.id, []),
        )
        for r in book.rules
    ]


def _type_name(annotation) -> str:
    """`list[str]`, `Literal['col', 'row']`: a parameter's type as a rule author reads it."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is None:
        return getattr(annotation, "__name__", str(annotation))
    args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
    return f"{getattr(origin, '__name__', str(origin))}[{args}]"


def render(book: Rulebook, run=None) -> str:
    """The catalogue page; `run` (render.RunInfo) when it is written beside a run's pages."""
    from audits.render import csp, page_env

    return page_env().get_template("catalogue.html").render(kinds=kinds(), rules=rules(book), csp=csp(""), script="", run=run)

