"""Pages whose report is an attachment (issue 9).

The page is a real one (../shared/corpus/016's chrome: site header, 来源/时间 line, 附件下载 block,
footer) with its article emptied to the title and one attachment link. Alone, it is one parse_error
naming the attachment and nothing else; with the attachment saved beside it (a DOCX made from a
seed's content, tables and merged cells included; or that report saved as Word 97, as .doc or .wps),
it is audited as the report: every cell exact, the page's publication date kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audits.workers import parse_batch
from tests.conftest import EXPECTED, LAYOUTS, ROOT, SHARED, need_shared, read_csv
from tests.test_word97 import needs_libreoffice, save_as_word97
from tests.variants import load_seed, report_blocks, title_of, to_docx

SEED = EXPECTED / "seed_002.yaml"
ATTACHMENT = "P020250310388596453912.docx"


def attachment_page(report, attachment: str = ATTACHMENT) -> str:
    """016's page with the article emptied to the report's title and one 附件下载 link."""
    page = (SHARED / "corpus" / "016_pingtan-quanqu_2024.html").read_text(encoding="utf-8")
    page = page.replace("平潭综合实验区2024年度政府信息公开工作年度报告", title_of(report))
    article = re.compile(r'(<div class=TRS_Editor>).*?(</div>\s*</div>\s*</div>\s*<div class="article_attachment")', re.S)
    assert article.search(page)
    page = article.sub(lambda m: m.group(1) + "</div>" + m.group(2)[len("</div>"):], page, count=1)
    link = f'<li><a href="./{attachment}" target="_blank">{title_of(report)}{Path(attachment).suffix}</a></li>'
    assert '<ul id="file_ul_fj">' in page
    return page.replace('<ul id="file_ul_fj">', '<ul id="file_ul_fj">' + link, 1)


@pytest.fixture(scope="module")
def known():
    need_shared()
    return load_seed(SEED)


def _audit(folder: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from audits.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(folder), "--rules", str(ROOT / "rules"), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    return read_csv(out / "documents.csv"), read_csv(out / "findings.csv"), read_csv(out / "cells.csv")


def test_a_page_without_its_attachment_is_one_parse_error_naming_it(tmp_path, known):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "page.html").write_text(attachment_page(known), encoding="utf-8")
    documents, findings, cells = _audit(folder, tmp_path)
    (doc,) = documents
    assert doc["status"] == "failed" and doc["agency"] == known.agency
    assert [(f["rule_id"], f["category"], f["severity"]) for f in findings] == [("PARSE", "parse_error", "error")]
    assert f"{title_of(known)}.docx" in findings[0]["message"] and "未提供附件" in findings[0]["message"]
    assert cells == []


def test_a_page_with_its_attachment_beside_it_is_audited_as_the_report(tmp_path, known):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "page.html").write_text(attachment_page(known), encoding="utf-8")
    (folder / ATTACHMENT).write_bytes(to_docx(report_blocks(known, LAYOUTS[known.template])))
    frames, _ = parse_batch([folder / "page.html"], ROOT / "rules" / "templates", workers=1)
    doc = frames.documents.row(0, named=True)
    assert (doc["source"], doc["attachment"], doc["agency"], doc["report_year"]) == (str(folder / "page.html"), ATTACHMENT, known.agency, known.report_year)
    assert str(doc["published"]) == "2025-03-10", "the page's 时间 line dates the report"
    got = {(c["table"], c["row"], c["col"]): c["value"] for c in frames.cells.iter_rows(named=True)}
    want = {key: (None if v is None else float(v)) for key, v in known.cells.items()}
    assert got == want


@needs_libreoffice
@pytest.mark.parametrize("suffix", [".doc", ".wps"])
def test_a_word97_attachment_beside_the_page_is_read_as_the_report(tmp_path, known, suffix):
    # The same report saved as Word 97 by LibreOffice (a .wps attachment is often such a file).
    folder = tmp_path / "in"
    folder.mkdir()
    docx = tmp_path / "report.docx"
    docx.write_bytes(to_docx(report_blocks(known, LAYOUTS[known.template])))
    (doc_file,) = save_as_word97([docx], tmp_path)
    name = Path(ATTACHMENT).with_suffix(suffix).name
    (folder / name).write_bytes(doc_file.read_bytes())
    (folder / "page.html").write_text(attachment_page(known, name), encoding="utf-8")
    frames, _ = parse_batch([folder / "page.html"], ROOT / "rules" / "templates", workers=1)
    doc = frames.documents.row(0, named=True)
    assert (doc["status"], doc["attachment"], doc["agency"], doc["report_year"]) == ("parsed", name, known.agency, known.report_year)
    assert str(doc["published"]) == "2025-03-10"
    got = {(c["table"], c["row"], c["col"]): c["value"] for c in frames.cells.iter_rows(named=True)}
    assert got == {key: (None if v is None else float(v)) for key, v in known.cells.items()}


def test_the_attachment_beside_the_page_is_not_also_audited_as_a_report_of_its_own(tmp_path, known):
    # The folder holds both files; each is one document, the page's being the attachment's report.
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "page.html").write_text(attachment_page(known), encoding="utf-8")
    (folder / ATTACHMENT).write_bytes(to_docx(report_blocks(known, LAYOUTS[known.template])))
    documents, findings, _ = _audit(folder, tmp_path)
    page = next(d for d in documents if d["source"].endswith("page.html"))
    assert page["status"] in ("parsed", "partial") and page["agency"] == known.agency
    assert not [f for f in findings if f["source"].endswith("page.html") and f["rule_id"] == "PARSE"]


def test_a_job_fetches_the_attachment_of_a_page_it_was_given(tmp_path, known):
    """A manifest names pages; one's attachment is served, the other's is gone (404)."""
    import csv
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from audits.jobs.config import FetchSettings, Settings, load_job
    from audits.jobs.run import run_job

    site = tmp_path / "site"
    (site / "a").mkdir(parents=True)
    (site / "b").mkdir()
    (site / "a" / "page.html").write_text(attachment_page(known), encoding="utf-8")
    (site / "a" / ATTACHMENT).write_bytes(to_docx(report_blocks(known, LAYOUTS[known.template])))
    (site / "b" / "page.html").write_text(attachment_page(known), encoding="utf-8")

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        folder = tmp_path / "job"
        (folder / "jobs").mkdir(parents=True)
        with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["agency", "region", "agency_kind", "report_year", "url"])
            writer.writerow(["", "宁夏", "", "", f"{base}/a/page.html"])
            writer.writerow(["", "宁夏", "", "", f"{base}/b/page.html"])
        (folder / "jobs" / "web.yaml").write_text(
            f"name: web\nsources:\n  manifest: ../manifest.csv\nrules: {ROOT / 'rules'}\nout: ../out\nschedule:\n  cron: {{hour: 6}}\n", encoding="utf-8"
        )
        settings = Settings(state_dir=folder / ".state", jobs_dir=folder / "jobs", fetch=FetchSettings(timeout_seconds=5, retries=0))
        result = run_job(load_job(folder / "jobs" / "web.yaml"), settings, workers=1)
    finally:
        server.shutdown()
    docs = {d["source"]: d for d in read_csv(result.out / "documents.csv")}
    served, gone = docs[f"{base}/a/page.html"], docs[f"{base}/b/page.html"]
    assert served["attachment"] and served["status"] != "failed" and served["agency"] == known.agency
    assert gone["status"] == "failed" and "下载附件失败" in gone["problems"]
    cells = {(c["table"], c["row"], c["col"]): c["value"] for c in read_csv(result.out / "cells.csv") if c["source"] == served["source"]}
    want = {key: ("" if v is None else (str(int(v)) if float(v).is_integer() else str(v))) for key, v in known.cells.items()}
    assert cells == want
