"""HTML generation: `audits.render.render_all` for 10,000 reports of about 3,000 agencies.

    .venv/bin/python -m benchmarks.bench_render --n 10000 --agencies 3000
    .venv/bin/python -m benchmarks.bench_render --n 10000 --agencies 3000 --profile

Frames are replicated from a few hundred parsed synthetic reports (see replicate.py), with
agencies from a pool of generated names so that most agency pages hold several years. Findings
come from `run_rules` over those frames, with fingerprints as a scheduled run adds them; that part
is timed apart. The measured part is one `render_all` call writing every agency page and
index.html into a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import RULES_DIR, Contention, Timer, TreeRss, maxrss_mb, now, profile_top, record, wait_quiet


def findings_for(book, frames):
    """The findings (with fingerprints, as a run adds them) and each report's state per rule."""
    from audits.engines.run import run_rules
    from audits.findings import findings_frame, fingerprints

    judgement = run_rules(book, frames)
    findings = findings_frame(judgement.findings)
    return findings.with_columns(fingerprints(findings, frames.documents)), judgement.statuses


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="HTML generation over replicated frames")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--agencies", type=int, default=3000)
    ap.add_argument("--base", type=int, default=300, help="synthetic reports parsed once and replicated")
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--profile", action="store_true", help="run under cProfile and print the top functions")
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for other processes to go quiet")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    from audits.render import render_all
    from audits.rulebook.book import load_rulebook
    from benchmarks.replicate import base_frames, replicate

    import_s = time.perf_counter() - t0
    book = load_rulebook(RULES_DIR)
    base, base_info = base_frames(args.base, args.seed)
    frames, rep = replicate(base, args.n, agencies=args.agencies)
    del base
    with tempfile.TemporaryDirectory(prefix="audits-bench-render-") as tmp:
        out = Path(tmp)
        with Timer() as t_rules:
            findings, statuses = findings_for(book, frames)
        pages_expected = frames.documents["agency_id"].n_unique() if "agency_id" in frames.documents.columns else rep["distinct_agencies"]
        print(f"frames: {rep['reports']} reports, {rep['distinct_agencies']} agencies ({pages_expected} agency identities); "
              f"{findings.height} findings from run_rules in {t_rules.seconds:.1f} s", flush=True)
        quiet = wait_quiet(args.max_wait) if args.max_wait > 0 else {}
        html = out / "html"
        html.mkdir()
        if args.profile:
            with Timer() as timer:
                pages, top = profile_top(render_all, frames, findings, statuses, book, html, top=35)
            print(top)
        else:
            with TreeRss() as tree, Contention() as busy, Timer() as timer:
                render_all(frames, findings, statuses, book, html)
        written = list(html.glob("*.html"))
        size = sum(p.stat().st_size for p in written)
    result = {
        "key": f"render/n={args.n}/agencies={args.agencies}" + ("/profiled" if args.profile else ""),
        "date": now(),
        "n": args.n,
        "agencies": args.agencies,
        "seconds": round(timer.seconds, 2),
        "reports_per_s": round(args.n / timer.seconds, 1),
        "pages_written": len(written),
        "html_mb": round(size / 1e6, 1),
        "findings": findings.height,
        "run_rules_s": round(t_rules.seconds, 2),
        "import_render_s": round(import_s, 2),
        "frames": rep,
        "base": base_info,
        **maxrss_mb(),
        **quiet,
    }
    if not args.profile:
        result["tree_rss_peak_mb"] = tree.peak_mb
        result.update(busy.as_dict())
    print(
        f"render_all: {args.n} reports, {len(written)} pages ({size / 1e6:.0f} MB) in {timer.seconds:.1f} s "
        f"= {args.n / timer.seconds:.0f} reports/s; peak RSS {result['self_peak_mb']:.0f} MB",
        flush=True,
    )
    if not args.profile:
        print(f"  other processes used {result['other_processes_cores']:.2f} cores during the run", flush=True)
    if not args.no_record:
        record("render", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
