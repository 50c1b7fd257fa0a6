"""findings.xlsx: `audits.outputs.write_workbook` (Polars' write_excel over xlsxwriter) at several sizes.

    .venv/bin/audits run ../shared/seeds ../shared/corpus --out /tmp/audits-bench/xlsx-base
    .venv/bin/python -m benchmarks.bench_xlsx --base /tmp/audits-bench/xlsx-base --n 10000 50000 190000

The findings and documents of a real run (its findings.parquet and documents.parquet) are repeated,
each copy under its own source names, until the findings reach N rows (the documents grow in the
same proportion); the measured part is one `write_workbook` call. The CSV and Parquet writes of the
same findings are timed beside it for scale.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import polars as pl

from benchmarks.common import Contention, Timer, maxrss_mb, now, record, wait_quiet


def grown(frame: pl.DataFrame, copies: int) -> pl.DataFrame:
    """`frame` repeated `copies` times, each copy's sources made distinct (…#copy7)."""
    parts = [frame.with_columns((pl.col("source").cast(pl.Utf8) + f"#copy{i}").alias("source")) for i in range(copies)]
    return pl.concat(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="findings.xlsx at several sizes")
    ap.add_argument("--base", type=Path, required=True, help="an output folder of `audits run` (findings.parquet, documents.parquet)")
    ap.add_argument("--n", type=int, nargs="+", default=[10000, 50000, 190000])
    ap.add_argument("--max-wait", type=float, default=300)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    from audits.outputs import FINDING_COLUMNS, write_table, write_workbook
    from audits.rulebook.book import load_rulebook
    from benchmarks.common import RULES_DIR

    titles = {r.id: r.title for r in load_rulebook(RULES_DIR).rules}
    findings0 = pl.read_parquet(args.base / "findings.parquet")
    documents0 = pl.read_parquet(args.base / "documents.parquet")
    for n in args.n:
        copies = math.ceil(n / findings0.height)
        findings = grown(findings0, copies).head(n)
        documents = grown(documents0, copies)
        quiet = wait_quiet(args.max_wait) if args.max_wait > 0 else {}
        with tempfile.TemporaryDirectory(prefix="audits-bench-xlsx-") as tmp:
            out = Path(tmp)
            with Contention() as busy, Timer() as timer:
                write_workbook(out / "findings.xlsx", findings, documents, titles)
            with Timer() as tables:
                write_table(findings, out, "findings", FINDING_COLUMNS)
            size = (out / "findings.xlsx").stat().st_size
        result = {
            "key": f"xlsx/n={n}",
            "date": now(),
            "findings": findings.height,
            "documents": documents.height,
            "seconds": round(timer.seconds, 2),
            "findings_per_s": round(findings.height / timer.seconds),
            "csv_and_parquet_seconds": round(tables.seconds, 2),
            "xlsx_mb": round(size / 2**20, 1),
            **busy.as_dict(),
            **quiet,
            **maxrss_mb(),
        }
        print(result, flush=True)
        if not args.no_record:
            record("xlsx", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
