"""Every rule's passing and failing cases (tests/cases/<RULE-ID>.yaml), one test per case.

`pytest -k T3-BAL` runs one rule. A failing case built from the clean report fails for exactly one
reason: the whole rulebook finds nothing on it but the rule under test.
"""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from audits.engines import run_rules
from audits.frames import build_frames
from audits.rulebook import Rulebook, load_rulebook
from tests.conftest import ROOT, need_shared
from tests.rule_cases import build_reports, case_files

BOOK = load_rulebook(ROOT / "rules")


def _cases():
    for path in case_files():
        doc = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        for name, case in doc["cases"].items():
            yield pytest.param(doc["rule"], case, id=f"{doc['rule']}::{name}")


def _run(rules, reports):
    return run_rules(Rulebook(rules, BOOK.layouts, BOOK.folder), build_frames(reports))


def _matches(found, want: dict) -> bool:
    return (
        found.severity == want.get("severity", found.severity)
        and want.get("message", "") in found.message
        and want.get("evidence", "") in found.evidence
        and set(want.get("cells", [])) <= set(found.cells)
    )


@pytest.mark.parametrize("rule_id,case", list(_cases()))
def test_rule_case(rule_id, case):
    if "report" in case:
        need_shared()
    if "report" in case.get("previous", {}):
        need_shared()
    reports = build_reports(case)
    findings = _run([BOOK.by_id(rule_id)], reports)
    want = case.get("findings", [])
    assert len(findings) == len(want), [f"{f.severity} {f.message} | {f.evidence}" for f in findings]
    unmatched = list(findings)
    for w in want:
        hit = next((f for f in unmatched if _matches(f, w)), None)
        assert hit is not None, f"no finding like {w} in {[(f.severity, f.message, f.evidence, f.cells) for f in unmatched]}"
        unmatched.remove(hit)
    if "base" in case:
        main = reports[-1].source
        others = [f"{f.rule_id}: {f.message}" for f in _run(BOOK.rules, reports) if f.rule_id != rule_id and f.source == main]
        assert not others, f"the case fails for more than one reason: {others}"
