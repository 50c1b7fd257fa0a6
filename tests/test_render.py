"""The HTML summaries of the real batch, read back with lxml: every finding with its evidence.

The shared audit (tests/conftest.py: every real report and a hostile one, run once per session);
each row of findings.csv must be on the agency page documents.csv names for its source, with its
rule title, message and evidence, and the evidence drawn in context (the table re-drawn with the
involved cells marked, the sentence quoted with its line, the section outline), and each report's
other rules listed as passed, not applicable or undetermined. Then the properties every page has:
CSP, lang, nothing fetched from the network, no script but our own, hostile report text inert.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter, defaultdict
from pathlib import Path

import lxml.html
import pytest
from markupsafe import escape

from audits.rulebook.book import load_rulebook
from audits.vocabulary import CATEGORIES, SEVERITIES
from tests.conftest import A_LINK, IMG, JS_LINK, PAYLOADS, PWNED, ROOT, SCRIPT, SHARED, Audited

BOOK = load_rulebook(ROOT / "rules")


def parse_page(path: Path) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(path.read_text(encoding="utf-8"))


def page_of(batch: Audited, source: str) -> lxml.html.HtmlElement:
    return parse_page(batch.out / batch.doc(source)["html"])


def seed(prefix: str) -> str:
    return str(next((SHARED / "seeds").glob(f"{prefix}_*")))


def report_section(page, source: str):
    """The <section class="report"> whose source link names `source`."""
    href = Path(source).resolve().as_uri()
    found = page.xpath('//section[contains(@class, "report")][.//a[@href=$href]]', href=href)
    assert len(found) == 1, f"{source}: {len(found)} report sections"
    return found[0]


def text(el) -> str:
    return el.text_content()


def expected_verdict(doc: dict, severities: list[str]) -> str:
    if doc["template"] == "pre2019":
        return "旧格式"
    tables = [t for t in (doc.get("tables_found") or "").split(",") if t]
    if doc["status"] == "failed" or (doc["status"] == "partial" and len(tables) < 3):
        return "无法判断"
    if "error" in severities:
        return "需整改"
    if "warning" in severities:
        return "待核实"
    return "合格"


@pytest.fixture(scope="module")
def batch(audited) -> Audited:
    return audited


# --- every finding, with its evidence, on its agency's page -------------------------------------


def test_every_document_has_a_page(batch):
    assert batch.documents and batch.findings
    for doc in batch.documents:
        assert doc["html"], doc["source"]
        assert (batch.out / doc["html"]).is_file()
        page = page_of(batch, doc["source"])
        # the page of an agency identity is titled with the fullest name its reports print
        assert doc["agency"] in text(page.xpath("//h1")[0])
        report_section(page, doc["source"])


def test_every_finding_is_on_its_agency_page(batch):
    by_source = defaultdict(list)
    for f in batch.findings:
        by_source[f["source"]].append(f)
    for source, findings in by_source.items():
        section = report_section(page_of(batch, source), source)
        divs = section.xpath('.//div[contains(@class, "finding")]')
        assert len(divs) == len(findings), source
        unmatched = list(divs)
        for f in findings:
            title = BOOK.by_id(f["rule_id"]).title
            hit = next(
                (
                    d for d in unmatched
                    if d.get("data-rule") == f["rule_id"]
                    and title in text(d.xpath(".//h3")[0])
                    and f["message"] in text(d.xpath("./p/strong")[0])
                    and f["evidence"] in text(d.xpath('./p[@class="evidence"]')[0])
                ),
                None,
            )
            assert hit is not None, f"{source}: no finding like {f['rule_id']} {f['message']!r}"
            unmatched.remove(hit)
            h3 = text(hit.xpath(".//h3")[0])
            assert SEVERITIES[f["severity"]] in h3 and f["rule_id"] in h3
            rule = BOOK.by_id(f["rule_id"])
            why = text(hit.xpath('./p[@class="why"]')[0])
            assert rule.explanation in why and rule.basis in why


def test_table_finding_redraws_the_table_with_the_cells_marked(batch):
    source = str(SHARED / "corpus" / "hongze_2023.pdf")
    findings = [f for f in batch.findings if f["source"] == source and f["rule_id"] == "T4-SUM"]
    assert findings, "T4-SUM on hongze_2023"
    printed = {f"{c['table']}.{c['row']}.{c['col']}": c["value"] for c in batch.cells if c["source"] == source}
    section = report_section(page_of(batch, source), source)
    for f in findings:
        div = next(d for d in section.xpath('.//div[@data-rule="T4-SUM"]') if f["message"] in text(d))
        keys = set(f["cells"].split(";"))
        hits = {td.get("data-key"): text(td) for td in div.xpath('.//table//td[contains(concat(" ", @class, " "), " hit ")]')}
        assert set(hits) == keys
        for key, shown in hits.items():
            assert shown == printed[key], key
        # the arithmetic is written out beside the table
        assert re.search(r"\d+( \+ \d+)+ ≠ \d+", text(div.xpath('./p[@class="evidence"]')[0]))
        assert div.xpath(".//table/caption")[0].text_content().startswith("四、政府信息公开行政复议、行政诉讼情况")
    # pinned by reading the report: 行政复议 10 + 1 + 0 + 0 printed with a total of 0
    review = next(d for d in section.xpath('.//div[@data-rule="T4-SUM"]') if "review_litigation.review.total" in d.xpath(".//td[contains(@class, 'hit')]/@data-key"))
    cells = {td.get("data-key"): (td.get("class").split(), text(td)) for td in review.xpath(".//td[@data-key]")}
    assert cells["review_litigation.review.maintain"] == (["hit"], "10")
    assert cells["review_litigation.review.correct"] == (["hit"], "1")
    assert cells["review_litigation.review.total"] == (["hit"], "0")
    assert "hit" not in cells["review_litigation.lit_direct.total"][0]
    assert "10 + 1 + 0 + 0 ≠ 0" in text(review)


def test_text_finding_quotes_the_sentence_with_its_line(batch):
    source = seed("004")
    (f,) = [f for f in batch.findings if f["source"] == source and f["rule_id"] == "NEGATION-LOST"]
    div = report_section(page_of(batch, source), source).xpath('.//div[@data-rule="NEGATION-LOST"]')[0]
    quote = div.xpath("./blockquote")[0]
    # pinned by reading the report: line 25 ends with the sentence, printed in traditional characters
    assert f["line"] == "25"
    assert text(quote).startswith("第 25 行：")
    assert text(quote.xpath("./mark")[0]) == "本年度发生因信息公开审查不严而泄漏国家秘密的事件。"
    assert "第25行：“本年度发生因信息公开审查不严而泄漏国家秘密的事件。”" in text(div)


def test_quoted_lines_carry_their_line_numbers(batch):
    for f in batch.findings:
        if not f["line"]:
            continue
        div_texts = [text(d) for d in report_section(page_of(batch, f["source"]), f["source"]).xpath(f'.//div[@data-rule="{f["rule_id"]}"]')]
        assert any(f"第 {f['line']} 行：" in t for t in div_texts), (f["source"], f["rule_id"])


def test_structure_finding_lists_the_outline(batch):
    source = seed("000")
    div = report_section(page_of(batch, source), source).xpath('.//div[@data-rule="SEC-NUMBERING"]')[0]
    items = [text(li) for li in div.xpath("./ol/li")]
    # pinned by reading the report: 四 is printed as "1." and the later parts shifted by one
    assert [i.split(" ")[0] for i in items] == ["一", "二", "三", "1", "四", "五"]
    assert items[3] == "1 政府信息公开行政复议、行政诉讼情况（第 529 行）"
    assert items[0] == "一 总体情况（第 7 行）"


def test_verdicts_follow_the_findings(batch):
    index = parse_page(batch.out / "index.html")
    severities = defaultdict(list)
    for f in batch.findings:
        severities[f["source"]].append(f["severity"])
    for doc in batch.documents:
        want = expected_verdict(doc, severities[doc["source"]])
        section = report_section(page_of(batch, doc["source"]), doc["source"])
        assert text(section.xpath('./h2/span[contains(@class, "badge")]')[0]) == want, doc["source"]
        row = index.xpath('//table[@id="reports"]/tbody/tr[td/a[@href = $href]]', href=f"{doc['html']}#{section.get('id')}")
        assert len(row) == 1 and row[0].get("data-verdict") == want
        counts = Counter(severities[doc["source"]])
        assert [text(td) for td in row[0].xpath("./td")[4:7]] == [str(counts[s]) for s in ("error", "warning", "info")]
    verdict = {d["source"]: text(report_section(page_of(batch, d["source"]), d["source"]).xpath("./h2/span")[0]) for d in batch.documents}
    assert verdict[seed("002")] in {"待核实", "合格"}
    assert verdict[seed("003")] == "需整改"  # read: published 2021-02-10, after the 2021-01-31 deadline


def _listed(section, summary: str) -> dict[str, str]:
    """The rules listed under the <details> whose summary starts with `summary`: id → its line."""
    found = [d for d in section.xpath("./details") if text(d.xpath("./summary")[0]).startswith(summary)]
    assert len(found) <= 1
    return {text(li).split(" ")[0]: text(li) for li in found[0].xpath(".//li")} if found else {}


def test_every_rule_is_failed_passed_not_applicable_or_undetermined_on_each_report(batch):
    for doc in batch.documents:
        section = report_section(page_of(batch, doc["source"]), doc["source"])
        failed = {f["rule_id"] for f in batch.findings if f["source"] == doc["source"]}
        passed = _listed(section, "已通过的检查")
        not_applicable = _listed(section, "不适用的检查")
        undetermined = _listed(section, "无法判断的检查")
        groups = [failed, set(passed), set(not_applicable), set(undetermined)]
        assert sum(len(g) for g in groups) == len(BOOK.rules), doc["source"]
        assert set().union(*groups) == {r.id for r in BOOK.rules}, doc["source"]
        for details in section.xpath("./details"):
            assert details.get("open") is None  # collapsed


def test_rules_that_could_not_be_judged_say_why(batch):
    # seed 003 is a 2020 report (2019 template), alone in the batch for its agency, with no
    # publication-date problem: read from the report and the rule files.
    section = report_section(page_of(batch, seed("003")), seed("003"))
    not_applicable = _listed(section, "不适用的检查")
    undetermined = _listed(section, "无法判断的检查")
    assert "本规则只适用于2021 年度起的报告" in not_applicable["TPL-MIXED"]
    assert "本规则只适用于2021 年版、新旧混用格式的报告" in not_applicable["X-VALID"]
    assert "没有同一机关上一年度报告的表三" in undetermined["X-CARRY"]
    assert "正文没有此类表述" in not_applicable["CLAIM-DENIED"]
    # 001 prints no publication date: the deadline cannot be judged, and is not shown as passed
    section = report_section(page_of(batch, seed("001")), seed("001"))
    assert "页面未标注发布日期" in _listed(section, "无法判断的检查")["TIME-DEADLINE"]
    assert "TIME-DEADLINE" not in _listed(section, "已通过的检查")


def test_hongze_years_share_one_agency_page_side_by_side(batch):
    # the titles name the agency differently (with and without 淮安市); its identity is one
    a = batch.doc(str(SHARED / "corpus" / "hongze_2023.pdf"))
    b = batch.doc(str(SHARED / "corpus" / "hongze_2024.pdf"))
    assert (a["agency"], b["agency"]) == ("洪泽区人民政府", "淮安市洪泽区人民政府")
    assert a["html"] == b["html"]
    page = page_of(batch, a["source"])
    assert page.xpath("//h1")[0].text_content().strip() == "淮安市洪泽区人民政府"
    assert len(page.xpath('//section[contains(@class, "report")]')) == 2
    figures = page.xpath('//h2[starts-with(normalize-space(.), "历年主要数据")]/following::table[1]')[0]
    assert [th.text_content().strip() for th in figures.xpath(".//tr[1]/th")] == ["项目", "2023 年度", "2024 年度"]
    row = figures.xpath('.//tr[td[1][normalize-space(.) = "本年新收申请"]]/td')
    assert [td.text_content().strip() for td in row] == ["本年新收申请", "21", "95"]


def test_index_totals_per_rule_and_category(batch):
    index = parse_page(batch.out / "index.html")
    assert len(index.xpath('//table[@id="reports"]/tbody/tr')) == len(batch.documents)
    per_rule = Counter(f["rule_id"] for f in batch.findings)
    rows = index.xpath('//h2[. = "按规则统计"]/following::table[1]//tr[td]')
    assert {text(r[0]): int(text(r[3])) for r in rows} == dict(per_rule)
    for r in rows:
        assert text(r[1]) == BOOK.by_id(text(r[0])).title
    per_category = Counter(f["category"] for f in batch.findings if f["severity"] != "info")
    bars = index.xpath('//div[@class="chart"]/div[@class="bar"]')
    assert {text(b.xpath('./span[@class="bar-label"]')[0]): int(text(b[-1])) for b in bars} == {CATEGORIES[c]: n for c, n in per_category.items()}
    assert index.xpath('//input[@id="q"]') and index.xpath('//select[@id="f-verdict"]')


# --- properties of every page ------------------------------------------------------------------


def _check_page(path: Path, sources: set[str]) -> None:
    html = path.read_text(encoding="utf-8")
    page = lxml.html.fromstring(html)
    assert page.get("lang") == "zh-CN", path.name
    csp = page.xpath('//meta[@http-equiv="Content-Security-Policy"]/@content')
    assert len(csp) == 1, path.name
    policy = dict(part.strip().split(" ", 1) for part in csp[0].split(";") if part.strip())
    assert policy["default-src"] == "'none'"
    assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in policy["script-src"]
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'none'"
    scripts = page.xpath("//script")
    if path.name == "index.html":
        assert len(scripts) == 1 and html.count("<script") == 1
        body = scripts[0].text
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        assert policy["script-src"] == f"'sha256-{digest}'"
    else:
        assert not scripts and "<script" not in html, path.name
    assert len(page.xpath("//h1")) == 1
    for el in page.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            assert not name.startswith("on"), (path.name, name)
            assert "javascript:" not in value.lower(), (path.name, name, value)
            if name in ("src", "href", "action", "srcset", "poster", "data"):
                if value.startswith("file://"):
                    assert name == "href" and value in sources, (path.name, value)
                else:
                    assert "//" not in value and ":" not in value.split("#")[0], (path.name, value)
        assert "url(" not in (el.get("style") or "")
    assert not page.xpath("//link|//img|//iframe|//object|//embed|//base|//form")


def test_every_page_is_self_contained_and_safe(batch):
    sources = {Path(d["source"]).resolve().as_uri() for d in batch.documents}
    pages = batch.pages()
    assert len(pages) == len({d["html"] for d in batch.documents}) + 2  # the index and the rule catalogue
    for path in pages:
        _check_page(path, sources)


def test_hostile_text_is_shown_escaped(batch):
    hostile = batch
    doc = batch.doc(batch.hostile)
    assert SCRIPT in doc["agency"], "the title's script lands in the agency name"
    rules = {f["rule_id"] for f in hostile.findings if f["source"] == batch.hostile}
    assert {"NEGATION-LOST", "SPAM", "SCRIPT"} <= rules
    for path in hostile.pages():
        html = path.read_text(encoding="utf-8")
        for payload in PAYLOADS:
            if payload != JS_LINK:
                assert payload not in html, (path.name, payload)
        assert "<img" not in html and "<a href=\"javascript" not in html
    agency = hostile.out / doc["html"]
    html = agency.read_text(encoding="utf-8")
    page = lxml.html.fromstring(html)
    assert str(escape(SCRIPT)) in html
    assert text(page.xpath("//h1")[0]) == doc["agency"]
    assert SCRIPT in page.findtext(".//title")
    # the narrative sentence is quoted as text, payloads and all
    negation = page.xpath('//div[@data-rule="NEGATION-LOST"]')[0]
    marked = text(negation.xpath("./blockquote/mark")[0])
    for payload in (SCRIPT, IMG, JS_LINK, A_LINK):
        assert payload in marked
    spam = page.xpath('//div[@data-rule="SPAM"]')[0]
    assert PWNED in text(spam.xpath("./blockquote")[0])
    index = parse_page(hostile.out / "index.html")
    assert any(SCRIPT in text(a) for a in index.xpath('//table[@id="reports"]//a'))


def test_redrawn_table_escapes_printed_cell_text():
    import polars as pl

    from audits.render import _DrawnTables

    cells = pl.DataFrame(
        {"table": ["active"], "row": ["punishment"], "col": ["decisions"], "value": [None], "raw": ["<img src=x onerror=alert(1)>"], "flag": ["unreadable"]},
        schema={"table": pl.Utf8, "row": pl.Utf8, "col": pl.Utf8, "value": pl.Float64, "raw": pl.Utf8, "flag": pl.Utf8},
    )
    view = _DrawnTables("2021", cells, BOOK).view("active", {"active.punishment.decisions"})
    html = str(dict(view.rows)["行政处罚"])
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'class="hit unreadable" data-key="active.punishment.decisions"' in html


def test_pages_written_by_worker_processes_are_the_pages_of_one_process(tmp_path):
    """From PARALLEL_FROM reports on, the agencies' pages are shared out among processes: the same
    pages, index and page rows as when one process writes them all (here forced for a few reports)."""
    from audits.engines.run import run_rules
    from audits.findings import findings_frame, fingerprints
    from audits.render import render_all, run_info
    from audits.settle import settle_batch
    from audits.workers import parse_batch

    files = sorted((SHARED / "seeds").iterdir()) + sorted((SHARED / "corpus").glob("01[2-7]_pingtan-quanqu_*.txt"))
    book = load_rulebook(ROOT / "rules")
    frames, _ = parse_batch(files, ROOT / "rules" / "templates", workers=1)
    settled = settle_batch(frames, book.layouts, None)
    frames.cells, frames.notes = settled.cells, settled.notes
    judgement = run_rules(book, frames)
    findings = findings_frame(judgement.findings)
    findings = findings.with_columns(fingerprints(findings, frames.documents))
    run = run_info(book, frames.documents.height)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    alone = render_all(frames, findings, judgement.statuses, book, one, run=run, processes=1)
    shared = render_all(frames, findings, judgement.statuses, book, two, run=run, processes=2, parallel_from=1)
    assert alone.equals(shared)
    written = sorted(p.name for p in one.iterdir())
    assert len(written) >= 6 and sorted(p.name for p in two.iterdir()) == written  # pingtan's years share a page
    for name in written:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
