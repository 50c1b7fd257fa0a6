"""End-to-end parse throughput: files on disk → `audits.audit.parse_batch` → Polars frames.

    .venv/bin/python -m benchmarks.bench_parse --n 2000
    .venv/bin/python -m benchmarks.bench_parse --n 50000
    .venv/bin/python -m benchmarks.bench_parse --pdf 60          # the corpus PDFs, repeated
    .venv/bin/python -m benchmarks.bench_parse --doc 60          # Word 97 files (LibreOffice)

Each configuration (workers=2, workers=1) runs in a fresh child process, so that its peak memory
is its own: `getrusage` maxrss of the process (parent) and of its largest pool worker, and the
sampled resident memory of the whole process tree (parent + workers at the same moment).
Throughput is reports / wall seconds of `parse_batch` (reading, decoding, normalising, parsing,
pickling results back, building the frames); generating the synthetic files is timed apart.

`--doc` also times LibreOffice alone (`word97.convert_many`, in a fresh process): one call per file
(the first makes the process's profile: "cold"; the rest reuse it: "warm") against one call for
all the files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks import synth
from benchmarks.common import TEMPLATES_DIR, Contention, Timer, TreeRss, cpu_seconds, maxrss_mb, now, profile_top, record, wait_quiet


def child(paths: list[Path], workers: int, label: str) -> dict:
    """One measured parse_batch run (called in a fresh process)."""
    t0 = time.perf_counter()
    import audits.audit as audit
    import audits.workers as pool

    import_s = time.perf_counter() - t0
    # Time the parent's share (frames built between chunks, while the pool waits) without
    # touching the code under test: wrap the names parse_batch looks up (in audits.workers).
    spent = {"build_frames_s": 0.0, "concat_frames_s": 0.0}

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t

        return wrapper

    pool.build_frames = timed("build_frames_s", pool.build_frames)
    pool.concat_frames = timed("concat_frames_s", pool.concat_frames)
    with TreeRss() as tree, Contention() as busy, Timer() as timer:
        frames = audit.parse_batch(paths, TEMPLATES_DIR, workers=workers)
    if isinstance(frames, tuple):  # (frames, reused from the parse cache): no cache here
        frames = frames[0]
    n = len(paths)
    docs = frames.documents
    sizes = {name: getattr(frames, name).estimated_size("mb") for name in ("documents", "cells", "sections", "lines", "snippets", "notes")}
    rows = {name: getattr(frames, name).height for name in sizes}
    return {
        "key": f"{label}/workers={workers}",
        "date": now(),
        "input": label,
        "n": n,
        "workers": workers,
        "seconds": round(timer.seconds, 2),
        "reports_per_s": round(n / timer.seconds, 1),
        "ms_per_report_per_worker": round(timer.seconds * 1000 * workers / n, 2),
        "cpu_ms_per_report": round(busy.cpu_s * 1000 / n, 2),
        "import_audits_s": round(import_s, 2),
        **busy.as_dict(),
        **{k: round(v, 2) for k, v in spent.items()},
        "tree_rss_peak_mb": tree.peak_mb,
        **maxrss_mb(),
        "frames_mb": round(sum(sizes.values()), 1),
        "frame_mb": {k: round(v, 1) for k, v in sizes.items()},
        "frame_rows": rows,
        "status": dict(Counter(docs["status"].to_list())),
        "formats": dict(Counter(docs["format"].to_list())),
    }


def conversions(paths: list[Path], single: int = 10) -> dict:
    """Seconds of LibreOffice conversions (called in a fresh process): `single` files one call
    each, then every file in one call. CPU seconds (this process and the soffice it waited for)
    are given beside wall seconds: other processes on the machine slow the latter down."""
    from audits.ingest import Limits, word97

    timeout = Limits().convert_seconds
    datas = [p.read_bytes() for p in paths]
    alone, alone_cpu = [], []
    with Contention() as busy:
        for data in datas[:single]:
            cpu = cpu_seconds()
            with Timer() as timer:
                result = word97.convert_many([data], timeout)[0]
            assert isinstance(result, bytes), result
            alone.append(timer.seconds)
            alone_cpu.append(cpu_seconds() - cpu)
        cpu = cpu_seconds()
        with Timer() as batch:
            results = word97.convert_many(datas, timeout)
        batch_cpu = cpu_seconds() - cpu
    assert all(isinstance(r, bytes) for r in results), [r for r in results if isinstance(r, str)][:3]
    warm, warm_cpu = alone[1:], alone_cpu[1:]
    return {
        "key": f"doc-{len(paths)}",
        "date": now(),
        "n": len(paths),
        "alone_first_s": round(alone[0], 2),
        "alone_first_cpu_s": round(alone_cpu[0], 2),
        "alone_warm_s_per_file": round(sum(warm) / len(warm), 2),
        "alone_warm_cpu_s_per_file": round(sum(warm_cpu) / len(warm_cpu), 2),
        "alone_warm_min_max_s": [round(min(warm), 2), round(max(warm), 2)],
        "one_call_s": round(batch.seconds, 2),
        "one_call_s_per_file": round(batch.seconds / len(paths), 3),
        "one_call_cpu_s_per_file": round(batch_cpu / len(paths), 3),
        **busy.as_dict(),
    }


def run_child(args: list[str], max_wait: float = 0) -> dict:
    quiet = wait_quiet(max_wait) if max_wait > 0 else {}
    cmd = [sys.executable, "-m", "benchmarks.bench_parse", "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child failed: {' '.join(cmd)}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), **quiet}


def _show(result: dict) -> None:
    print(
        f"{result['input']:>14} workers={result['workers']}: {result['n']} reports in {result['seconds']:.1f} s = "
        f"{result['reports_per_s']:.0f} reports/s; peak tree RSS {result['tree_rss_peak_mb']:.0f} MB "
        f"(parent {result['self_peak_mb']:.0f} MB, largest worker {result['children_peak_mb']:.0f} MB); "
        f"frames {result['frames_mb']:.0f} MB; build_frames {result['build_frames_s']:.1f} s; "
        f"{result['cpu_ms_per_report']:.1f} CPU ms/report; other processes used {result['other_processes_cores']:.2f} cores",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="parse throughput and peak memory")
    ap.add_argument("--n", type=int, default=None, help="synthetic text/HTML reports (default 2000 unless --pdf)")
    ap.add_argument("--pdf", type=int, default=0, help="also (or only, without --n) the corpus PDFs repeated to this many files")
    ap.add_argument("--doc", type=int, default=0, help="also (or only, without --n) Word 97 files (seed variants) repeated to this many")
    ap.add_argument("--conversions", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workers", default="2,1", help="comma-separated worker counts, each in its own process")
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--dir", type=Path, default=None, help="where the synthetic files go (default /tmp/audits-bench/...)")
    ap.add_argument("--profile", type=int, default=0, help="cProfile one worker over this many reports and print the top functions")
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for other processes to go quiet before each run (0: don't)")
    ap.add_argument("--no-record", action="store_true", help="do not write results.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--label", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    workers = [int(w) for w in str(args.workers).split(",") if w]

    if args.child:
        paths = synth.files(args.dir)
        if args.n:
            paths = paths[: args.n]
        result = conversions(paths) if args.conversions else child(paths, workers[0], args.label)
        print(json.dumps(result, ensure_ascii=False))
        return 0

    n = args.n if args.n is not None else (0 if args.pdf or args.doc else 2000)
    if n:
        out = args.dir or synth.default_dir(n, args.seed)
        with Timer() as gen:
            manifest = synth.generate(n, out, args.seed, jobs=2)
        print(f"synthetic reports: {n} under {out} ({manifest['bytes'] / 1e6:.0f} MB; generated in {manifest.get('generate_seconds', gen.seconds):.1f} s)", flush=True)
        print("  mix: " + ", ".join(f"{k} {v}" for k, v in manifest["counts"].items()), flush=True)
        if args.profile:
            import audits.audit as audit

            paths = synth.files(out)[: args.profile]
            _, text = profile_top(audit.parse_batch, paths, TEMPLATES_DIR, workers=1, top=30)
            print(text)
            return 0
        for w in workers:
            result = run_child(["--dir", str(out), "--n", str(n), "--workers", str(w), "--label", f"synthetic-{n}"], args.max_wait)
            result["synthetic"] = {"seed": args.seed, "mix": manifest["counts"], "bytes": manifest["bytes"], "generate_s": manifest.get("generate_seconds")}
            _show(result)
            if not args.no_record:
                record("parse", result)
    if args.pdf:
        out = (args.dir.parent if args.dir else synth.DEFAULT_BASE) / f"pdf-{args.pdf}"
        synth.make_pdfs(out, args.pdf)
        for w in workers:
            result = run_child(["--dir", str(out), "--workers", str(w), "--label", f"pdf-{args.pdf}"], args.max_wait)
            _show(result)
            if not args.no_record:
                record("parse", result)
    if args.doc:
        out = (args.dir.parent if args.dir else synth.DEFAULT_BASE) / f"doc-{args.doc}"
        synth.make_docs(out, args.doc)
        for w in workers:
            result = run_child(["--dir", str(out), "--workers", str(w), "--label", f"doc-{args.doc}"], args.max_wait)
            _show(result)
            if not args.no_record:
                record("parse", result)
        result = run_child(["--dir", str(out), "--conversions"], args.max_wait)
        print(
            f"LibreOffice, one call per file: first {result['alone_first_s']:.2f} s ({result['alone_first_cpu_s']:.2f} CPU s), "
            f"then {result['alone_warm_s_per_file']:.2f} s a file ({result['alone_warm_cpu_s_per_file']:.2f} CPU s); "
            f"all {result['n']} in one call: {result['one_call_s']:.1f} s = {result['one_call_s_per_file']:.3f} s a file "
            f"({result['one_call_cpu_s_per_file']:.3f} CPU s); "
            f"other processes used {result['other_processes_cores']:.2f} cores",
            flush=True,
        )
        if not args.no_record:
            record("convert", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
