"""The whole audit of one corpus with the built-in pool and on a Dask LocalCluster, and what a
national year would take on N machines.

    .venv/bin/python -m benchmarks.bench_cluster                   # 10,000 reports, 2,000 of them PDFs
    .venv/bin/python -m benchmarks.bench_cluster --n 1000 --pdf 200 --no-record

The corpus: `--n - --pdf` synthetic reports (`synth.py`) and `--pdf` copies of the corpus PDFs (a
fifth of a national year's reports are PDFs). Both configurations run `audits.audit.run_audit` over
the same files, one after the other in one invocation (the machine is shared: figures from
different invocations are not comparable), each in a fresh child process so that its peak memory
is its own: `workers=2` (the built-in pebble pool) and `--cluster local:2` (a LocalCluster of two
single-threaded workers started inside the measured process, each parsing through its own pool).
Measured per configuration: wall time of the audit and of its parse, CPU seconds and peak resident
memory of the whole process tree (client, scheduler, Dask workers and their parse processes,
sampled every 0.1 s from /proc), how much CPU the rest of the machine used meanwhile; and that both
wrote the same findings.

Then the per-document costs, measured in one process (CPU seconds per text/HTML report and per
text-layer PDF, `parse_file`), and the run's client-side costs (rules, findings, HTML and output
files per report) give the projection for a national year (150,000 and 300,000 reports) on N
machines; OCR of scanned PDFs is not measured here (no OCR in this build) and enters as the stated
assumption of 5–10 CPU seconds a page.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks import synth
from benchmarks.common import RULES_DIR, TEMPLATES_DIR, Contention, Timer, TreeRss, now, record, wait_quiet

ROOT = Path(__file__).resolve().parents[1]
CLK = os.sysconf("SC_CLK_TCK")


class TreeCpu:
    """CPU seconds of this process and every descendant, dead ones included (sampled every 0.1 s:
    a process that lives less than that between two samples is missed; parse processes live for
    the whole batch)."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.seen: dict[tuple[int, str], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _cpu(pid: int) -> tuple[str, float] | None:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return fields[19], (int(fields[11]) + int(fields[12])) / CLK  # starttime names the process; utime + stime
        except (OSError, IndexError, ValueError):
            return None

    def _sample(self) -> None:
        from benchmarks.common import _children

        todo = [os.getpid()]
        while todo:
            pid = todo.pop()
            got = self._cpu(pid)
            if got:
                key = (pid, got[0])
                self.seen[key] = max(self.seen.get(key, 0.0), got[1])
            todo.extend(_children(pid))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeCpu":
        self._base = {}
        self._sample()
        self._base = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return round(sum(v - self._base.get(k, 0.0) for k, v in self.seen.items()), 1)

    def now(self) -> float:
        """The tree's CPU seconds so far (a fresh sample)."""
        self._sample()
        return self.seconds


def corpus(n: int, pdfs: int, seed: int) -> list[Path]:
    """`n - pdfs` synthetic reports and `pdfs` corpus PDFs, in two folders."""
    texts = synth.default_dir(n - pdfs, seed)
    synth.generate(n - pdfs, texts, seed, jobs=2, quiet=True)
    folder = synth.DEFAULT_BASE / f"pdf-{pdfs}"
    synth.make_pdfs(folder, pdfs)
    return [texts, folder]


def child(inputs: list[Path], cluster: str, out: Path) -> dict:
    """One measured `run_audit` (in a fresh process)."""
    import audits.audit as audit

    spent = {"parse_s": 0.0, "parse_cpu_s": 0.0}
    parse_batch = audit.parse_batch
    cpu = TreeCpu()

    def timed(*a, **k):
        t, c = time.perf_counter(), cpu.now()
        try:
            return parse_batch(*a, **k)
        finally:
            spent["parse_s"] += time.perf_counter() - t
            spent["parse_cpu_s"] += cpu.now() - c

    audit.parse_batch = timed
    with TreeRss() as tree, cpu, Contention() as busy, Timer() as timer:
        if cluster:
            from audits.cluster import connect

            with connect(cluster) as session:
                connect_s = timer.seconds_so_far()
                result = audit.run_audit(inputs, RULES_DIR, out, cluster=session)
                audit_s = timer.seconds_so_far() - connect_s
                workers = len(session.client.scheduler_info()["workers"])
        else:
            result = audit.run_audit(inputs, RULES_DIR, out, workers=2)
            audit_s, connect_s, workers = timer.seconds_so_far(), 0.0, 2
    docs = result.frames.documents
    n = docs.height
    # the whole machine's busy CPU (/proc/stat) minus the tree's own
    other = max(0.0, busy.other_cpu_s + busy.cpu_s - cpu.seconds)
    findings = (out / "findings.csv").read_bytes()
    return {
        "key": f"{n}/{'cluster' if cluster else 'local'}",
        "date": now(),
        "config": f"--cluster {cluster}" if cluster else "workers=2",
        "workers": workers,
        "n": n,
        "pdf": docs.filter(docs["format"] == "pdf").height,
        "seconds": round(timer.seconds, 1),
        "audit_s": round(audit_s, 1),
        "connect_s": round(connect_s, 1),
        "parse_s": round(spent["parse_s"], 1),
        "parse_cpu_s": round(spent["parse_cpu_s"], 1),
        "parse_cpu_ms_per_report": round(spent["parse_cpu_s"] * 1000 / n, 1),
        "after_parse_s": round(audit_s - spent["parse_s"], 1),
        "reports_per_s": round(n / timer.seconds, 1),
        "tree_cpu_s": cpu.seconds,
        "tree_rss_peak_mb": tree.peak_mb,
        "other_processes_cores": round(other / timer.seconds, 2),
        "findings": result.findings.height,
        "findings_sha256": hashlib.sha256(findings).hexdigest()[:16],
        "status": dict(docs["status"].value_counts().iter_rows()),
        "frames_mb": round(sum(getattr(result.frames, f).estimated_size("mb") for f in result.frames.__dataclass_fields__), 1),
    }


def costs(inputs: list[Path], texts: int = 400, pdfs: int = 30) -> dict:
    """CPU seconds per document by kind, parsed one by one in this process (layouts loaded first)."""
    from audits.workers import _layouts, parse_file

    _layouts(str(TEMPLATES_DIR))
    out = {}
    for kind, files in (("text", synth.files(inputs[0])[:texts]), ("pdf", sorted(inputs[1].glob("*.pdf"))[:pdfs])):
        t = time.process_time()
        for path in files:
            parse_file(str(path), str(TEMPLATES_DIR))
        out[f"cpu_s_per_{kind}"] = round((time.process_time() - t) / len(files), 4)
    return out


def projection(measured: dict, cluster: dict, cores: int, ocr_s_per_page: tuple[float, ...], pages: int, scanned: float) -> list[dict]:
    """Hours for a national year on M machines of `cores` cores each.

    Parse: documents × the CPU per report the cluster run spent parsing (its whole process tree:
    client, scheduler, Dask workers and parse processes, on this benchmark's mix of 80 % text/HTML
    and 20 % text-layer PDFs), with `scanned` of the PDFs replaced by scans of `pages` pages OCR'd at
    `ocr_s_per_page` CPU seconds a page, spread over M × cores (Dask keeps every thread busy while
    chunks are queued: a year is thousands of chunks, the tail is one chunk per thread). Client:
    gathering the frames (their measured size per report, at 1 Gbit/s), then rules, findings, HTML
    and output files at the per-report time this run measured after its parse (one process, taken
    as linear in the batch)."""
    n = cluster["n"]
    per_report = cluster["parse_cpu_s"] / n
    client_s_per_doc = cluster["after_parse_s"] / n
    frames_mb_per_doc = cluster["frames_mb"] / n
    rows = []
    for documents in (150_000, 300_000):
        for ocr in ocr_s_per_page:
            cpu = documents * (per_report + 0.2 * scanned * (pages * ocr - measured["cpu_s_per_pdf"]))
            for machines in (1, 5, 10, 20, 50):
                parse_h = cpu / (machines * cores) / 3600
                gather_h = documents * frames_mb_per_doc * 8 / 1000 / 3600  # MB → Gbit, at 1 Gbit/s
                client_h = documents * client_s_per_doc / 3600
                rows.append({
                    "documents": documents, "ocr_s_per_page": ocr, "machines": machines, "cores": cores,
                    "parse_cpu_h": round(cpu / 3600, 1), "parse_h": round(parse_h, 2), "client_h": round(client_h + gather_h, 2),
                    "total_h": round(parse_h + client_h + gather_h, 2), "frames_gb": round(documents * frames_mb_per_doc / 1024, 1),
                })
    return rows


def run_child(args: list[str]) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_cluster", "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"child failed: {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the whole audit locally and on a LocalCluster, and a projection")
    ap.add_argument("--n", type=int, default=10_000, help="reports in all")
    ap.add_argument("--pdf", type=int, default=2_000, help="of which PDFs")
    ap.add_argument("--seed", type=int, default=synth.DEFAULT_SEED)
    ap.add_argument("--cluster", default="local:2", help="what the cluster run connects to")
    ap.add_argument("--cores", type=int, default=16, help="cores per machine in the projection")
    ap.add_argument("--scanned", type=float, default=0.25, help="share of the PDFs that are scans (projection)")
    ap.add_argument("--pages", type=int, default=8, help="pages of a scanned report (projection)")
    ap.add_argument("--max-wait", type=float, default=300)
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", nargs="*", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--use", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.inputs, args.use, args.out), ensure_ascii=False))
        return 0

    with Timer() as gen:
        inputs = corpus(args.n, args.pdf, args.seed)
    print(f"corpus: {args.n - args.pdf} synthetic reports and {args.pdf} PDFs under {synth.DEFAULT_BASE} ({gen.seconds:.0f} s)", flush=True)
    outs = synth.DEFAULT_BASE / "cluster-out"
    runs = {}
    for label, use in (("local", ""), ("cluster", args.cluster)):
        quiet = wait_quiet(args.max_wait) if args.max_wait > 0 else {}
        runs[label] = {**run_child(["--inputs", *map(str, inputs), "--out", str(outs / label), "--use", use]), **quiet}
        r = runs[label]
        print(
            f"{r['config']:>17}: {r['n']} reports ({r['pdf']} PDF) in {r['seconds']:.0f} s (parse {r['parse_s']:.0f} s, rules+HTML+files "
            f"{r['after_parse_s']:.0f} s, cluster start {r['connect_s']:.0f} s); tree CPU {r['tree_cpu_s']:.0f} s; "
            f"peak tree RSS {r['tree_rss_peak_mb']:.0f} MB; other processes {r['other_processes_cores']:.2f} cores",
            flush=True,
        )
    same = runs["local"]["findings_sha256"] == runs["cluster"]["findings_sha256"]
    print(f"findings.csv identical: {same}", flush=True)
    measured = costs(inputs)
    print(f"per document (one process): text/HTML {measured['cpu_s_per_text'] * 1000:.1f} CPU ms, PDF {measured['cpu_s_per_pdf'] * 1000:.0f} CPU ms", flush=True)
    print(f"parse CPU per report (whole tree): local {runs['local']['parse_cpu_ms_per_report']:.0f} ms, cluster {runs['cluster']['parse_cpu_ms_per_report']:.0f} ms", flush=True)
    rows = projection(measured, runs["cluster"], args.cores, (5.0, 10.0), args.pages, args.scanned)
    for row in rows:
        if row["machines"] in (1, 10, 50):
            print(f"  {row['documents']:>7} reports, OCR {row['ocr_s_per_page']:.0f} s/page, {row['machines']:>2} × {row['cores']} cores: "
                  f"parse {row['parse_h']:.1f} h + client {row['client_h']:.2f} h = {row['total_h']:.1f} h")
    if not args.no_record:
        for label, r in runs.items():
            record("cluster", {**r, "identical_findings": same, "corpus": {"n": args.n, "pdf": args.pdf, "seed": args.seed}})
        record("cluster_projection", {
            "key": f"{args.n}/projection", "date": now(), **measured,
            "assumptions": {"cores_per_machine": args.cores, "pdf_share": 0.2, "scanned_share_of_pdf": args.scanned, "pages_per_scan": args.pages,
                            "ocr_cpu_s_per_page": [5.0, 10.0], "network_gbit_s": 1},
            "rows": rows,
        })
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
