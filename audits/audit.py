"""One audit run: files → parsed reports → frames → rules → findings → HTML and output files.

`audits run` and every scheduled job call `run_audit`; nothing here knows about the command line.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from audits.frames import Frames, build_frames, concat_frames
from audits.ingest import Limits, discover, read_document
from audits.layouts import load_layouts
from audits.model import ParsedReport
from audits.parse import parse

PACKAGE = Path(__file__).resolve().parent
SAMPLES = PACKAGE / "samples"
CHUNK = 2000  # reports parsed per chunk; frames are built per chunk to keep memory flat


def default_rules_dir() -> Path:
    """`./rules` when it exists (a checkout), else the rule set installed with the package."""
    local = Path("rules")
    if (local / "templates").is_dir():
        return local
    return PACKAGE / "rules"


@dataclass
class AuditResult:
    frames: Frames
    findings: pl.DataFrame
    out: Path
    skipped: list[Path] = field(default_factory=list)
    index_html: Path | None = None


@lru_cache(maxsize=4)
def _layouts(templates_dir: str):
    return load_layouts(Path(templates_dir))


def parse_file(path: str, templates_dir: str) -> ParsedReport:
    """Read and parse one file; never raises (a broken file is a `failed` report)."""
    try:
        text, data = read_document(Path(path), Limits())
        report = parse(text, _layouts(templates_dir), hashlib.sha256(data).hexdigest())
    except Exception as exc:  # noqa: BLE001 - one bad report must not take the batch down
        report = ParsedReport(source=path, status="failed")
        report.problems.append(f"解析程序出错（{type(exc).__name__}: {exc}）")
    return report


def parse_batch(paths: list[Path], templates_dir: Path, workers: int | None = None, on_progress=None) -> Frames:
    """Parse files on all cores, building frames chunk by chunk."""
    workers = workers or min(os.cpu_count() or 1, 8)
    parts: list[Frames] = []
    names = [str(p) for p in paths]
    if workers <= 1 or len(names) < 8:
        for start in range(0, len(names), CHUNK):
            chunk = [parse_file(n, str(templates_dir)) for n in names[start : start + CHUNK]]
            parts.append(build_frames(chunk))
            if on_progress:
                on_progress(len(chunk))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for start in range(0, len(names), CHUNK):
                batch = names[start : start + CHUNK]
                chunk = list(pool.map(parse_file, batch, [str(templates_dir)] * len(batch), chunksize=16))
                parts.append(build_frames(chunk))
                if on_progress:
                    on_progress(len(chunk))
    return concat_frames(parts) if parts else build_frames([])


def inputs_or_samples(inputs: list[Path]) -> list[Path]:
    return inputs or [SAMPLES]


def find_documents(inputs: list[Path]):
    return discover(inputs_or_samples(inputs))


def findings_frame(findings) -> pl.DataFrame:
    rows = [
        {
            "source": f.source,
            "agency": f.agency,
            "report_year": f.report_year,
            "rule_id": f.rule_id,
            "category": f.category,
            "severity": f.severity,
            "message": f.message,
            "evidence": f.evidence,
            "cells": ";".join(f.cells),
            "line": f.line,
        }
        for f in findings
    ]
    schema = {
        "source": pl.Utf8, "agency": pl.Utf8, "report_year": pl.Int32, "rule_id": pl.Utf8, "category": pl.Utf8,
        "severity": pl.Utf8, "message": pl.Utf8, "evidence": pl.Utf8, "cells": pl.Utf8, "line": pl.Int32,
    }
    order = pl.col("severity").replace_strict({"error": 0, "warning": 1, "info": 2}, default=3)
    return pl.DataFrame(rows, schema=schema).sort(["source", order, "rule_id"]) if rows else pl.DataFrame(schema=schema)


def run_audit(inputs: list[Path], rules_dir: Path, out: Path, on_progress=None, workers: int | None = None) -> AuditResult:
    """The whole audit of a batch; writes every output file into `out`."""
    from audits.engines import run_rules
    from audits.outputs import CELL_COLUMNS, DOCUMENT_COLUMNS, FINDING_COLUMNS, write_table
    from audits.render import render_all
    from audits.rulebook import load_rulebook

    book = load_rulebook(rules_dir)
    found = find_documents(inputs)
    frames = parse_batch(found.documents, rules_dir / "templates", workers=workers, on_progress=on_progress)
    out.mkdir(parents=True, exist_ok=True)
    findings = findings_frame(run_rules(book, frames, out))
    pages = render_all(frames, findings, book, out)
    documents = frames.documents.join(pages, on="source", how="left")
    write_table(findings, out, "findings", FINDING_COLUMNS)
    write_table(documents, out, "documents", DOCUMENT_COLUMNS)
    write_table(frames.cells, out, "cells", CELL_COLUMNS)
    return AuditResult(frames, findings, out, found.skipped, out / "index.html")
