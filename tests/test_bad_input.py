"""Bad input never takes a run down.

One folder holds every kind of bad file next to one good report; the command line audits it.
The run must exit 0, list every document (and only documents) in documents.csv with the status its
content deserves, explain each unreadable one in a `parse_error` finding, and still audit the good
report. `read_bytes` is tested on the same inputs directly.

Two of the "bad" pages are bad only in their encoding (a GBK page that declares UTF-8, a GBK page that
declares nothing): their content is a whole report, so they must be read and parsed, not failed; the
wrong declaration is a warning.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl
import pytest

from typer.testing import CliRunner

from audits.cli import app
from audits.ingest import Limits, read_bytes
from tests.conftest import EXPECTED, LAYOUTS, SHARED, need_shared
from tests.variants import SECTION_SENTENCES, load_seed, report_blocks, to_html

GOOD_SEED = "000_6138bd5dad981167.txt"
TWENTY_MB = 20_000_000


# The bad files ------------------------------------------------------------------------------


def junk(size: int = 64 * 1024, seed: int = 20240131) -> bytes:
    """Random bytes (fixed seed): what a crawler saves when it names a download .txt."""
    return random.Random(seed).randbytes(size)


def report_page(charset: str | None = "utf-8") -> str:
    """Seed 000 as a web page (its hand-transcribed content, rendered as in test_variants)."""
    report = load_seed(EXPECTED / "seed_000.yaml")
    return to_html(report_blocks(report, LAYOUTS[report.template]), charset=charset)


def pasted_gbk_paragraph() -> bytes:
    """The UTF-8 page with one paragraph in GBK, as pasted from another page."""
    page = report_page()
    start = page.index(SECTION_SENTENCES["overview"])
    end = start + len(SECTION_SENTENCES["overview"])
    return page[:start].encode("utf-8") + page[start:end].encode("gbk") + page[end:].encode("utf-8")


def truncated_page() -> bytes:
    """The page cut in the middle of table 三, as an interrupted download leaves it."""
    page = report_page()
    return page[: page.index("(四)无法提供")].encode("utf-8")


NEWS_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>我市举办春季大型招聘会_新闻中心</title></head>
<body>
<div class="nav"><a href="/">首页</a> | <a href="/news">新闻中心</a> | <a href="/zwgk">政务公开</a></div>
<h1>我市举办春季大型招聘会</h1>
<p>发布日期：2024-03-05　来源：市人力资源和社会保障局</p>
<p>3月5日，我市春季大型招聘会在市体育中心举行，共有一百二十家企业参会，提供就业岗位三千余个。</p>
<p>市人社局有关负责人表示，将持续做好稳就业工作，为求职者和用人单位搭建对接平台。</p>
<div class="footer">主办单位：市人民政府办公室　网站标识码：1234567890</div>
</body></html>
"""


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + junk(2048, seed=3)


def broken_pdf() -> bytes:
    """Starts like a PDF, then random bytes: no xref, no /Root."""
    return b"%PDF-1.7\n" + junk(32 * 1024, seed=7)


def broken_docx() -> bytes:
    """A zip that claims to be a Word document, with a document.xml that is not XML."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document><w:body><w:p>未闭合")
    return out.getvalue()


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "附件")
    return out.getvalue()


@dataclass(frozen=True)
class BadFile:
    """A file of the audited folder, what its bytes are, and what the run must make of it."""

    name: str
    make: Callable[[], bytes]
    status: str  # in documents.csv
    problem: str | None  # a phrase of the parse_error finding; None: no parse_error finding


BAD_FILES = [
    BadFile("empty.txt", lambda: b"", "failed", "文件为空"),
    BadFile("junk.txt", junk, "failed", "不是可识别的文档（二进制内容）"),
    BadFile("truncated.html", truncated_page, "partial", None),
    BadFile("news.html", NEWS_PAGE.encode, "failed", "报告标题"),
    BadFile("declared_utf8_is_gbk.html", lambda: report_page("utf-8").encode("gbk"), "parsed", "网页声明的编码 utf-8 与内容不符"),
    BadFile("gbk_undeclared.html", lambda: report_page(None).encode("gbk"), "parsed", None),
    BadFile("pasted_gbk_paragraph.html", pasted_gbk_paragraph, "parsed", "按 utf-8 解码后仍有乱码（如“"),
    BadFile("huge.txt", lambda: b"0" * TWENTY_MB, "failed", "文件过大（19.1 MB，上限 8 MB），未解析"),
    BadFile("broken.pdf", broken_pdf, "failed", "读取失败（"),
    BadFile("bom_only.txt", lambda: b"\xef\xbb\xbf", "failed", "文件没有可读的文字内容"),
    BadFile("scripts_only.html", lambda: b"<html><head><script>var a = 1;</script></head><body></body></html>", "failed", "文件没有可读的文字内容"),
    BadFile("broken.docx", broken_docx, "failed", "读取失败（"),
    BadFile("picture_named.txt", png, "failed", "不是可识别的文档（二进制内容）"),
]
SKIPPED = {
    "counts.csv": "机关,年度\n某局,2023\n".encode("utf-8"),
    "table.tsv": b"url\ttitle\nhttp://example.org\tx\n",
    "meta.json": b'{"agency": "x"}',
    "scan.png": png(),
}


# One run of the command line over all of them --------------------------------------------------


@dataclass
class Run:
    folder: Path
    out: Path
    returncode: int
    stderr: str
    documents: list[dict[str, str]]
    findings: list[dict[str, str]]
    document_columns: list[str]
    finding_columns: list[str]

    def document(self, name: str) -> dict[str, str]:
        return next(row for row in self.documents if row["source"] == str(self.folder / name))

    def findings_of(self, name: str) -> list[dict[str, str]]:
        return [row for row in self.findings if row["source"] == str(self.folder / name)]


DOCUMENT_TEXT = ["source", "agency", "template", "status", "html"]


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:  # our CSV files start with a byte-order mark
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    need_shared()
    folder = tmp_path_factory.mktemp("inbox")
    out = tmp_path_factory.mktemp("out")
    for bad in BAD_FILES:
        (folder / bad.name).write_bytes(bad.make())
    for name, data in SKIPPED.items():
        (folder / name).write_bytes(data)
    shutil.copy(SHARED / "seeds" / GOOD_SEED, folder / GOOD_SEED)
    # The command in this process (its parse workers are processes of their own): the Great
    # Expectations import of a process of its own would be most of this fixture's time.
    done = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["run", str(folder), "--out", str(out)])
    document_columns, documents = _read_csv(out / "documents.csv") if (out / "documents.csv").exists() else ([], [])
    finding_columns, findings = _read_csv(out / "findings.csv") if (out / "findings.csv").exists() else ([], [])
    return Run(folder, out, done.exit_code, done.stderr + repr(done.exception or ""), documents, findings, document_columns, finding_columns)


def test_run_exits_zero(run):
    assert run.returncode == 0, run.stderr[-3000:]


def test_one_row_per_document_and_none_for_skipped_files(run):
    sources = sorted(row["source"] for row in run.documents)
    assert sources == sorted(str(run.folder / name) for name in [bad.name for bad in BAD_FILES] + [GOOD_SEED])
    assert "跳过 4 个非文档文件" in run.stderr
    assert not {row["source"] for row in run.findings} & {str(run.folder / name) for name in SKIPPED}


def test_output_columns_come_first_in_order(run):
    assert run.document_columns[:7] == ["source", "agency", "report_year", "published", "template", "status", "html"]
    assert run.finding_columns[:8] == ["source", "agency", "report_year", "rule_id", "category", "severity", "message", "evidence"]


def test_parquet_outputs_hold_plain_text_columns(run):
    # The frames keep repeated strings categorical; the public files must not (spec/outputs.md).
    for stem, text_columns in [("documents", DOCUMENT_TEXT), ("cells", ["source", "table", "row", "col", "raw", "flag"]), ("findings", ["source", "rule_id", "category", "severity"])]:
        schema = pl.read_parquet_schema(run.out / f"{stem}.parquet")
        assert {c: schema[c] for c in text_columns} == {c: pl.String for c in text_columns}, stem
    assert pl.read_parquet_schema(run.out / "cells.parquet")["value"] == pl.Float64


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda b: b.name)
def test_status_of_each_bad_file(run, bad):
    assert run.document(bad.name)["status"] == bad.status


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda b: b.name)
def test_parse_error_finding_says_what_went_wrong(run, bad):
    parse_errors = [f for f in run.findings_of(bad.name) if f["rule_id"] == "PARSE"]
    if bad.problem is None:
        assert parse_errors == []
        return
    assert len(parse_errors) == 1, parse_errors
    finding = parse_errors[0]
    assert finding["category"] == "parse_error"
    assert bad.problem in finding["message"], finding["message"]
    assert finding["severity"] == ("error" if bad.status == "failed" else "warning")


def test_every_failed_document_has_a_parse_error(run):
    failed = {row["source"] for row in run.documents if row["status"] == "failed"}
    explained = {f["source"] for f in run.findings if f["rule_id"] == "PARSE" and f["message"]}
    assert failed == {str(run.folder / b.name) for b in BAD_FILES if b.status == "failed"}
    assert failed <= explained


def test_truncated_page_is_audited_for_what_it_lacks(run):
    row = run.document("truncated.html")
    assert (row["agency"], row["report_year"], row["template"]) == ("柳州市科学技术局", "2022", "2021")
    missing = [f for f in run.findings_of("truncated.html") if f["category"] == "mandatory_section"]
    assert any("五、存在的主要问题及改进情况" in f["message"] for f in missing), missing


def test_wrongly_encoded_pages_are_read_as_the_report_they_are(run):
    for name in ("declared_utf8_is_gbk.html", "gbk_undeclared.html"):
        row = run.document(name)
        assert (row["agency"], row["report_year"], row["published"]) == ("柳州市科学技术局", "2022", "2023-01-19"), name


def test_good_report_is_still_audited(run):
    row = run.document(GOOD_SEED)
    assert (row["status"], row["agency"], row["report_year"], row["template"]) == ("parsed", "柳州市科学技术局", "2022", "2021")
    findings = run.findings_of(GOOD_SEED)
    assert findings and not [f for f in findings if f["rule_id"] == "PARSE"]
    # Seed 000 prints section 四 as "1." and 五/六 as 四/五 (tests/expected/seed_000.yaml).
    assert any(f["category"] == "mandatory_section" for f in findings)


# read_bytes on the same inputs -------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    format: str
    problems: tuple[str, ...] | str  # exact tuple, or the start of the only problem
    encoding: str | None = None  # None: not checked
    has_lines: bool = False


READINGS = {
    "empty.txt": Reading("", ("文件为空",)),
    "junk.txt": Reading("binary", ("不是可识别的文档（二进制内容）",)),
    "truncated.html": Reading("html", (), "utf-8", True),
    "news.html": Reading("html", (), "utf-8", True),
    "declared_utf8_is_gbk.html": Reading("html", ("网页声明的编码 utf-8 与内容不符，已自动识别编码",), "gb18030", True),
    "gbk_undeclared.html": Reading("html", (), "gb18030", True),
    "pasted_gbk_paragraph.html": Reading("html", "按 utf-8 解码后仍有乱码（如“", "utf-8", True),
    "huge.txt": Reading("text", ("文件过大（19.1 MB，上限 8 MB），未解析",)),
    "broken.pdf": Reading("pdf", "读取失败（"),
    "bom_only.txt": Reading("text", ("文件没有可读的文字内容",)),
    "scripts_only.html": Reading("html", ("文件没有可读的文字内容",)),
    "broken.docx": Reading("docx", "读取失败（"),
    "picture_named.txt": Reading("image", ("不是可识别的文档（二进制内容）",)),
}


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda b: b.name)
def test_read_bytes(bad):
    want = READINGS[bad.name]
    text = read_bytes(bad.name, bad.make())
    assert text.source == bad.name and text.format == want.format
    if isinstance(want.problems, str):
        assert len(text.problems) == 1 and text.problems[0].startswith(want.problems), text.problems
    else:
        assert text.problems == want.problems
    if want.encoding is not None:
        assert text.encoding == want.encoding
    assert bool(text.lines) == want.has_lines


def test_read_bytes_finds_the_report_in_wrongly_encoded_pages():
    for data in (report_page("utf-8").encode("gbk"), report_page(None).encode("gbk")):
        lines = read_bytes("page.html", data).lines
        assert lines[0] == "柳州市科学技术局2022年政府信息公开工作年度报告"
        assert "| 规章 | 0 | 0 | 0 |" in lines


def test_read_bytes_of_a_truncated_page_keeps_what_arrived():
    lines = read_bytes("page.html", truncated_page()).lines
    assert "三、收到和处理政府信息公开申请情况" in lines
    assert "| 8.属于行政查询事项 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in lines[-2:]  # then the cut <tr>
    assert not any("无法提供" in line or "行政诉讼" in line for line in lines)


def test_read_bytes_of_the_good_seed():
    need_shared()
    text = read_bytes(GOOD_SEED, (SHARED / "seeds" / GOOD_SEED).read_bytes())
    assert (text.format, text.encoding, text.problems) == ("text", "utf-8", ())
    assert any("柳州市科学技术局2022年政府信息公开工作年度报告" in line for line in text.lines)


@pytest.mark.parametrize(
    "data, fmt, problem",
    [
        (b" \r\n\t \n", "", "文件为空"),
        (zip_archive(), "archive", "不是可识别的文档（二进制内容）"),
        (b"PK\x03\x04" + junk(4096, seed=11), "binary", "不是可识别的文档（二进制内容）"),
        ("\u3000\u00a0\n\u3000\n".encode("utf-8"), "text", "文件没有可读的文字内容"),
        (b"<html><body>\n  \n</body></html>", "html", "文件没有可读的文字内容"),
    ],
    ids=["whitespace", "zip", "bad-zip", "ideographic-spaces", "empty-body"],
)
def test_read_bytes_of_other_unreadable_content(data, fmt, problem):
    text = read_bytes("x", data)
    assert (text.format, text.lines, text.problems) == (fmt, [], (problem,))


def test_size_limits_by_kind():
    limits = Limits(max_text_bytes=1000, max_binary_bytes=100_000)
    text = read_bytes("long.txt", "政务公开".encode("utf-8") * 200, limits)
    assert len(text.problems) == 1 and text.problems[0].startswith("文件过大") and text.lines == []
    pdf = read_bytes("broken.pdf", broken_pdf(), limits)  # 32 KB: over the text limit, under the binary one
    assert pdf.problems[0].startswith("读取失败（")


@pytest.mark.parametrize(
    "prefix",
    [b"", b"%PDF-1.4\n", b"PK\x03\x04", b"<html><body><table>", b"\xef\xbb\xbf", b"\xff\xfe", b"\x89PNG",
     b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"],
)
def test_read_bytes_never_raises_and_always_explains(prefix):
    rng = random.Random(prefix)
    for size in (1, 7, 100, 5000):
        data = prefix + rng.randbytes(size)
        text = read_bytes("x", data)
        assert text.lines or text.problems, (prefix, size)
