"""The two engines judge alike: every verdict both can express gives the same failing rows.

One frame with numbers, nulls, dates and text, each verdict through pandera and through Great
Expectations; expected rows worked out by hand from the frame.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from audits.engines import ENGINES, gx_engine, pandera_engine
from audits.engines.verdicts import Between, Compare, InSet, Matches, NotInSet

FRAME = pl.DataFrame(
    {
        "source": ["a", "b", "c", "d", "e"],
        "n": [0, 3, None, -1, 1],
        "left": [1.0, 2.0, None, 5.0, 4.0],
        "right": [1.0, 3.0, 7.0, 4.0, None],
        "flag": ["", "blank", None, "ambiguous", ""],
        "published": [dt.date(2024, 1, 30), dt.date(2024, 2, 10), None, dt.date(2024, 1, 31), dt.date(2024, 3, 1)],
        "deadline": [dt.date(2024, 1, 31)] * 4 + [None],
        "text": ["共收到申请3件", "未收到申请", None, "收到12件", "无"],
    }
)

CASES = [
    # verdict, the rows (0-based) that fail it, read off FRAME; nulls never fail
    (InSet("flag", ("", "ambiguous")), [1]),
    (NotInSet("flag", ("blank",)), [1]),
    (Between("n", low=0), [3]),
    (Between("n", high=0), [1, 4]),
    (Between("n", 0, 0), [1, 3, 4]),
    (Compare("left", "=", "right"), [1, 3]),
    (Compare("left", ">=", "right"), [1]),
    (Compare("left", "<=", "right"), [3]),
    (Compare("published", "<=", "deadline"), [1]),
    (Matches("text", r"\d+件"), [1, 4]),
]


@pytest.mark.parametrize("verdict,failing", CASES, ids=[type(v).__name__ + ":" + str(i) for i, (v, _) in enumerate(CASES)])
def test_pandera_and_great_expectations_fail_the_same_rows(verdict, failing):
    assert type(verdict) in ENGINES["pandera"] and type(verdict) in ENGINES["great_expectations"]
    by_pandera = pandera_engine.judge(FRAME, (verdict,))
    by_gx, _ = gx_engine.judge({"RULE": (FRAME, (verdict,))})
    assert by_pandera == failing
    assert by_gx.get("RULE", []) == failing


def test_great_expectations_judges_rows_of_several_per_report_apart():
    # claims have several rows per report: stacked with another rule's, each keeps its own rows
    many = pl.DataFrame({"source": ["a", "a", "b"], "claimed": [3.0, 5.0, 1.0], "figure": [3.0, 3.0, 1.0]})
    failures, records = gx_engine.judge({"ONE": (FRAME, (Between("n", low=0),)), "MANY": (many, (Compare("claimed", "=", "figure"),))})
    assert failures == {"ONE": [3], "MANY": [1]}
    assert [r["suite"] for r in records] == ["audits-reports", "audits-claims"]
    assert {x["rule_id"] for r in records for x in r["results"]} == {"ONE", "MANY"}
