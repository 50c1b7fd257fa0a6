"""The engines that judge: pandera over the cell and table frames, Great Expectations over one row
per report. `run.run_rules` measures every rule and hands each measure to its kind's engine.

`ENGINES` says which verdicts each engine can express; a rule file whose kind names another engine,
or asks for a verdict its engine cannot express, is refused when the rules load.
"""

from __future__ import annotations

from audits.engines.verdicts import Between, Compare, Holds, InSet, Matches, NotInSet

ENGINES: dict[str, frozenset[type]] = {
    "pandera": frozenset({InSet, NotInSet, Between, Compare, Matches, Holds}),
    "great_expectations": frozenset({InSet, NotInSet, Between, Compare, Matches}),
}
