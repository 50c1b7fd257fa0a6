"""The one registry of rule kinds: what a `check:` block may say, and who computes and judges it.

Each kind is a class (audits/kinds/*.py) holding its parameters, what it may name, its measure, its
engine and its Chinese description. Adding a kind is one class and one line below; nothing else
dispatches on kinds.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from audits.kinds.base import Batch, Kind, Measure, Problem, Scope
from audits.kinds.cells import CellCondition, Completeness, ValueDomain
from audits.kinds.copying import CopiedPassages, RepeatedSections
from audits.kinds.narrative import AgencyName, ProseSum, ReportYear
from audits.kinds.report import Contact, Deadline, Parse, Period, Sections, Signoff, Template
from audits.kinds.tables import CrossYear, Identity
from audits.kinds.text import Claim, Enumeration, Lexicon, Mention, Negation

KINDS: dict[str, type[Kind]] = {
    k.name(): k
    for k in (
        # pandera, over the cells and tables
        Identity, CrossYear, ValueDomain, Completeness, CellCondition,
        # Great Expectations, over one row per report (or per sentence)
        Parse, Sections, Period, Contact, Deadline, Template, Claim, Lexicon, Negation, Mention, Enumeration, Signoff,
        ProseSum, ReportYear, AgencyName, RepeatedSections, CopiedPassages,
    )
}

Check = Annotated[Union[tuple(KINDS.values())], Field(discriminator="kind")]

__all__ = ["KINDS", "Check", "Batch", "Kind", "Measure", "Problem", "Scope"]
