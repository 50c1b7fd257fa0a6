"""Every rule's passing and failing cases (rules/cases/<RULE-ID>.yaml), one test per case.

`pytest -k T3-BAL` runs one rule's cases. The selected cases' reports are judged together, in one
batch by the whole rulebook (audits.rulebook.cases); each test then holds its case to its outcome.
"""

from __future__ import annotations

import pytest

from audits.rulebook.book import load_rulebook
from audits.rulebook.cases import load_cases, run_cases
from tests.conftest import ROOT, SHARED

BOOK = load_rulebook(ROOT / "rules")
CASES = {case.id: case for case in load_cases(ROOT / "rules")}


@pytest.fixture(scope="session")
def outcomes(request) -> dict:
    """The outcomes of the cases this session runs (all of them, or those `-k` selected)."""
    selected = [item.callspec.params["case_id"] for item in request.session.items if item.originalname == "test_rule_case"]
    return {o.case.id: o for o in run_cases(BOOK, [CASES[c] for c in selected], SHARED)}


@pytest.mark.parametrize("case_id", list(CASES))
def test_rule_case(case_id, outcomes):
    outcome = outcomes[case_id]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert not outcome.problems, "\n".join(outcome.problems)
