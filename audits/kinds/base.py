"""What every rule kind is: its parameters, what it may name, the measure it computes, its engine.

A kind is a pydantic model of the `check:` block a rule file writes, with class-level facts for the
registry (engine, the frame it reads, a Chinese description and example for rule authors) and
three methods: `references` (what the parameters name, checked against the template layouts when
the rules load), `placeholders` (what its messages may use) and `measure` (Polars over the batch's
frames: what the engine then judges, and the facts of each finding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, ClassVar, Iterator

import polars as pl
from pydantic import BaseModel, ConfigDict

from audits.engines.verdicts import Verdict
from audits.frames import KEY, Frames
from audits.layouts import Layout
from audits.vocabulary import Labels

# The facts a measure's `explain` gives each finding (a frame's columns, or a dict's keys); the
# findings are built from them (audits/findings.py):
#   source, line, quote (the sentence quoted), detail (what was found, in words), cells (CellRefs),
#   caveats (list of remarks), severity (overrides the rule's), observed / expected, and one
#   `p.<name>` per message placeholder.
UNJUDGED_SCHEMA = {"source": KEY, "state": pl.Utf8, "reason": pl.Utf8}
NOT_APPLICABLE = "not_applicable"
UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class Problem:
    """A reference in a `check:` block that names nothing: where (a path inside `check`), and why.
    `offset` is the column inside the scalar at that path (a name inside an expression)."""

    loc: tuple
    message: str
    offset: int = 0


@dataclass
class Measure:
    """A rule's measure over a batch.

    `judged` has a row per thing judged (a report, a table row or column, a cell, a sentence), its
    `source` and the columns the `verdicts` read; a row fails when any verdict does not hold.
    `explain` turns failing rows into the facts of their findings (columns listed above), so the
    facts are computed only where something failed. `unjudged` lists the applicable reports the
    rule could not or need not judge, with the state (not_applicable / undetermined) and why.
    """

    judged: pl.DataFrame
    verdicts: tuple[Verdict, ...]
    explain: Callable[[pl.DataFrame], pl.DataFrame]
    unjudged: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=UNJUDGED_SCHEMA))


@dataclass(frozen=True)
class Scope:
    """What a rule may name: the layouts of the templates it applies to (all when it names none)."""

    layouts: dict[str, Layout]
    templates: tuple[str, ...] = ()

    @cached_property
    def own(self) -> list[Layout]:
        named = [t for t in self.templates if t in self.layouts]
        # `mixed` reports hold rows of every template; a rule for them may name any.
        if not self.templates or "mixed" in self.templates:
            return list(self.layouts.values())
        return [self.layouts[t] for t in named]

    def tables(self) -> set[str]:
        return {t for layout in self.own for t in layout.tables}

    def rows(self, table: str) -> set[str]:
        return {r.key for layout in self.own if table in layout.tables for r in layout.tables[table].rows}

    def cols(self, table: str, rows: list[str] | None = None) -> set[str]:
        out: set[str] = set()
        for layout in self.own:
            spec = layout.tables.get(table)
            if spec is not None:
                out.update(c for r in spec.rows if not rows or r.key in rows for c in spec.row_cols(r))
        return out

    def leaves(self, table: str) -> set[str]:
        return {r.key for layout in self.own if table in layout.tables for r in layout.tables[table].rows if r.leaf}

    def sections(self) -> set[str]:
        return {s.key for layout in self.own for s in layout.sections}

    def where(self) -> str:
        """The templates in words, for messages: `2021 年版`."""
        return "、".join(f"{layout.template} 年版" for layout in self.own)


class Kind(BaseModel):
    """The base of every rule kind (subclasses add `kind: Literal[...]` and their parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: ClassVar[str]  # "pandera" or "great_expectations"
    verdicts: ClassVar[tuple[type, ...]]  # the verdicts its measure asks the engine for
    reads: ClassVar[str]  # the frame it measures: cells, documents, sections, snippets, sentences, lines
    title: ClassVar[str]  # its Chinese name
    description: ClassVar[str]  # for rule authors, in Chinese
    example: ClassVar[str]  # a `check:` block in YAML
    judges_unreadable: ClassVar[bool] = False  # whether reports that could not be read are its business

    @classmethod
    def name(cls) -> str:
        return cls.model_fields["kind"].annotation.__args__[0]

    def placeholders(self) -> dict[str, str]:
        """The `{name}`s its messages may use → what each holds (in Chinese)."""
        return {}

    def references(self, scope: Scope) -> Iterator[Problem]:
        """Everything its parameters name that the layouts in `scope` do not have."""
        return iter(())

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        """The measure over the reports `docs` (those the rule applies to and that could be read)."""
        raise NotImplementedError


@dataclass
class Batch:
    """What every measure reads: the batch's frames, the layouts and their labels, earlier runs'
    cells (for cross-year kinds), and what several measures share, computed once."""

    frames: Frames
    layouts: dict[str, Layout]
    history: pl.DataFrame | None = None
    earlier: dict[str, Layout] = field(default_factory=dict)  # formats before the unified one
    cache: dict = field(default_factory=dict)

    @cached_property
    def labels(self) -> Labels:
        return Labels(self.layouts)

    def shared(self, key: tuple, compute: Callable[[], object]):
        """`compute()` once per batch for `key` (a table pivot, the sentences)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


def unjudged(docs: pl.DataFrame, judged_sources: pl.Series | pl.DataFrame, state: str, reason: pl.Expr | str) -> pl.DataFrame:
    """The reports of `docs` not among `judged_sources`, each with `state` and `reason`."""
    judged = judged_sources.to_frame("source") if isinstance(judged_sources, pl.Series) else judged_sources.select("source")
    rest = docs.join(judged.unique(), on="source", how="anti")
    reason = pl.lit(reason) if isinstance(reason, str) else reason
    return rest.select(pl.col("source").cast(KEY), pl.lit(state).alias("state"), reason.cast(pl.Utf8).alias("reason"))
