"""The rule kinds: what each `check:` block in a rule file may say. Each kind runs on one engine.

A kind is parameters only; the engines compile them. `ENGINE_OF` is the one registry that says
which engine runs which kind (pandera: the cells; Great Expectations: one row per report).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# pandera: cells and tables ------------------------------------------------------------------


class IdentityCheck(_Check):
    """Arithmetic over cell keys of one table, e.g. `new_received + carried_over = total_processed + carried_forward`.

    `for_each: col` evaluates it once per column, with row keys as names; `for_each: row` once per
    row, with column keys as names. `leaves` stands for the sum of the layout's leaf rows.
    """

    kind: Literal["identity"]
    table: str
    for_each: Literal["col", "row"]
    expr: str
    rows: list[str] = Field(default_factory=list)  # for_each row: only these rows (all when empty)
    tolerance: float = 0.0


class CrossYearCheck(_Check):
    """An identity between a report and the same agency's report of the year before.

    Names prefixed `prev_` are last year's cells, e.g. `carried_over = prev_carried_forward`. Last
    year's report comes from the batch or from the results store of earlier runs.
    """

    kind: Literal["cross_year"]
    table: str
    for_each: Literal["col", "row"]
    expr: str
    rows: list[str] = Field(default_factory=list)
    tolerance: float = 0.0


class ValueDomainCheck(_Check):
    """Every value of a table is ≥ `min` and an integer, except the layout's decimal and signed columns."""

    kind: Literal["value_domain"]
    tables: list[str]
    min: float = 0


class CompletenessCheck(_Check):
    """A table, row or cell of the report's template that is absent, blank, unreadable or uncertain."""

    kind: Literal["completeness"]
    target: Literal["table", "row", "blank", "unreadable", "ambiguous", "inconsistent"]


class CellConditionCheck(_Check):
    """A condition on one cell, for reports matching `when` (SQL over document columns)."""

    kind: Literal["cell_condition"]
    table: str
    row: str
    col: str
    expr: str  # SQL over `value`, e.g. "value = 0"
    when: str = ""  # SQL over document columns, e.g. "agency_kind = 'department'"


# Great Expectations: one row per report -----------------------------------------------------


class ParseCheck(_Check):
    kind: Literal["parse"]


class SectionsCheck(_Check):
    """The template's six sections present, in order; with `numbering`, numbered as the format has them."""

    kind: Literal["sections"]
    numbering: bool = False


class PeriodCheck(_Check):
    """A statistics-period statement that covers 1 January – 31 December of the report year."""

    kind: Literal["period"]


class ContactCheck(_Check):
    """At least one way to contact the agency in the report body."""

    kind: Literal["contact"]
    accept: list[Literal["phone", "email", "address"]] = Field(default_factory=lambda: ["phone", "email", "address"])


class DeadlineCheck(_Check):
    """Published on or before the deadline of the agency's kind, in the year after the report year."""

    kind: Literal["deadline"]
    deadlines: dict[str, str]  # agency kind → "MM-DD"


class TemplateCheck(_Check):
    """The tables use the format that applies to the report year (or a mixed layout)."""

    kind: Literal["template"]
    flag: Literal["outdated", "mixed"]


class ClaimCheck(_Check):
    """A narrative sentence matching `pattern` states a figure the tables must agree with.

    `pattern` is a regular expression; its named group `n` is the number (Arabic or Chinese); a
    pattern without `n` states `value`. `figure` is a sum of cell keys `table.row.col`.
    """

    kind: Literal["claim"]
    pattern: str
    figure: list[str]
    value: float | None = None
    sections: list[str] = Field(default_factory=list)  # only sentences in these sections
    unless: str = ""  # a sentence matching this is not the claim (e.g. "含上年结转")
    compare: Literal["equal", "at_least"] = "equal"
    scope_words: list[str] = Field(default_factory=list)  # these make the finding a warning


class LexiconCheck(_Check):
    """Lines dense in words of a lexicon (injected spam), or matching patterns (script fragments)."""

    kind: Literal["lexicon"]
    words: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    min_hits: int = 3  # distinct lexicon words on one line that make it spam


class NegationCheck(_Check):
    """A sentence stating an event that reports only ever deny (泄密事件) with no negation before it."""

    kind: Literal["negation"]
    phrases: list[str]
    negations: list[str]
    window: int = 30


class MentionCheck(_Check):
    """A section mentions each group of words (any word of a group counts)."""

    kind: Literal["mention"]
    section: str
    groups: dict[str, list[str]]  # what is looked for → the words that show it
    unless_any: list[str] = Field(default_factory=list)  # skip the report when the section says one of these


class EnumerationCheck(_Check):
    """Sub-item sequences (一是…二是…, (一)(二)…) run without gaps."""

    kind: Literal["enumeration"]


class SignoffCheck(_Check):
    """The report ends with a 落款 (agency and date)."""

    kind: Literal["signoff"]


Check = Annotated[
    Union[
        IdentityCheck,
        CrossYearCheck,
        ValueDomainCheck,
        CompletenessCheck,
        CellConditionCheck,
        ParseCheck,
        SectionsCheck,
        PeriodCheck,
        ContactCheck,
        DeadlineCheck,
        TemplateCheck,
        ClaimCheck,
        LexiconCheck,
        NegationCheck,
        MentionCheck,
        EnumerationCheck,
        SignoffCheck,
    ],
    Field(discriminator="kind"),
]

# The one place that says which engine runs a kind. A test asserts every kind is here once.
ENGINE_OF: dict[str, str] = {
    "identity": "pandera",
    "cross_year": "pandera",
    "value_domain": "pandera",
    "completeness": "pandera",
    "cell_condition": "pandera",
    "parse": "great_expectations",
    "sections": "great_expectations",
    "period": "great_expectations",
    "contact": "great_expectations",
    "deadline": "great_expectations",
    "template": "great_expectations",
    "claim": "great_expectations",
    "lexicon": "great_expectations",
    "negation": "great_expectations",
    "mention": "great_expectations",
    "enumeration": "great_expectations",
    "signoff": "great_expectations",
}
