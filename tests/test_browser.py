"""The HTML summaries in a real browser: headless Chromium (Debian's) driven by Playwright.

Opens the index and agency pages over file:// as a reviewer would: no console or page errors (a CSP
violation is one), findings visible, sorting and filtering work, hostile report text never runs,
no horizontal overflow at phone width, and an agency page prints to PDF. Screenshots go to
test-artifacts/ (git-ignored). Skipped, with the reason, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import io
import unicodedata
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


# --- the reviewer's day: decisions, the index's filters, phone widths, hostile names --------------


@pytest.fixture(scope="module")
def decisions(decided):
    """Four documents with a dismissed and a confirmed finding (tests/conftest.py `decided`)."""
    return decided


def test_dismissed_finding_on_screen_and_printed(watched, decisions):
    from tests.conftest import DISMISS_COMMENT

    page = watched.open(decisions.out / decisions.doc(decisions.dismissed)["html"])
    report = page.locator("section.report").first
    assert report.locator("h2 .badge").inner_text() == "待核实"
    dismissed = page.locator("div.finding.dismissed")
    assert dismissed.count() == 1 and dismissed.is_visible()
    assert dismissed.locator("p.decision").is_visible()
    assert DISMISS_COMMENT in dismissed.locator("p.decision").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "agency-dismissed.png"), full_page=True)
    page.emulate_media(media="print")
    assert dismissed.locator("p.decision").is_visible()
    assert not page.locator("p.fp").first.is_visible()  # the fingerprint and command are not printed
    pdf = page.pdf(format="A4", print_background=False)
    with pdfplumber.open(io.BytesIO(pdf)) as doc:
        # NFKC: the PDF's text maps some glyphs to Kangxi radicals (⼯ for 工)
        printed = unicodedata.normalize("NFKC", "".join(p.extract_text() or "" for p in doc.pages).replace("\n", ""))
    (ARTIFACTS / "agency-dismissed.pdf").write_bytes(pdf)
    for words in ("待核实", "错误 0", "已驳回", "张三", "2025-02-03 09:15", DISMISS_COMMENT, "不计入错误、警告数和结论", "T4-SUM"):
        assert words in printed, words
    assert "audits review" not in printed
    assert watched.errors == [] and watched.dialogs == []


def test_index_filters_by_decision(watched, decisions):
    page = watched.open(decisions.out / "index.html")
    names = {"dismissed": ["柳州市交通运输局"], "confirmed": ["柳州市教育局"], "pending": ["柳州市交通运输局", "未识别机关（notes.txt）"]}
    for state, agencies in names.items():
        page.select_option("#f-decision", state)
        assert sorted(r[0] for r in _visible_rows(page)) == sorted(agencies), state
    page.select_option("#f-decision", "")
    assert len(_visible_rows(page)) == 4
    assert watched.errors == []


def test_index_search_matches_rule_titles(watched, batch):
    from audits.rulebook.book import load_rulebook

    title = load_rulebook(ROOT / "rules").by_id("CELL-BLANK").title
    page = watched.open(batch.out / "index.html")
    page.fill("#q", title)
    rows = _visible_rows(page)
    with_rule = {f["source"] for f in batch.findings if f["rule_id"] == "CELL-BLANK"}
    assert len(rows) == len(with_rule) > 0
    col = _column(page, "问题规则")
    assert all(f"{title} CELL-BLANK" in r[col] for r in rows)
    options = page.locator("#f-rule option").all_inner_texts()
    assert f"{title}（CELL-BLANK）" in options
    assert watched.errors == []


def test_index_filters_survive_a_reload(watched, batch):
    page = watched.open(batch.out / "index.html")
    page.select_option("#f-verdict", "需整改")
    page.fill("#f-year", "2024")
    page.fill("#f-region", "福建省")
    before = _visible_rows(page)
    assert 0 < len(before) < len(batch.documents)
    assert all(r[_column(page, "结论")] == "需整改" and r[_column(page, "年度")] == "2024" for r in before)
    address = page.url
    assert "#" in address
    page.reload()
    page.wait_for_load_state("load")
    assert page.input_value("#f-verdict") == "需整改" and page.input_value("#f-year") == "2024" and page.input_value("#f-region") == "福建省"
    assert _visible_rows(page) == before
    # the address alone, opened afresh, gives the same view
    fresh = watched.page.context.new_page()
    fresh.goto(address)
    fresh.wait_for_load_state("load")
    assert _visible_rows(fresh) == before
    # clearing the filters clears the address
    for sel in ("#f-year", "#f-region"):
        page.fill(sel, "")
    page.select_option("#f-verdict", "")
    assert "#" not in page.url and len(_visible_rows(page)) == len(batch.documents)
    assert watched.errors == []


def test_hostile_bidi_name_keeps_the_row_in_order(watched, decisions):
    from tests.conftest import RLO

    page = watched.open(decisions.out / "index.html")
    assert RLO not in page.locator("body").inner_text()
    row = page.locator("#reports tbody tr", has_text="平潭综合实验区")
    lefts = [box["x"] for box in (row.locator("td").nth(i).bounding_box() for i in range(row.locator("td").count()))]
    assert lefts == sorted(lefts)  # the cells still read left to right
    assert row.locator("td").nth(0).inner_text() == "平潭综合实验区〔U+202E〕局育教"
    agency = watched.open(decisions.out / decisions.doc(decisions.bidi)["html"])
    assert agency.locator("h1").inner_text() == "平潭综合实验区〔U+202E〕局育教"
    assert agency.evaluate("getComputedStyle(document.querySelector('h1 bdi')).unicodeBidi") == "isolate"
    assert watched.errors == []


def _phone(browser):
    return browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


def test_phone_width_decided_pages(browser, decisions):
    context = _phone(browser)
    try:
        page = context.new_page()
        for name, path in [("index-decided", decisions.out / "index.html"), ("agency-dismissed", decisions.out / decisions.doc(decisions.dismissed)["html"])]:
            page.goto(path.resolve().as_uri())
            result = page.evaluate(_OVERFLOW)
            assert result["scroll"] <= result["width"] and result["bad"] == [], (name, result)
            page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
            if name == "index-decided":
                # a region such as 广西壮族自治区 柳州市 keeps several characters a line
                narrowest = page.evaluate("""() => Math.min(...[...document.querySelectorAll('#reports tbody td:nth-child(2)')]
                  .filter(td => td.textContent.trim()).map(td => td.clientWidth / parseFloat(getComputedStyle(td).fontSize)))""")
                assert narrowest >= 5, narrowest
        assert page.locator("p.decision").is_visible()
    finally:
        context.close()


def test_phone_width_table_three_labels_stay_readable(browser, batch):
    # a finding on 表三 draws the table; at phone width its row labels must not squeeze to a
    # couple of characters a line (the table scrolls sideways instead)
    source = next(f["source"] for f in batch.findings if f["cells"].startswith("applications."))
    context = _phone(browser)
    try:
        page = context.new_page()
        page.goto(_agency(batch, source).resolve().as_uri())
        widths = page.evaluate("""() => {
          const out = [];
          for (const table of document.querySelectorAll('table')) {
            const caption = table.querySelector('caption');
            if (!caption || !caption.textContent.startsWith('三、')) continue;
            for (const td of table.querySelectorAll('td.label')) {
              const size = parseFloat(getComputedStyle(td).fontSize);
              out.push((td.getBoundingClientRect().width - 2 * 0.4 * size) / size);
            }
          }
          return out;
        }""")
        assert widths, source
        assert min(widths) >= 8, f"表三 labels {min(widths):.1f} characters wide"
        page.screenshot(path=str(ARTIFACTS / "agency-table3-phone.png"), full_page=True)
    finally:
        context.close()


def test_every_page_says_which_run_wrote_it(watched, batch):
    import re

    for path in [batch.out / "index.html", batch.out / "rules.html", _agency(batch, batch.hostile)]:
        page = watched.open(path)
        run = page.locator("header .run").inner_text()
        assert re.fullmatch(rf"审核时间：\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}} · 规则版本：[0-9a-f]{{12}}（\d+ 条规则） · 本次审核 {len(batch.documents)} 份报告", run), run
    legend = watched.open(batch.out / "index.html").locator("dl.legend dt").all_inner_texts()
    assert [t.strip() for t in legend] == ["需整改", "待核实", "合格", "无法判断", "旧格式"]
    assert watched.errors == []
