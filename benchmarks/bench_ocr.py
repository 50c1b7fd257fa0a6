"""Seconds per scanned PDF page: the corpus PDFs printed to images and read back by OCR.

    .venv/bin/python -m benchmarks.bench_ocr                 # 150 and 200 dpi
    .venv/bin/python -m benchmarks.bench_ocr --dpi 200

The three corpus PDFs (16 pages) are each turned into a PDF that holds only images of its pages
at the given resolution (grayscale, stored losslessly), then read with `read_document` one after
another in a fresh process (one worker): wall and CPU seconds per page, CPU counting every thread
of the OCR runtime. Loading the engine (imports, model sessions) is timed apart, on one small
page, before the measured reads. The text-layer PDFs are `bench_parse --pdf`.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Contention, Timer, maxrss_mb, now, record, wait_quiet
from benchmarks.synth import DEFAULT_BASE, SHARED


def make_scans(out: Path, dpi: int, shared: Path = SHARED) -> list[Path]:
    """Image-only copies of the corpus PDFs at `dpi`, under `out`."""
    import pypdfium2 as pdfium

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for src_path in sorted((shared / "corpus").glob("*.pdf")):
        path = out / f"{src_path.stem}-{dpi}dpi.pdf"
        if not path.exists():
            src, scan = pdfium.PdfDocument(src_path), pdfium.PdfDocument.new()
            for page in src:
                width, height = page.get_size()
                image = pdfium.PdfImage.new(scan)
                image.set_bitmap(page.render(scale=dpi / 72, grayscale=True))
                image.set_matrix(pdfium.PdfMatrix().scale(width, height))
                new = scan.new_page(width, height)
                new.insert_obj(image)
                new.gen_content()
            buffer = io.BytesIO()
            scan.save(buffer)
            path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def child(paths: list[Path], dpi: int) -> dict:
    """One measured run (called in a fresh process)."""
    import pypdfium2 as pdfium

    from audits.ingest import ocr, read_document

    with Timer() as load:
        engine = ocr.engine()
        engine(ocr.render(pdfium.PdfDocument(paths[0])[0], 72))  # first call loads det, cls and rec
    pages = sum(len(pdfium.PdfDocument(p)) for p in paths)
    longest = max(max(page.get_size()) for p in paths for page in pdfium.PdfDocument(p))
    render_dpi = round(min(ocr.DPI, ocr.MAX_SIDE * 72 / longest))  # what `ocr.render` uses (A4: 171)
    per_file = {}
    with Contention() as busy, Timer() as timer:
        for path in paths:
            t = time.perf_counter()
            text, _ = read_document(path)
            per_file[path.name] = round(time.perf_counter() - t, 2)
            if text.problems or not text.ocr_lines:
                raise SystemExit(f"{path.name}: not read by OCR: {text.problems}")
    return {
        "key": f"scanned-{dpi}dpi",
        "date": now(),
        "dpi": dpi,
        "render_dpi": render_dpi,
        "files": len(paths),
        "pages": pages,
        "seconds": round(timer.seconds, 2),
        "wall_s_per_page": round(timer.seconds / pages, 2),
        "cpu_s_per_page": round(busy.cpu_s / pages, 2),
        "engine_load_s": round(load.seconds, 2),
        "seconds_per_file": per_file,
        **busy.as_dict(),
        **maxrss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dpi", default="150,200", help="comma-separated resolutions of the scans")
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for other processes to go quiet before each run (0: don't)")
    ap.add_argument("--no-record", action="store_true", help="do not write results.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for dpi in [int(d) for d in args.dpi.split(",") if d]:
        paths = make_scans(DEFAULT_BASE / "scans", dpi)
        if args.child:
            print(json.dumps(child(paths, dpi), ensure_ascii=False))
            continue
        quiet = wait_quiet(args.max_wait) if args.max_wait > 0 else {}
        cmd = [sys.executable, "-m", "benchmarks.bench_ocr", "--child", "--dpi", str(dpi)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"child failed: {' '.join(cmd)}")
        result = {**json.loads(proc.stdout.strip().splitlines()[-1]), **quiet}
        print(
            f"scanned {dpi} dpi: {result['pages']} pages in {result['seconds']:.1f} s = {result['wall_s_per_page']:.2f} s/page wall, "
            f"{result['cpu_s_per_page']:.2f} CPU s/page; engine load {result['engine_load_s']:.1f} s; "
            f"other processes used {result['other_processes_cores']:.2f} cores",
            flush=True,
        )
        if not args.no_record:
            record("ocr", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
