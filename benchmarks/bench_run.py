"""The whole command as users meet it: `audits run` end to end over N synthetic reports.

    .venv/bin/python -m benchmarks.bench_run                       # N = 1, 200, 2000, 10000, 50000
    .venv/bin/python -m benchmarks.bench_run --sizes 1 200 2000    # a quicker curve

For each N the synthetic reports (synth.py: every text and HTML layout) are written once and
`audits run DIR --out TMP` runs as its own process: wall time, CPU of the whole process tree (the
command and its parse workers) and the peak resident memory of the tree, sampled. In the same run
the floor is measured in this process over the same files: read, decode, traditional → simplified,
NFKC and one regular-expression pass — what any parser costs at least. The fixed cost and the
per-report slope are fitted over the sizes run, so the curve is on record.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from benchmarks.common import ROOT, Contention, TreeRss, now, record, wait_quiet
from benchmarks.synth import generate

AUDITS = [sys.executable, "-m", "audits.cli"]
_ANY = re.compile(r"(\d{4})\s*年")
# The command's own stage lines on stderr (audits.progress): "解析：2000/2000，用时 7.2 秒".
_STAGE = re.compile(r"^(\S+?)：[\d/]+，用时 ([\d.]+) 秒$", re.M)


def stage_seconds(stderr: str) -> dict[str, float]:
    """Seconds per stage (查找文件, 解析, 规则, 页面, 输出) as the command printed them."""
    return {name: float(sec) for name, sec in _STAGE.findall(stderr)}


def floor(files: list[Path]) -> dict:
    """Reports per second, on one core, of reading and normalising the files and one regex pass."""
    import opencc

    from audits.ingest.encoding import decode

    t2s = opencc.OpenCC("t2s")
    t0 = time.process_time()
    for path in files:
        text = decode(path.read_bytes())[0]
        _ANY.findall(unicodedata.normalize("NFKC", t2s.convert(text)))
    seconds = time.process_time() - t0
    return {"floor_cpu_ms_per_report": round(1000 * seconds / max(len(files), 1), 3), "floor_reports_per_s_one_core": round(len(files) / seconds, 1) if seconds else None}


def run_once(folder: Path, n: int) -> dict:
    """`audits run` over `folder` as a separate process: wall, tree CPU, tree peak memory."""
    with tempfile.TemporaryDirectory(prefix="audits-bench-run-") as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with TreeRss() as tree, Contention() as busy:
            t0 = time.perf_counter()
            done = subprocess.run([*AUDITS, "run", str(folder), "--rules", str(ROOT / "rules"), "--out", str(Path(tmp) / "out")], cwd=ROOT, capture_output=True, text=True)
            wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"audits run failed at N={n}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "seconds": round(wall, 2),
        "reports_per_s": round(n / wall, 1),
        "tree_cpu_s": round(cpu, 2),
        "cpu_ms_per_report": round(1000 * cpu / n, 2),
        "tree_rss_peak_mb": tree.peak_mb,
        "stage_seconds": stage_seconds(done.stderr),
        **{k: v for k, v in busy.as_dict().items() if k != "cpu_s"},
    }


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares `y = a + b·n`: the fixed cost and the cost per report."""
    if len(points) < 2:
        return points[0][1] if points else 0.0, 0.0
    mean_n = sum(n for n, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    b = sum((n - mean_n) * (y - mean_y) for n, y in points) / sum((n - mean_n) ** 2 for n, _ in points)
    return mean_y - b * mean_n, b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="`audits run` end to end at several sizes")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 200, 2000, 10000, 50000])
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for other processes to go quiet")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    results = []
    for n in args.sizes:
        folder = Path(tempfile.gettempdir()) / "audits-bench" / f"synth-{n}"
        generate(n, folder, seed=args.seed, quiet=True)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json")
        quiet = wait_quiet(args.max_wait) if args.max_wait > 0 else {}
        measured = run_once(folder, n)
        result = {"key": f"run/n={n}", "date": now(), "n": n, **measured, **floor(files), **quiet}
        results.append(result)
        print(
            f"N={n:>6}: {measured['seconds']:.1f} s wall = {measured['reports_per_s']:.0f} reports/s, {measured['cpu_ms_per_report']:.2f} CPU ms/report "
            f"(floor {result['floor_cpu_ms_per_report']:.3f}), peak {measured['tree_rss_peak_mb']:.0f} MB, other processes {measured['other_processes_cores']:.2f} cores",
            flush=True,
        )
        print("        " + ", ".join(f"{k} {v:g} s" for k, v in measured["stage_seconds"].items()), flush=True)
        if not args.no_record:
            record("run", result)
    fixed, slope = fit([(r["n"], r["seconds"]) for r in results])
    cpu_fixed, cpu_slope = fit([(r["n"], r["tree_cpu_s"]) for r in results])
    print(f"wall ≈ {fixed:.2f} s + {1000 * slope:.2f} ms × N; tree CPU ≈ {cpu_fixed:.2f} s + {1000 * cpu_slope:.2f} ms × N")
    if not args.no_record and len(results) > 1:
        sizes = [r["n"] for r in results]
        record(
            "run",
            {
                "key": f"run/fit={','.join(map(str, sizes))}",
                "date": now(),
                "sizes": sizes,
                "wall_fixed_s": round(fixed, 2),
                "wall_ms_per_report": round(1000 * slope, 3),
                "cpu_fixed_s": round(cpu_fixed, 2),
                "cpu_ms_per_report": round(1000 * cpu_slope, 3),
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
