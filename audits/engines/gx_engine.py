"""Great Expectations judges the report-level measures, with its own expectations.

The measures with one row per report are joined into one frame (a column per rule and measured
value); the others (claims: a row per sentence) are stacked into a second. Each verdict becomes an
expectation (in-set, not-in-set, between, column-pair equal or greater, regex match) whose `meta`
carries the rule id; one suite and one validation per frame, on pandas (GX has no Polars support).
The validation results are kept for gx_validation.json.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import polars as pl

from audits.engines.verdicts import Between, Compare, InSet, Matches, NotInSet, Verdict, columns

SEP = "|"  # rule id | measured column, in the frames GX validates


_loading = threading.Lock()


def _gx():
    with _loading:  # the import may be under way in the background (`warm_up_in_background`)
        return _load()


@lru_cache(maxsize=1)
def _load():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    return gx, gxe, context


def warm_up() -> None:
    """Import Great Expectations and make its context (seconds, once per process)."""
    _gx()


def warm_up_in_background() -> None:
    """Start the import while the reports are parsed: a small run then waits for the longer of the
    two, not their sum."""
    threading.Thread(target=warm_up, name="gx-import", daemon=True).start()


def judge(measures: dict[str, tuple[pl.DataFrame, tuple[Verdict, ...]]]) -> tuple[dict[str, list[int]], list[dict]]:
    """Failing row positions per rule id, and what gx_validation.json keeps of each validation."""
    per_report = {rid: m for rid, m in measures.items() if m[0].is_empty() or m[0]["source"].is_unique().all()}
    per_row = {rid: m for rid, m in measures.items() if rid not in per_report}
    failures: dict[str, list[int]] = {}
    records = []
    if per_report:
        found, record = _judge_reports(per_report)
        failures.update(found)
        records.append(record)
    if per_row:
        found, record = _judge_rows(per_row)
        failures.update(found)
        records.append(record)
    return failures, records


def _judge_reports(measures: dict) -> tuple[dict[str, list[int]], dict]:
    """One row per report, a column per rule and measured value."""
    sources = pl.concat([frame.select(pl.col("source").cast(pl.Utf8)) for frame, _ in measures.values()]).unique(maintain_order=True)
    wide = sources
    for rid, (frame, verdicts) in measures.items():
        measured = frame.select(pl.col("source").cast(pl.Utf8), *(pl.col(c).alias(f"{rid}{SEP}{c}") for c in _columns(verdicts)))
        wide = wide.join(measured, on="source", how="left")
    failing_rows, record = _validate(wide, measures, "reports")
    failures = {}
    for rid, rows in failing_rows.items():
        frame = measures[rid][0]
        failed = set(wide["source"].gather(rows).to_list())
        failures[rid] = frame.with_row_index("__pos").filter(pl.col("source").cast(pl.Utf8).is_in(list(failed)))["__pos"].to_list()
    return failures, record


def _judge_rows(measures: dict) -> tuple[dict[str, list[int]], dict]:
    """Several rows per report (a row per claim): each rule's rows stacked, its columns null elsewhere."""
    parts = [
        frame.with_row_index("__pos").select("__pos", pl.lit(rid).alias("__rule"), *(pl.col(c).alias(f"{rid}{SEP}{c}") for c in _columns(verdicts)))
        for rid, (frame, verdicts) in measures.items()
    ]
    long = pl.concat(parts, how="diagonal_relaxed")
    failing_rows, record = _validate(long, measures, "claims")
    failures = {}
    for rid, rows in failing_rows.items():
        failures[rid] = long.select("__pos").to_series().gather(rows).to_list()
    return failures, record


def _columns(verdicts: tuple[Verdict, ...]) -> list[str]:
    return list(dict.fromkeys(c for v in verdicts for c in columns(v)))


def _validate(frame: pl.DataFrame, measures: dict, name: str) -> tuple[dict[str, list[int]], dict]:
    """One suite over `frame` converted to pandas; failing rows by their position in `frame`."""
    gx, _, context = _gx()
    suite = gx.ExpectationSuite(name=f"audits-{name}")
    for rid, (_, verdicts) in measures.items():
        for verdict in verdicts:
            expectation = _expectation(rid, verdict)
            expectation.meta = {"rule_id": rid}
            suite.add_expectation(expectation)
    source = context.data_sources.add_or_update_pandas(f"audits-{name}")
    asset = source.add_dataframe_asset(f"{name}-{id(frame)}")
    batch = asset.add_batch_definition_whole_dataframe("batch").get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    # NOTE: failing rows come back by their pandas position (the default index); asking GX for the
    # values of an index column instead makes it look each failing row up one by one.
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    failures: dict[str, list[int]] = {}
    for r in result.results:
        if not r.success:
            rid = r.expectation_config.meta["rule_id"]
            failures.setdefault(rid, [])
            failures[rid] = sorted(set(failures[rid]) | set(r.result.get("unexpected_index_list") or []))
    return failures, _record(name, result)


def _expectation(rid: str, verdict: Verdict):
    gxe = _gx()[1]
    col = lambda c: f"{rid}{SEP}{c}"  # noqa: E731
    pair = {"ignore_row_if": "either_value_is_missing"}
    if isinstance(verdict, InSet):
        return gxe.ExpectColumnValuesToBeInSet(column=col(verdict.column), value_set=list(verdict.values))
    if isinstance(verdict, NotInSet):
        return gxe.ExpectColumnValuesToNotBeInSet(column=col(verdict.column), value_set=list(verdict.values))
    if isinstance(verdict, Between):
        return gxe.ExpectColumnValuesToBeBetween(column=col(verdict.column), min_value=verdict.low, max_value=verdict.high)
    if isinstance(verdict, Matches):
        return gxe.ExpectColumnValuesToMatchRegex(column=col(verdict.column), regex=verdict.pattern)
    if isinstance(verdict, Compare) and verdict.tolerance == 0:
        a, b = col(verdict.left), col(verdict.right)
        if verdict.op == "=":
            return gxe.ExpectColumnPairValuesToBeEqual(column_A=a, column_B=b, **pair)
        if verdict.op == ">=":
            return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True, **pair)
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=b, column_B=a, or_equal=True, **pair)
    raise TypeError(f"Great Expectations cannot judge {verdict!r}")


def _record(name: str, result) -> dict:
    """What gx_validation.json keeps of a validation: per expectation its verdict and counts, with
    GX's partial lists (the full lists of failing rows are the findings); `to_json_dict` would
    deep-copy every index of every failure first."""
    full = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")
    return {
        "suite": f"audits-{name}",
        "success": result.success,
        "statistics": result.statistics,
        "results": [
            {
                "rule_id": r.expectation_config.meta["rule_id"],
                "expectation": r.expectation_config.type,
                "kwargs": r.expectation_config.kwargs,
                "success": r.success,
                "result": {k: v for k, v in r.result.items() if k not in full},
            }
            for r in result.results
        ],
    }
