"""Template layouts (rules/templates/*.yaml): the sections and tables of each unified format, as data."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from audits.normalize import compact
from audits.yamlio import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SectionSpec(_Strict):
    key: str
    numeral: str
    title: str
    keywords: list[list[str]]  # any group matches when all its words occur in the heading


class RowSpec(_Strict):
    key: str
    label: str  # the label as the format prints it
    labels: list[str]  # accepted variants, matched as substrings after `compact`
    cols: list[str] = Field(default_factory=list)  # empty: the table's `cols`
    numeral: str = ""  # the sub-item numeral that may stick to the previous row's digits
    exact: bool = False  # match only when the whole label token equals a variant
    leaf: bool = False  # one of the result rows summed into (七)总计
    group: str = ""  # the group heading it is printed under (（三）不予公开), where numerals repeat
    decimal: list[str] = Field(default_factory=list)
    signed: list[str] = Field(default_factory=list)
    # Words by which the narrative names the row, when its label is not one ("采购信息197批次");
    # default: the shortest label variant.
    mentions: list[str] = Field(default_factory=list)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted({compact(v) for v in self.labels}, key=len, reverse=True))


class GroupSpec(_Strict):
    key: str
    label: str
    labels: list[str]


class RowSum(_Strict):
    parts: list[str]
    total: str


class ColumnSum(_Strict):
    """An identity down every column: the rows of `left` add up to the rows of `right`; `leaves`
    stands for the table's leaf rows (表三: 一 + 二 = (七) + 四; the result rows add up to (七))."""

    left: list[str]
    right: list[str]


class Relation(_Strict):
    """A relation over the cells of each of `rows` (column keys as names): `expect` within one
    report, `chains` with the same agency's report of the year before (its cells prefixed prev_).
    Neither is a rule: they choose between readings of run-together digits (audits/settle.py)."""

    rows: list[str]
    expr: str

    @cached_property
    def expression(self):
        from audits.rulebook.expressions import parse_expression  # (the rulebook imports layouts)

        return parse_expression(self.expr, comparison=True)


class TableSpec(_Strict):
    title: str
    anchors: list[str]
    headers: list[str] = Field(default_factory=list)
    cols: list[str] = Field(default_factory=list)
    col_labels: dict[str, str] = Field(default_factory=dict)
    row_sum: RowSum | None = None
    groups: list[GroupSpec] = Field(default_factory=list)
    extra_rows: list[str] = Field(default_factory=list)
    single_line: bool = False
    col_sums: list[ColumnSum] = Field(default_factory=list)
    expect: list[Relation] = Field(default_factory=list)
    chains: list[Relation] = Field(default_factory=list)
    # Where a run's longer numbers usually sit when nothing else tells the readings apart: first
    # (表三: 自然人 carries most applications) or last (表二: 现行有效、对外公开总数量 are stocks).
    larger: Literal["first", "last"] = "first"
    rows: list[RowSpec]

    def row_cols(self, row: RowSpec) -> list[str]:
        return row.cols or self.cols

    @model_validator(mode="after")
    def _groups_exist(self):
        known = {g.key for g in self.groups}
        for row in self.rows:
            if row.group and row.group not in known:
                raise ValueError(f"行 {row.key} 的 group “{row.group}” 不在 groups 中")
        return self

    @model_validator(mode="after")
    def _relations_name_cells(self):
        rows = {r.key: r for r in self.rows}
        for sums in self.col_sums:
            for name in sums.left + sums.right:
                if name != "leaves" and name not in rows:
                    raise ValueError(f"col_sums 中的行 {name} 不在表中")
        for what, relations, prefixes in (("expect", self.expect, ("",)), ("chains", self.chains, ("", "prev_"))):
            for relation in relations:
                for key in relation.rows:
                    if key not in rows:
                        raise ValueError(f"{what} 中的行 {key} 不在表中")
                    cols = set(self.row_cols(rows[key]))
                    allowed = {p + c for p in prefixes for c in cols}
                    unknown = [n for n in relation.expression.names if n not in allowed]
                    if unknown:
                        raise ValueError(f"{what} “{relation.expr}”：行 {key} 没有 {'、'.join(unknown)}")
        return self


class YearRange(_Strict):
    from_: int = Field(0, alias="from")
    to: int | None = None

    def contains(self, year: int) -> bool:
        return year >= self.from_ and (self.to is None or year <= self.to)


class Layout(_Strict):
    """A report format. `unified: false` marks a format from before the unified one (the 2008
    条例's): such a layout only says how to recognise it; nothing of the unified format is looked
    for in its reports, and the rulebook holds only the unified layouts."""

    template: str
    title: str
    report_years: YearRange
    markers: list[str]
    unified: bool = True
    sections: list[SectionSpec] = Field(default_factory=list)
    tables: dict[str, TableSpec] = Field(default_factory=dict)

    @cached_property
    def heading_words(self) -> re.Pattern:
        """The first word of every section's keyword groups: text with none of them is no heading."""
        return re.compile("|".join(re.escape(group[0]) for s in self.sections for group in s.keywords))


def load_layouts(folder: Path) -> dict[str, Layout]:
    """Every `*.yaml` in `folder`, by template name (errors name file and line)."""
    layouts = {}
    for path in sorted(folder.glob("*.y*ml")):
        layout = load_yaml_model(path, Layout)
        layouts[layout.template] = layout
    return layouts
