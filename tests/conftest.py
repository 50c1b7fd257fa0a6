"""Shared fixtures: where ../shared is, the layouts, and a cached parse of any real report."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest

from audits.ingest import read_document
from audits.layouts import load_layouts
from audits.model import ParsedReport
from audits.parse.report import parse

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDITS_SHARED", ROOT.parent / "shared"))
EXPECTED = ROOT / "tests" / "expected"
LAYOUTS = load_layouts(ROOT / "rules" / "templates")


@lru_cache(maxsize=None)
def parsed(relative: str) -> ParsedReport:
    """The parse of a file under ../shared (e.g. `seeds/000_….txt`), cached across tests."""
    text, _ = read_document(SHARED / relative)
    return parse(text, LAYOUTS)


def need_shared() -> None:
    if not (SHARED / "seeds").is_dir():
        pytest.skip(f"../shared not found at {SHARED}")
