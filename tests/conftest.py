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


def long_pdf(copies: int = 6) -> bytes:
    """A text-layer PDF that takes well over 0.05 s to read on any machine: hongze_2023's five pages
    `copies` times over (one copy reads in ~75 CPU ms, too close to such a budget to fail it surely)."""
    import io

    import pypdfium2

    source = pypdfium2.PdfDocument(SHARED / "corpus" / "hongze_2023.pdf")
    pdf = pypdfium2.PdfDocument.new()
    for _ in range(copies):
        pdf.import_pages(source)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


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


class OutputFolder:
    """What a test reads back from an audit's output folder (`out`, `documents`)."""

    def doc(self, source: str) -> dict:
        return next(d for d in self.documents if d["source"] == source)

    def pages(self) -> list[Path]:
        return sorted(self.out.glob("*.html"))


@dataclass
class Audited(OutputFolder):
    """One `audits run` over ../shared/seeds, ../shared/corpus and a hostile report: its output
    folder, what the command printed, and the output files read back."""

    out: Path
    output: str
    hostile: str
    findings: list[dict]
    documents: list[dict]
    cells: list[dict]


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


# --- a small batch with reviewer decisions ------------------------------------------------------

CLEAN_AGENCY = "示例市交通运输局"
T4_DEFECT = ("| 1 | 0 | 0 | 1 | 2 | 0 |", "| 0 | 0 | 0 | 1 | 2 | 0 |")  # rules/cases/T4-SUM.yaml: 行政复议 total 2 ≠ 0+0+0+1
SCRIPT_DEFECT = ("六、其他需要报告的事项\n", "六、其他需要报告的事项\n\ndocument.write('<div>广告</div>');\n")  # SCRIPT.yaml
NO_CONTACT = ("，请与示例市交通运输局办公室联系（地址：示例市人民路18号，电话：0571-87654321，电子邮箱：jtj@example.gov.cn）", "，请与示例市交通运输局办公室联系")  # CONTACT.yaml
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE
BIDI_AGENCY = f"平潭综合实验区{RLO}局育教"  # shown without the override, 教育局 would read backwards and so would the page after it
DISMISS_COMMENT = "表四总计经电话核实为排版错误"


def clean_variant(folder: Path, name: str, agency: str, edits: list[tuple[str, str]]) -> Path:
    """The clean report (rules/cases/clean_2021.md) of another agency, with defects put in. The
    agency's name replaces the clean report's everywhere (title, contact, 落款): left in, it would be
    another agency's contact (AGENCY-CONTACT)."""
    text = (ROOT / "rules" / "cases" / "clean_2021.md").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    text = text.replace(CLEAN_AGENCY, agency)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Decided(OutputFolder):
    """Four documents audited with reviewer decisions: `dismissed` (柳州市交通运输局: a T4-SUM error,
    dismissed, and a SCRIPT warning), `confirmed` (柳州市教育局: no contact, an error, confirmed),
    `bidi` (an agency name with a right-to-left override, no defect) and `notes` (meeting notes, not
    a report: no agency, no year)."""

    out: Path
    dismissed: str
    confirmed: str
    bidi: str
    notes: str
    findings: list[dict]
    documents: list[dict]
    cells: list[dict]


@pytest.fixture(scope="session")
def decided(tmp_path_factory) -> Decided:
    from audits.audit import Memory, audit_batch
    from audits.rulebook.book import load_rulebook
    from audits.workers import parse_batch

    folder = tmp_path_factory.mktemp("decided")
    a = clean_variant(folder / "in", "a", "柳州市交通运输局", [T4_DEFECT, SCRIPT_DEFECT])
    b = clean_variant(folder / "in", "b", "柳州市教育局", [NO_CONTACT])
    c = clean_variant(folder / "in", "c", BIDI_AGENCY, [])
    d = folder / "in" / "notes.txt"
    d.write_text("会议纪要\n\n今天讨论了办公用品采购事项。\n", encoding="utf-8")
    book = load_rulebook(ROOT / "rules")
    frames, _ = parse_batch([a, b, c, d], ROOT / "rules" / "templates", workers=1)
    # First without decisions, as a reviewer first sees the findings and their fingerprints.
    findings, _, _ = audit_batch(frames, book, folder / "before")
    fp = {(Path(s).name, r): f for s, r, f in findings.select("source", "rule_id", "fingerprint").iter_rows()}
    decisions = {
        fp[("a.txt", "T4-SUM")]: {"fingerprint": fp[("a.txt", "T4-SUM")], "decision": "驳回", "comment": DISMISS_COMMENT, "by": "张三", "at": "2025-02-03T09:15:00+08:00"},
        fp[("b.txt", "CONTACT")]: {"fingerprint": fp[("b.txt", "CONTACT")], "decision": "确认", "comment": "已通知整改", "by": "李四", "at": "2025-02-04T10:00:00+08:00"},
    }
    out = folder / "out"
    audit_batch(frames, book, out, Memory(decisions=decisions))
    return Decided(out, str(a), str(b), str(c), str(d), read_csv(out / "findings.csv"), read_csv(out / "documents.csv"), read_csv(out / "cells.csv"))
