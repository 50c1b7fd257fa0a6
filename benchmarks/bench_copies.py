"""Near-duplicate detection: COPY-AGENCY over 50,000 generated reports, and the MinHash/LSH
libraries compared on the passages it compares.

    .venv/bin/python -m benchmarks.bench_copies --n 50000                # the rule, as run_rules runs it
    .venv/bin/python -m benchmarks.bench_copies --n 50000 --libraries    # rensa, datasketch, tors

The reports are those of bench_rules (replicate.py: 300 parsed synthetic reports replicated, each
replica printing its own agency; 0.5 % copied from another agency's report with its names left in).
The rule's run is one `run_rules` call with COPY-AGENCY alone: time, findings, and how many of the
copied reports it finds (each must have a finding naming the agency it copied from).

`--libraries` takes the distinct passages the rule compares at that size (those that name an agency
or place of the batch, 30+ characters as compared), and for several sizes runs each library's
MinHash (64 permutations over 5-character runs) and LSH (16 bands of 4) in a fresh process: seconds,
peak memory above the passages, candidate pairs, and the near-duplicate pairs among them (exact
Jaccard ≥ 0.7), compared between libraries. A library that is not installed is skipped
(`pip install -e '.[bench]'` installs them).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.common import RULES_DIR, Contention, Timer, TreeRss, maxrss_mb, now, record, wait_quiet

NUM_PERM, BANDS, SIMILARITY = 64, 16, 0.7
LIBRARIES = ("rensa", "datasketch", "tors")


# The rule over the reports ------------------------------------------------------------------


def frames_for(n: int, base_n: int, seed: int):
    from benchmarks.replicate import base_frames, replicate

    base, info = base_frames(base_n, seed)
    frames, rep = replicate(base, n, agencies=max(n // 4, 1))
    return frames, rep, info


def planted(frames, base: int) -> pl.DataFrame:
    """(source, copied_from): the reports replicate.py made as copies of another agency's report."""
    from benchmarks.replicate import COPIED

    every, at = COPIED
    docs = frames.documents.select(pl.col("source").cast(pl.Utf8), "agency").with_row_index("g")
    earlier = docs.select((pl.col("g") + base).alias("g"), pl.col("agency").alias("copied_from"))
    return docs.filter((pl.col("g") % every == at) & (pl.col("g") >= base)).join(earlier, on="g").select("source", "agency", "copied_from")


def run_rule(args) -> dict:
    import dataclasses

    from audits.engines.run import run_rules
    from audits.findings import findings_frame
    from audits.rulebook.book import load_rulebook

    book = load_rulebook(RULES_DIR)
    one = dataclasses.replace(book, rules=[r for r in book.rules if r.id == "COPY-AGENCY"])
    frames, rep, info = frames_for(args.n, args.base, args.seed)
    print(f"frames: {rep['reports']} reports ({rep['distinct_agencies']} agencies), replicated in {rep['seconds']} s", flush=True)
    quiet = wait_quiet(args.max_wait) if args.max_wait > 0 else {}
    with TreeRss() as tree, Contention() as busy, Timer() as timer:
        judgement = run_rules(one, frames)
    findings = findings_frame(judgement.findings)
    copies = planted(frames, rep["base_reports"])
    found = copies.join(findings.select("source", "message"), on="source", how="left").with_columns(
        pl.col("message").str.contains(pl.format("“{}”", pl.col("copied_from")), literal=True).fill_null(False).alias("found")
    ).group_by("source").agg(pl.col("found").any())
    result = {
        "key": f"copies/n={args.n}",
        "date": now(),
        "n": args.n,
        "seconds": round(timer.seconds, 2),
        "findings": findings.height,
        "reports_with_findings": findings["source"].n_unique(),
        "copied_reports": copies.height,
        "copied_reports_found": int(found["found"].sum()),
        "frames": rep,
        "base": info,
        **maxrss_mb(),
        "tree_rss_peak_mb": tree.peak_mb,
        **busy.as_dict(),
        **quiet,
    }
    print(
        f"COPY-AGENCY over {args.n} reports: {timer.seconds:.1f} s; {findings.height} findings in {result['reports_with_findings']} reports; "
        f"copied reports found {result['copied_reports_found']} of {copies.height}; peak RSS {result['self_peak_mb']:.0f} MB; "
        f"other processes used {result['other_processes_cores']:.2f} cores during the run",
        flush=True,
    )
    return result


# The libraries on the same passages ------------------------------------------------------------


def passages(n: int, base_n: int, seed: int) -> list[str]:
    """The distinct passages COPY-AGENCY compares over n reports (as compared: Han and Latin only)."""
    from audits.kinds import Batch
    from audits.rulebook.book import load_rulebook

    book = load_rulebook(RULES_DIR)
    check = next(r for r in book.rules if r.id == "COPY-AGENCY").check
    frames, _, _ = frames_for(n, base_n, seed)
    return check.passages(Batch(frames, book.layouts))["key"].unique(maintain_order=True).to_list()


def _shingle_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from audits.kinds.copying import SHINGLE, run_hashes

    owner, hashes = run_hashes(texts, SHINGLE)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(texts)))]).astype(np.uint64)
    return hashes, offsets


def _candidates_rensa(texts: list[str], clock: list) -> np.ndarray:
    """What the rule does: rensa's digests of the hashed runs, bands bucketed in Polars."""
    import rensa

    from audits.kinds.copying import SHINGLE, run_hashes

    owner, hashes = run_hashes(texts, SHINGLE)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(texts)))]).astype(np.uint64)
    digests = np.asarray(rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, NUM_PERM, 1).to_rows(), dtype=np.uint64)
    clock.append(time.perf_counter())
    rows = NUM_PERM // BANDS
    with np.errstate(over="ignore"):
        h = np.zeros((len(texts), BANDS), dtype=np.uint64)
        for r in range(rows):
            h = h * np.uint64(0x100000001B3) + digests[:, r::rows][:, :BANDS]
    buckets = pl.DataFrame({"k": np.repeat(np.arange(len(texts), dtype=np.uint32), BANDS), "band": np.tile(np.arange(BANDS, dtype=np.uint8), len(texts)), "h": h.reshape(-1)})
    pairs = buckets.join(buckets, on=["band", "h"], suffix="_b").filter(pl.col("k") < pl.col("k_b")).select("k", "k_b").unique()
    return pairs.to_numpy()


def _candidates_datasketch(texts: list[str], clock: list) -> np.ndarray:
    """datasketch as documented: a MinHash per passage from its runs (bulk), a MinHashLSH index."""
    from datasketch import MinHash, MinHashLSH

    runs = [[t[i : i + 5].encode("utf-8") for i in range(len(t) - 4)] for t in texts]
    sketches = MinHash.bulk(runs, num_perm=NUM_PERM, seed=1)
    clock.append(time.perf_counter())
    lsh = MinHashLSH(num_perm=NUM_PERM, params=(BANDS, NUM_PERM // BANDS))
    with lsh.insertion_session() as session:
        for i, m in enumerate(sketches):
            session.insert(i, m, check_duplication=False)
    pairs = {(min(i, j), max(i, j)) for i, m in enumerate(sketches) for j in lsh.query(m) if i != j}
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def _candidates_tors(texts: list[str], clock: list) -> np.ndarray:
    """tors: a signature per passage over 5-token runs (each Han character is a token), its banding."""
    import tors

    signatures = [tors.minhash_signature(t, num_perm=NUM_PERM, shingle_size=5, seed=1) for t in texts]
    clock.append(time.perf_counter())
    found = tors.lsh_candidates(signatures, bands=BANDS, rows=NUM_PERM // BANDS)
    pairs = found["pairs"] if isinstance(found, dict) else found.pairs
    return np.array(list(pairs), dtype=np.int64).reshape(-1, 2)


CANDIDATES = {"rensa": _candidates_rensa, "datasketch": _candidates_datasketch, "tors": _candidates_tors}


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def worker(library: str, keys: Path, size: int, out: Path) -> None:
    """One library over the first `size` passages, in this (fresh) process: seconds for the
    signatures and for the candidate pairs, and the peak resident memory above the passages."""
    import threading

    texts = pl.read_parquet(keys)["key"].head(size).to_list()
    before, peak, running = _rss_mb(), [0.0], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    clock = [time.perf_counter()]
    pairs = CANDIDATES[library](texts, clock)
    clock.append(time.perf_counter())
    running[0] = False
    sampler.join()
    pl.DataFrame({"k": pairs[:, 0].astype(np.uint32), "k_b": pairs[:, 1].astype(np.uint32)}).write_parquet(out)
    print(json.dumps({
        "signatures_s": round(clock[1] - clock[0], 2), "lsh_s": round(clock[2] - clock[1], 2), "seconds": round(clock[2] - clock[0], 2),
        "memory_mb": round(max(peak[0], _rss_mb()) - before, 1),
    }))


def compare_libraries(args) -> dict:
    from audits.kinds.copying import SHINGLE, jaccard, run_hashes

    texts = passages(args.n, args.base, args.seed)
    print(f"{len(texts)} distinct passages over {args.n} reports", flush=True)
    available = [lib for lib in LIBRARIES if _installed(lib)]
    sizes = sorted({s for s in (10_000, 50_000, 100_000, len(texts)) if s <= len(texts)})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp) / "keys.parquet"
        pl.DataFrame({"key": texts}).write_parquet(keys)
        for size in sizes:
            owner, hashes = run_hashes(texts[:size], SHINGLE)
            close = {}
            for lib in available:
                out = Path(tmp) / f"{lib}-{size}.parquet"
                try:
                    done = subprocess.run(
                        [sys.executable, "-m", "benchmarks.bench_copies", "--worker", lib, "--keys", str(keys), "--size", str(size), "--out", str(out)],
                        capture_output=True, text=True, timeout=args.timeout,
                    )
                except subprocess.TimeoutExpired:
                    rows.append({"library": lib, "passages": size, "timed_out_after_s": args.timeout})
                    print(f"  {lib:10s} {size:>7,} passages: not done in {args.timeout:.0f} s", flush=True)
                    continue
                if done.returncode != 0:
                    print(f"  {lib} at {size}: failed {done.stderr[-500:]}", flush=True)
                    continue
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                pairs = pl.read_parquet(out)
                near = jaccard(pairs, owner, hashes).filter(pl.col("jaccard") >= SIMILARITY)
                close[lib] = set(near.select("k", "k_b").iter_rows())
                rows.append({"library": lib, "passages": size, **figures, "candidates": pairs.height, "near_duplicates": len(close[lib])})
                print(f"  {lib:10s} {size:>7,} passages: signatures {figures['signatures_s']:6.2f} s, LSH {figures['lsh_s']:6.2f} s, +{figures['memory_mb']:7.1f} MB, "
                      f"{pairs.height:>9,} candidates, {len(close[lib]):>8,} near-duplicate pairs", flush=True)
            union = set().union(*close.values()) if close else set()
            for row in rows:
                if row["passages"] == size and row["library"] in close:
                    row["share_of_all_found"] = round(len(close[row["library"]]) / len(union), 4) if union else 1.0
                    row["agreement_with_rensa"] = (
                        round(len(close[row["library"]] & close["rensa"]) / len(close[row["library"]] | close["rensa"]), 4)
                        if "rensa" in close and (close[row["library"]] | close["rensa"]) else None
                    )
    return {"key": f"minhash/n={args.n}", "date": now(), "n": args.n, "passages": len(texts), "runs": rows, "versions": _versions(available)}


def _installed(library: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(library) is not None


def _versions(libraries: list[str]) -> dict:
    from importlib.metadata import version

    return {lib: version(lib) for lib in libraries}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="near-duplicate detection (COPY-AGENCY) and the MinHash libraries")
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--base", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--libraries", action="store_true", help="compare the MinHash/LSH libraries on the rule's passages")
    ap.add_argument("--timeout", type=float, default=900, help="seconds one library may take at one size")
    ap.add_argument("--max-wait", type=float, default=300)
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    ap.add_argument("--keys", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.keys, args.size, args.out)
        return 0
    result = compare_libraries(args) if args.libraries else run_rule(args)
    if not args.no_record:
        record("minhash" if args.libraries else "copies", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
