"""Everything a reviewer reads is Chinese and printed as the report prints it.

Over the shared audit of every real report (tests/conftest.py): the pages' visible text, the
message and evidence of findings.csv and what `audits run` printed hold no internal key (a table,
row, column, section or agency-kind key of ours), no count written as a float (`0.0`), no
unfilled `{placeholder}` and no file of ours. Report text quoted as evidence is the report's own
and is left out of the check.
"""

from __future__ import annotations

import re

import lxml.html
import pytest

from audits.layouts import load_layouts
from audits.vocabulary import AGENCY_KINDS
from tests.conftest import ROOT

LAYOUTS = load_layouts(ROOT / "rules" / "templates")
KEYS = sorted(
    {t for layout in LAYOUTS.values() for t in layout.tables}
    | {r.key for layout in LAYOUTS.values() for spec in layout.tables.values() for r in spec.rows}
    | {c for layout in LAYOUTS.values() for spec in layout.tables.values() for c in spec.col_labels}
    | {s.key for layout in LAYOUTS.values() for s in layout.sections}
    | set(AGENCY_KINDS),
    key=len,
    reverse=True,
)
INTERNAL_KEY = re.compile(r"(?<![A-Za-z_\-])(" + "|".join(map(re.escape, KEYS)) + r")(?![A-Za-z_\-])")
FLOAT_COUNT = re.compile(r"(?<![\d.])\d+\.0(?![\d])")
PLACEHOLDER = re.compile(r"\{\w*\}")
OUR_FILES = re.compile(r"domain\.md|§|\.ya?ml\b|\.py\b|keys\.md|outputs\.md")


def _problems(text: str) -> list[str]:
    return [f"{name}: {m.group(0)!r} in …{text[max(m.start() - 30, 0):m.end() + 30]}…" for name, pattern in (
        ("internal key", INTERNAL_KEY), ("float count", FLOAT_COUNT), ("placeholder", PLACEHOLDER), ("file of ours", OUR_FILES),
    ) for m in pattern.finditer(text)]


def _without_report_text(text: str, audited) -> str:
    """`text` with the report's own words taken out: quoted sentences, names, file paths, cells."""
    pieces = {f["quote"] for f in audited.findings} | {d["agency"] for d in audited.documents} | {d["source"] for d in audited.documents}
    pieces |= {c["raw"] for c in audited.cells if c["flag"] == "unreadable"}
    for piece in sorted((p for p in pieces if p), key=len, reverse=True):
        text = text.replace(piece, " ")
    return text


def test_findings_csv_message_and_evidence(audited):
    bad = []
    for f in audited.findings:
        for field in ("message", "evidence"):
            bad += [f"{f['rule_id']} {field}: {p}" for p in _problems(_without_report_text(f[field], audited))]
    assert not bad, "\n".join(bad[:20])


@pytest.mark.parametrize("kind", ["index", "agency"])
@pytest.mark.parametrize("batch", ["audited", "decided"])
def test_pages_visible_text(request, batch, kind):
    audited = request.getfixturevalue(batch)  # every real report; or the batch with reviewer decisions
    pages = [p for p in audited.pages() if (p.name == "index.html") == (kind == "index") and p.name != "rules.html"]
    assert pages
    bad = []
    for path in pages:
        page = lxml.html.fromstring(path.read_text(encoding="utf-8"))
        for el in page.xpath("//script|//style|//blockquote|//title|//code"):
            el.drop_tree()  # code, commands to copy, and the report's own line quoted in full
        bad += [f"{path.name}: {p}" for p in _problems(_without_report_text(page.text_content(), audited))]
    assert not bad, "\n".join(bad[:20])


def test_command_line_output(audited):
    assert "审核了" in audited.output
    assert not _problems(_without_report_text(audited.output, audited)), audited.output
