"""The HTML summaries in a real browser: headless Chromium (Debian's) driven by Playwright.

Opens the index and agency pages over file:// as a reviewer would: no console or page errors (a CSP
violation is one), findings visible, sorting and filtering work, hostile report text never runs,
no horizontal overflow at phone width, and an agency page prints to PDF. Screenshots go to
test-artifacts/ (git-ignored). Skipped, with the reason, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from pathlib import Path

import pdfplumber
import pytest

from tests.conftest import ROOT, SCRIPT, SHARED
from tests.test_render import expected_verdict

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (pip install -e '.[test]')")
    try:
        manager = sync_api.sync_playwright().start()
    except Exception as exc:  # noqa: BLE001 - any failure to start the driver is a reason to skip
        pytest.skip(f"playwright could not start: {exc}")
    try:
        chromium = manager.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
    except Exception as exc:  # noqa: BLE001
        manager.stop()
        pytest.skip(f"playwright could not launch {CHROMIUM}: {str(exc).splitlines()[0]}")
    yield chromium
    chromium.close()
    manager.stop()


@pytest.fixture(scope="module")
def batch(audited):
    """Every real report and the hostile report, audited together (tests/conftest.py)."""
    return audited


class Watched:
    """A page that records console errors, page errors and dialogs (each dialog is dismissed)."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, path: Path):
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")
        return self.page


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    w = Watched(context)
    yield w
    context.close()


def _agency(batch, source: str) -> Path:
    return batch.out / batch.doc(source)["html"]


def _column(page, label: str) -> int:
    headers = [h.strip() for h in page.locator("#reports thead th").all_inner_texts()]
    return headers.index(label)


def _visible_rows(page) -> list[list[str]]:
    rows = page.locator("#reports tbody tr")
    return [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count()) if rows.nth(i).is_visible()]


def test_agency_page_shows_its_findings(watched, batch):
    source = str(next((SHARED / "seeds").glob("004_*")))
    page = watched.open(_agency(batch, source))
    findings = [f for f in batch.findings if f["source"] == source]
    headings = page.locator("div.finding h3")
    assert headings.count() == len(findings) > 0
    for i in range(headings.count()):
        assert headings.nth(i).is_visible()
    assert page.locator("td.hit").first.is_visible()
    assert page.locator("blockquote mark", has_text="本年度发生因信息公开审查不严而泄漏国家秘密的事件").is_visible()
    # the lists of passed, not applicable and undetermined checks start collapsed
    assert page.locator("details li").count() > 0
    assert not any(page.locator("details li").nth(i).is_visible() for i in range(page.locator("details li").count()))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "agency.png"), full_page=True)
    assert watched.errors == [] and watched.dialogs == []


def test_index_sorts_by_error_count(watched, batch):
    page = watched.open(batch.out / "index.html")
    col = _column(page, "错误")
    before = _visible_rows(page)
    assert len(before) == len(batch.documents)
    header = page.locator("#reports thead th").nth(col)
    header.click()
    ascending = _visible_rows(page)
    assert [int(r[col]) for r in ascending] == sorted(int(r[col]) for r in before)
    header.click()
    descending = _visible_rows(page)
    assert [int(r[col]) for r in descending] == sorted((int(r[col]) for r in before), reverse=True)
    assert sorted(map(tuple, descending)) == sorted(map(tuple, before))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "index.png"), full_page=True)
    assert watched.errors == [] and watched.dialogs == []


def test_index_filters(watched, batch):
    page = watched.open(batch.out / "index.html")
    agency = "柳州市科学技术局"
    page.fill("#q", agency)
    rows = _visible_rows(page)
    assert rows and all(agency in r[0] for r in rows)
    assert len(rows) == sum(agency in d["agency"] for d in batch.documents)
    page.fill("#q", "")
    assert len(_visible_rows(page)) == len(batch.documents)

    severities = defaultdict(list)
    for f in batch.findings:
        severities[f["source"]].append(f["severity"])
    verdicts = Counter(expected_verdict(d, severities[d["source"]]) for d in batch.documents)
    page.select_option("#f-verdict", "需整改")
    rows = _visible_rows(page)
    col = _column(page, "结论")
    assert len(rows) == verdicts["需整改"] > 0
    assert all(r[col] == "需整改" for r in rows)
    page.select_option("#f-verdict", "")

    page.fill("#f-year", "2023")
    rows = _visible_rows(page)
    assert len(rows) == sum(d["report_year"] == "2023" for d in batch.documents) > 0
    page.fill("#f-year", "")

    page.select_option("#f-category", "table_identity")
    rows = _visible_rows(page)
    with_identity = {f["source"] for f in batch.findings if f["category"] == "table_identity" and f["severity"] != "info"}
    assert len(rows) == len(with_identity) > 0
    page.select_option("#f-category", "")

    page.select_option("#f-rule", "SPAM")
    rows = _visible_rows(page)
    col = _column(page, "问题规则")
    assert rows and all("SPAM" in r[col].split() for r in rows)
    assert any("004_" in f["source"] for f in batch.findings if f["rule_id"] == "SPAM")
    assert watched.errors == [] and watched.dialogs == []


def test_hostile_report_does_not_run(watched, batch):
    for path in (_agency(batch, batch.hostile), batch.out / "index.html"):
        page = watched.open(path)
        page.wait_for_timeout(300)  # give any injected handler the chance to fire
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img").count() == 0
        assert page.evaluate("document.querySelectorAll('script').length") == (1 if path.name == "index.html" else 0)
        assert page.locator("a[href^='javascript']").count() == 0
        assert SCRIPT in page.locator("body").inner_text()  # shown to the reviewer, as text
    assert watched.dialogs == []
    assert watched.errors == []


_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth, bad = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('.scroll')) continue;  // tables scroll inside their own box
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1) bad.push(`${el.tagName}.${el.className} right=${Math.round(box.right)}`);
  }
  return {width, scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth, bad: bad.slice(0, 10)};
}"""


def test_phone_width_has_no_horizontal_overflow(browser, batch):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        ARTIFACTS.mkdir(exist_ok=True)
        sources = [str(SHARED / "corpus" / "hongze_2023.pdf"), str(next((SHARED / "seeds").glob("004_*")))]
        for name, path in [("index", batch.out / "index.html")] + [(f"agency-{i}", _agency(batch, s)) for i, s in enumerate(sources)]:
            page.goto(path.resolve().as_uri())
            result = page.evaluate(_OVERFLOW)
            assert result["scroll"] <= result["width"] and result["body"] <= result["width"], (name, result)
            assert result["bad"] == [], (name, result)
            if name in ("index", "agency-0"):
                page.screenshot(path=str(ARTIFACTS / f"{name.split('-')[0]}-phone.png"), full_page=True)
    finally:
        context.close()


def test_agency_page_prints(watched, batch):
    source = str(SHARED / "corpus" / "hongze_2023.pdf")
    page = watched.open(_agency(batch, source))
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('.agency-page')).breakAfter") == "page"
    pdf = page.pdf(format="A4", print_background=False)
    assert pdf.startswith(b"%PDF")
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        assert len(doc.pages) >= 1
        printed = "".join(p.extract_text() or "" for p in doc.pages)
    assert "T4-SUM" in printed
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "agency.pdf").write_bytes(pdf)
    assert watched.errors == []
