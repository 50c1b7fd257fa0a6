"""Word 97–2003 (.doc) and WPS files: every cell comes back exactly, merged cells as in DOCX.

Each hand-transcribed seed (tests/expected/seed_*.yaml), with its own values and with distinct
non-zero values in every cell, is rendered as DOCX in the template's table shape with merged cells
(tests/variants.py), saved as Word 97 by LibreOffice, and read back through `read_document` as
`.doc` and as the same bytes named `.wps` (WPS Writer saves Word's binary format). Every cell, the
header fields and the sections must be exactly what the DOCX was rendered from, and the lines must
be the DOCX reader's lines for the original DOCX. Without LibreOffice, reading says what to install;
an OLE2 spreadsheet is not taken for a report.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import olefile
import pytest

from audits.ingest import Limits, read_bytes, read_document, sniff, word97, word_documents
from audits.parse.report import parse
from tests.conftest import EXPECTED, LAYOUTS, ROOT
from tests.variants import BALANCE_NOTE, known_report, report_blocks, to_docx

SEEDS = sorted(p.stem for p in EXPECTED.glob("seed_*.yaml"))
VALUE_SETS = ["seed", "nonzero"]
SUFFIXES = [".doc", ".wps"]
INSTALL = "apt-get install -y --no-install-recommends libreoffice-writer-nogui"

needs_libreoffice = pytest.mark.skipif(
    word97.converter() is None and not os.environ.get("CI"),
    reason=f"needs LibreOffice to save test documents as Word 97 ({INSTALL}; scripts/test.sh installs it as root)",
)


# The Word 97 documents ---------------------------------------------------------------------------


def save_as_word97(docx_files: list[Path], folder: Path) -> list[Path]:
    """The DOCX files saved as Word 97 by LibreOffice (one call, a private profile), as a person
    would with File → Save As → Word 97–2003."""
    profile = folder / "profile"
    done = subprocess.run(
        ["soffice", "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
         "--convert-to", "doc:MS Word 97", "--outdir", str(folder), *map(str, docx_files)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return [folder / f"{path.stem}.doc" for path in docx_files]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Every seed × value set as .docx, .doc and .wps (the .doc bytes under another name)."""
    folder = tmp_path_factory.mktemp("word97")
    docx_files = []
    for seed in SEEDS:
        for values in VALUE_SETS:
            report = known_report(seed, values)
            path = folder / f"{report.name}.docx"
            path.write_bytes(to_docx(report_blocks(report, LAYOUTS[report.template])))
            docx_files.append(path)
    for doc in save_as_word97(docx_files, folder):
        doc.with_suffix(".wps").write_bytes(doc.read_bytes())
    return folder


def file_of(folder: Path, seed: str, values: str, suffix: str) -> Path:
    return folder / f"{known_report(seed, values).name}{suffix}"


@lru_cache(maxsize=None)
def _read(path: Path):
    text, data = read_document(path)
    return text, parse(text, LAYOUTS)


def _as_float(value):
    return None if value is None else float(value)


# Round trip --------------------------------------------------------------------------------------


@needs_libreoffice
def test_the_test_documents_are_word97_compound_files(folder):
    for doc in sorted(folder.glob("*.doc")):
        data = doc.read_bytes()
        assert data.startswith(word97.OLE2_MAGIC) and b"word/document.xml" not in data, doc.name
        with olefile.OleFileIO(data) as ole:
            assert ole.exists("WordDocument") and ole.exists("1Table"), doc.name
        assert sniff(data) == "doc"


@needs_libreoffice
@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("values", VALUE_SETS)
@pytest.mark.parametrize("seed", SEEDS)
def test_every_cell_comes_back_exactly(folder, seed, values, suffix):
    report = known_report(seed, values)
    text, parsed = _read(file_of(folder, seed, values, suffix))
    assert (text.format, text.problems) == ("doc", ())
    got = {(c.table, c.row, c.col): c.value for c in parsed.cells}
    want = {key: _as_float(value) for key, value in report.cells.items()}
    wrong = {key: (got.get(key, "absent"), value) for key, value in want.items() if got.get(key, "absent") != value}
    assert not wrong, f"{len(wrong)} cells differ (got, expected): {dict(list(wrong.items())[:12])}"
    assert set(got) == set(want)
    blanks = {(c.table, c.row, c.col) for c in parsed.cells if c.flag == "blank"}
    assert blanks == {key for key, value in want.items() if value is None}
    layout = LAYOUTS[report.template]
    assert (parsed.agency, parsed.report_year, parsed.published, parsed.template) == (
        report.agency, report.report_year, report.published, report.template,
    )
    assert [(s.key, s.numeral) for s in parsed.sections] == [(s.key, s.numeral) for s in layout.sections]
    assert parsed.tables_found == ("active", "applications", "review_litigation")
    assert parsed.status == "parsed" and not parsed.problems


@needs_libreoffice
@pytest.mark.parametrize("values", VALUE_SETS)
@pytest.mark.parametrize("seed", SEEDS)
def test_lines_and_merged_cells_are_those_of_the_docx(folder, seed, values):
    docx = file_of(folder, seed, values, ".docx")
    from_docx = read_bytes(docx.name, docx.read_bytes())
    for suffix in SUFFIXES:
        text, _ = _read(file_of(folder, seed, values, suffix))
        assert text.lines == from_docx.lines, suffix


@needs_libreoffice
def test_merged_header_cells_are_written_once_per_row(folder):
    text, _ = _read(file_of(folder, "seed_000", "seed", ".doc"))
    # Table 三's header: the note spans three rows and three columns, 申请人情况 seven columns,
    # 法人或其他组织 five; 自然人 and 总计 span two rows.
    header = [
        f"| {BALANCE_NOTE} | 申请人情况 |",
        f"| {BALANCE_NOTE} | 自然人 | 法人或其他组织 | 总计 |",
        f"| {BALANCE_NOTE} | 自然人 | 商业企业 | 科研机构 | 社会公益组织 | 法律服务机构 | 其他 | 总计 |",
    ]
    start = text.lines.index(header[0])
    assert text.lines[start : start + 3] == header
    # Table 二's clause rows span the whole table: a title line, not a row of repeated cells.
    assert "第二十条第（一）项" in text.lines


@needs_libreoffice
def test_a_batch_is_converted_in_one_call(folder, monkeypatch):
    docs = sorted(folder.glob("*.doc"))
    calls = []
    soffice = word97._soffice

    def counted(*args, **kwargs):
        calls.append(len(args[3]))
        return soffice(*args, **kwargs)

    monkeypatch.setattr(word97, "_soffice", counted)
    note = folder / "note.txt"
    note.write_text("政府信息公开工作年度报告\n", encoding="utf-8")
    converted = word_documents(docs + [note])
    assert calls == [len(docs)] and set(converted) == set(docs)
    for doc in docs:
        text, _ = read_document(doc, converted=converted[doc])
        assert (text.format, text.problems) == ("doc", ())
        assert text.lines == _read(doc)[0].lines, doc.name
    # a parse worker's chunk goes through the same single call
    from audits.workers import Input, parse_chunk

    calls.clear()
    frames, _ = parse_chunk([Input(str(d)) for d in docs] + [Input(str(note))], str(ROOT / "rules" / "templates"))
    assert calls == [len(docs)] and frames.documents.height == len(docs) + 1
    note.unlink()


# When it cannot be read --------------------------------------------------------------------------


@needs_libreoffice
def test_without_libreoffice_the_problem_says_what_to_install(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no soffice, no libreoffice
    assert word97.converter() is None
    for suffix in SUFFIXES:
        text, data = read_document(file_of(folder, "seed_001", "seed", suffix))
        assert (text.format, text.lines, text.problems) == ("doc", [], (word97.MISSING,))
        assert INSTALL in text.problems[0] and data
        assert parse(text, LAYOUTS).status == "failed"


@needs_libreoffice
def test_the_command_line_reports_the_missing_converter_and_goes_on(folder, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for suffix in SUFFIXES:
        source = file_of(folder, "seed_002", "seed", suffix)
        (inbox / source.name).write_bytes(source.read_bytes())
    docx = file_of(folder, "seed_002", "seed", ".docx")
    (inbox / "seed_002.docx").write_bytes(docx.read_bytes())
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "audits.cli", "run", str(inbox), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PATH": str(tmp_path / "empty"), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import polars as pl

    documents = {Path(row["source"]).name: row for row in pl.read_csv(out / "documents.csv", infer_schema=False).to_dicts()}
    assert documents["seed_002.docx"]["status"] == "parsed"
    findings = pl.read_csv(out / "findings.csv", infer_schema=False).to_dicts()
    for suffix in SUFFIXES:
        name = f"{known_report('seed_002', 'seed').name}{suffix}"
        assert documents[name]["status"] == "failed"
        errors = [f for f in findings if Path(f["source"]).name == name and f["rule_id"] == "PARSE"]
        assert len(errors) == 1 and errors[0]["category"] == "parse_error"
        assert INSTALL in errors[0]["message"]


@needs_libreoffice
def test_a_damaged_word_file_is_a_problem_not_a_crash(folder):
    data = file_of(folder, "seed_000", "seed", ".doc").read_bytes()
    damaged = io.BytesIO(data)
    with olefile.OleFileIO(damaged, write_mode=True) as ole:
        ole.write_stream("WordDocument", b"\0" * ole.get_size("WordDocument"))
        data = damaged.getvalue()  # inside: olefile before 0.47 closes the file it was given
    text = read_bytes("damaged.doc", data)
    assert text.format == "doc" and text.lines == []
    assert text.problems == ("LibreOffice 未能转换此文件（文件可能已加密、已损坏或不是 Word/WPS 文档）",)


@needs_libreoffice
def test_a_conversion_over_its_time_is_killed_and_the_next_one_works(folder):
    doc = file_of(folder, "seed_004", "seed", ".doc")
    text = read_bytes(doc.name, doc.read_bytes(), Limits(convert_seconds=0.05))
    assert text.format == "doc" and text.lines == []
    assert text.problems == ("LibreOffice 转换超时（超过 0.05 秒），未解析",)
    workspace = str(word97._private_workspace().root)
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and workspace in _cmdline(pid)]
    assert left == [], "soffice processes left running"
    again = read_bytes(doc.name, doc.read_bytes())
    assert again.problems == () and again.lines == _read(doc)[0].lines


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        return ""


def test_an_ole2_spreadsheet_is_not_a_report():
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("表三")
    for col, label in enumerate(["自然人", "商业企业", "总计"]):
        sheet.write(0, col, label)
        sheet.write(1, col, col)
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    assert data.startswith(word97.OLE2_MAGIC) and sniff(data) == "ole"
    for name in ("报告.xls", "报告.doc", "报告.wps"):
        text = read_bytes(name, data)
        assert (text.format, text.lines, text.problems) == ("ole", [], ("不是可识别的文档（Excel 电子表格）",))


def test_a_damaged_compound_file_is_explained():
    data = word97.OLE2_MAGIC + bytes(600)
    text = read_bytes("x.doc", data)
    assert (text.format, text.lines, text.problems) == ("ole", [], ("不是可识别的文档（OLE2 复合文件已损坏或不完整）",))
