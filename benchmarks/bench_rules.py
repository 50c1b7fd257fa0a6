"""Rule evaluation: `audits.engines.run.run_rules` with the rulebook of rules/ over 50,000 reports.

    .venv/bin/python -m benchmarks.bench_rules --n 50000
    .venv/bin/python -m benchmarks.bench_rules --n 50000 --profile     # and cProfile's top functions

The frames come from a few hundred parsed synthetic reports replicated in Polars (see
replicate.py), not from parsing 50,000 files. Import times (Great Expectations, pandera, the GX
context) are measured first and reported apart from the evaluation, which is one `run_rules` call
over the whole batch (pandera and Great Expectations, every rule once, with each report's state
per rule).
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()
import great_expectations  # noqa: E402,F401 - timed: the first import of the process

GX_IMPORT_S = time.perf_counter() - _T0

import argparse  # noqa: E402
import json  # noqa: E402
from collections import Counter  # noqa: E402

from benchmarks.common import RULES_DIR, Contention, Timer, TreeRss, maxrss_mb, now, profile_top, record, wait_quiet  # noqa: E402


def imports() -> dict:
    t = time.perf_counter()
    import pandera.polars  # noqa: F401

    pandera_s = time.perf_counter() - t
    t = time.perf_counter()
    from audits.engines import gx_engine, pandera_engine  # noqa: F401
    from audits.engines import run  # noqa: F401

    engines_s = time.perf_counter() - t
    t = time.perf_counter()
    gx_engine.warm_up()  # the ephemeral GX context, made once per process
    context_s = time.perf_counter() - t
    return {
        "import_great_expectations_s": round(GX_IMPORT_S, 2),
        "import_pandera_s": round(pandera_s, 2),
        "import_audits_engines_s": round(engines_s, 2),
        "gx_context_s": round(context_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="rule evaluation over replicated frames")
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--base", type=int, default=300, help="synthetic reports parsed once and replicated")
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--agencies", type=int, default=0, help="distinct agencies (default n/4)")
    ap.add_argument("--profile", action="store_true", help="run under cProfile and print the top functions")
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for other processes to go quiet")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    load = imports()
    from audits.engines.run import run_rules
    from audits.rulebook.book import load_rulebook
    from benchmarks.replicate import base_frames, replicate

    with Timer() as t_book:
        book = load_rulebook(RULES_DIR)
    base, base_info = base_frames(args.base, args.seed)
    frames, rep = replicate(base, args.n, agencies=args.agencies or max(args.n // 4, 1))
    del base
    print(f"frames: {rep['reports']} reports ({rep['distinct_agencies']} agencies) from {rep['base_reports']} parsed "
          f"in {base_info['parse_s']} s, replicated in {rep['seconds']} s; {rep['mb']} MB; rows {rep['rows']}", flush=True)
    quiet = wait_quiet(args.max_wait) if args.max_wait > 0 else {}
    if args.profile:
        with Contention() as busy, Timer() as timer:
            judgement, top = profile_top(run_rules, book, frames, top=35)
        print(top)
    else:
        with TreeRss() as tree, Contention() as busy, Timer() as timer:
            judgement = run_rules(book, frames)
    findings = judgement.findings
    by_rule = Counter(f.rule_id for f in findings)
    reports_with = len({f.source for f in findings})
    result = {
        "key": f"rules/n={args.n}" + ("/profiled" if args.profile else ""),
        "date": now(),
        "n": args.n,
        "rules": len(book.rules),
        "seconds": round(timer.seconds, 2),
        "reports_per_s": round(args.n / timer.seconds, 1),
        **load,
        "load_rulebook_s": round(t_book.seconds, 2),
        "findings": len(findings),
        "reports_with_findings": reports_with,
        "findings_by_rule": dict(sorted(by_rule.items())),
        "frames": rep,
        "base": base_info,
        **maxrss_mb(),
        **quiet,
    }
    if not args.profile:
        result["tree_rss_peak_mb"] = tree.peak_mb
    result.update(busy.as_dict())
    print(
        f"run_rules over {args.n} reports: {timer.seconds:.1f} s ({len(book.rules)} rules, {len(findings)} findings in "
        f"{reports_with} reports); import great_expectations {load['import_great_expectations_s']} s, GX context "
        f"{load['gx_context_s']} s, pandera {load['import_pandera_s']} s; peak RSS {result['self_peak_mb']:.0f} MB",
        flush=True,
    )
    print(f"  other processes used {result['other_processes_cores']:.2f} cores during the run", flush=True)
    print(json.dumps(result["findings_by_rule"], ensure_ascii=False))
    if not args.no_record:
        record("rules", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
