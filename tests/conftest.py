"""Shared fixtures: where ../shared is, the layouts, a cached parse of any real report, and one
audit of every real report (with a hostile one) through the command line, shared by the tests of
findings, pages, the browser and the reviewer's words."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
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


# Hostile text injected into a copy of the clean report (rules/cases/clean_2021.md).
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
JS_LINK = "[点击查看](javascript:alert(3))"
A_LINK = '<a href="javascript:alert(3)">点击查看</a>'
PWNED = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"
PAYLOADS = [SCRIPT, IMG, JS_LINK, A_LINK, PWNED]
HOSTILE_SENTENCE = f"本年度发生因信息公开审查不严而泄漏国家秘密的事件{SCRIPT}{IMG}，详见{JS_LINK}{A_LINK}。"


def hostile_report(folder: Path) -> Path:
    """The clean report with script, markup, a javascript: link and a spam line in its text and title."""
    text = (ROOT / "rules" / "cases" / "clean_2021.md").read_text(encoding="utf-8")
    edits = [
        ("示例市交通运输局2024年政府信息公开工作年度报告", f"示例市交通运输局{SCRIPT}2024年政府信息公开工作年度报告"),
        ("（三）政府信息管理。", f"（三）政府信息管理。{HOSTILE_SENTENCE}"),
        ("六、其他需要报告的事项\n", f"六、其他需要报告的事项\n\n久久精品国产中文字幕在线观看超碰人人{PWNED}\n"),
    ]
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hostile_2024.txt"
    path.write_text(text, encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Audited:
    """One `audits run` over ../shared/seeds, ../shared/corpus and a hostile report: its output
    folder, what the command printed, and the output files read back."""

    out: Path
    output: str
    hostile: str
    findings: list[dict]
    documents: list[dict]
    cells: list[dict]

    def doc(self, source: str) -> dict:
        return next(d for d in self.documents if d["source"] == source)

    def pages(self) -> list[Path]:
        return sorted(self.out.glob("*.html"))


@pytest.fixture(scope="session")
def audited(tmp_path_factory) -> Audited:
    from typer.testing import CliRunner

    from audits.cli import app

    need_shared()
    folder = tmp_path_factory.mktemp("audited")
    hostile = hostile_report(folder / "in")
    out = folder / "out"
    args = ["run", str(SHARED / "seeds"), str(SHARED / "corpus"), str(hostile), "--rules", str(ROOT / "rules"), "--out", str(out), "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return Audited(out, result.output, str(hostile), read_csv(out / "findings.csv"), read_csv(out / "documents.csv"), read_csv(out / "cells.csv"))
