"""Scanned PDFs: pages with no text layer are read by OCR, and the same table reader reads them.

The three real PDFs of the corpus have a text layer. Here each is printed to images (150 and
200 dpi, and one degraded copy: each page turned by 0.5–1°, blurred, speckled and saved as a coarse
JPEG) and put back into a PDF that holds nothing but those images. Read through `read_document`
and `parse`, at least 99 % of the cells must equal the values transcribed by hand from the
originals (tests/expected), which were never taken from any parser's output.

OCR costs seconds a page, so every scan is built and read once per session (`scans`).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageFilter
from ruamel.yaml import YAML

from audits.engines.run import run_rules
from audits.frames import build_frames
from audits.ingest import ocr, read_document
from audits.parse.report import parse
from audits.rulebook.book import load_rulebook
from tests.conftest import EXPECTED, LAYOUTS, ROOT, SHARED, need_shared

SOURCES = {
    "030": ("corpus/030_huaian-shi_2024.pdf", "corpus_030.yaml"),
    "hongze_2023": ("corpus/hongze_2023.pdf", "hongze_2023.yaml"),
    "hongze_2024": ("corpus/hongze_2024.pdf", "hongze_2024.yaml"),
}
VARIANTS = {"150dpi": {"dpi": 150}, "200dpi": {"dpi": 200}, "degraded": {"dpi": 200, "degrade": True}}
SKEW = (0.8, -0.6, 1.0, -0.9, 0.5, -0.7)  # degrees, page by page: scanners turn each sheet its own way


# Scans ----------------------------------------------------------------------------------------


def _degrade(gray: np.ndarray, angle: float, seed: int) -> bytes:
    """A page as a poor scan: turned, blurred, speckled, and saved as a coarse JPEG."""
    img = Image.fromarray(gray).rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=255)
    img = img.filter(ImageFilter.GaussianBlur(1.0))
    noisy = np.asarray(img, dtype=np.float64) + np.random.default_rng(seed).normal(0, 8, gray.shape)
    out = io.BytesIO()
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(out, "JPEG", quality=40)
    return out.getvalue()


def _add_image_page(out: pdfium.PdfDocument, page: pdfium.PdfPage, dpi: int, degrade: bool, index: int) -> None:
    """Append `page` to `out` as an image only (no text, no vector graphics), at `dpi`."""
    width, height = page.get_size()
    bitmap = page.render(scale=dpi / 72, grayscale=True)
    image = pdfium.PdfImage.new(out)
    if degrade:
        jpeg = _degrade(bitmap.to_numpy(), SKEW[index % len(SKEW)], seed=index)
        image.load_jpeg(io.BytesIO(jpeg))
    else:
        image.set_bitmap(bitmap)  # stored losslessly
    image.set_matrix(pdfium.PdfMatrix().scale(width, height))
    new = out.new_page(width, height)
    new.insert_obj(image)
    new.gen_content()


def image_pdf(source: Path, dpi: int, degrade: bool = False, scanned: set[int] | None = None) -> bytes:
    """`source` with its pages (or only the `scanned` ones) replaced by images of them."""
    src = pdfium.PdfDocument(source)
    out = pdfium.PdfDocument.new()
    for i in range(len(src)):
        if scanned is None or i in scanned:
            _add_image_page(out, src[i], dpi, degrade, i)
        else:
            out.import_pages(src, [i])
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def scans(tmp_path_factory):
    """Read (text, report) of one scanned copy of a source, built and OCR'd once per session."""
    folder = tmp_path_factory.mktemp("scans")
    done: dict[tuple[str, str], tuple] = {}

    def get(source: str, variant: str):
        if (source, variant) not in done:
            path = folder / f"{source}-{variant}.pdf"
            path.write_bytes(image_pdf(SHARED / SOURCES[source][0], **VARIANTS[variant]))
            text, _ = read_document(path)
            done[source, variant] = (text, parse(text, LAYOUTS))
        return done[source, variant]

    return get


def _expected(source: str) -> tuple[dict, dict]:
    doc = YAML(typ="safe").load((EXPECTED / SOURCES[source][1]).read_text(encoding="utf-8"))
    cells = {
        (table, row, col): (None if value is None else float(value))
        for table, rows in doc["cells"].items()
        for row, cols in rows.items()
        for col, value in cols.items()
    }
    return doc, cells


# Accuracy -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("source", SOURCES)
def test_scanned_report_cells_match_transcription(scans, source, variant):
    need_shared()
    text, report = scans(source, variant)
    doc, want = _expected(source)
    got = {(c.table, c.row, c.col): c.value for c in report.cells}
    wrong = {k: (got.get(k, "absent"), v) for k, v in want.items() if got.get(k, "absent") != v}
    exact = len(want) - len(wrong)
    print(f"\nOCR {source} {variant}: {exact}/{len(want)} cells exact ({exact / len(want):.2%})")
    assert not text.problems
    assert exact / len(want) >= 0.99, f"{len(wrong)} cells differ (got, expected): {dict(list(wrong.items())[:12])}"
    # Every line of an image-only PDF came from OCR, and every cell read from it says so.
    assert text.ocr_lines == frozenset(range(1, len(text.lines) + 1))
    assert [c for c in report.cells if c.flag == ""] == []
    # The title, the dates and the six sections come through OCR too.
    header = (report.agency, report.agency_kind, report.report_year, report.published, report.template)
    assert header == (doc["agency"], doc["agency_kind"], doc["report_year"], doc["published"], doc["template"])
    assert [s.key for s in report.sections] == [s["key"] for s in doc["sections"] if s["numeral"] != "missing"]


@pytest.mark.slow
def test_findings_resting_on_ocr_cells_say_so(scans):
    """hongze_2023 prints two table 四 rows whose 总计 is 0 beside non-zero parts (T4-SUM, read from
    its text layer in test_findings_real). Scanned, the same two findings stand, and each names the
    cells a reviewer must compare with the scan."""
    need_shared()
    _, report = scans("hongze_2023", "150dpi")
    book = load_rulebook(ROOT / "rules")
    findings = [f for f in run_rules(book, build_frames([report])).findings if f.rule_id == "T4-SUM"]
    evidence = sorted(f.evidence for f in findings)
    assert len(evidence) == 2
    assert evidence[0].startswith("10 + 1 + 0 + 0 ≠ 0") and evidence[1].startswith("5 + 0 + 0 + 0 ≠ 0")
    for f in findings:
        assert f.severity == "error"
        assert "由扫描页文字识别（OCR）读出，请对照原件核实" in f.evidence
        assert "表四" in f.evidence.split("由扫描页文字识别")[0].split("所涉单元格")[-1]
        assert all(c.flag == "ocr" for c in f.cells)


# Which pages go to OCR --------------------------------------------------------------------------


def test_pages_with_a_text_layer_are_never_ocr(monkeypatch, tmp_path):
    need_shared()
    calls: list[list[int]] = []
    real = ocr.read_pages

    def spy(data, pages, *args, **kwargs):
        calls.append(list(pages))
        return real(data, pages, *args, **kwargs)

    monkeypatch.setattr(ocr, "read_pages", spy)
    for path, _ in SOURCES.values():
        text, _ = read_document(SHARED / path)
        assert text.lines and not text.ocr_lines and not text.problems
    assert calls == []

    # 030 with only its page 4 (table 二's last blocks, the top of table 三) scanned.
    path = tmp_path / "mixed.pdf"
    path.write_bytes(image_pdf(SHARED / SOURCES["030"][0], dpi=200, scanned={3}))
    text, _ = read_document(path)
    assert calls == [[3]]
    report = parse(text, LAYOUTS)
    ocr_rows = {(c.table, c.row) for c in report.cells if c.flag == "ocr"}
    text_rows = {(c.table, c.row) for c in report.cells if c.flag == ""}
    assert {("active", "punishment"), ("active", "fees"), ("applications", "new_received"), ("applications", "unable_not_held")} <= ocr_rows
    assert {("active", "regulations"), ("applications", "unable_need_creation"), ("review_litigation", "review")} <= text_rows
    assert 0 < len(text.ocr_lines) < len(text.lines)
    _, want = _expected("030")
    got = {(c.table, c.row, c.col): c.value for c in report.cells}
    assert sum(got.get(k, "absent") == v for k, v in want.items()) / len(want) >= 0.99


def test_blank_pages_are_not_read_by_ocr(monkeypatch, tmp_path):
    """A damaged PDF can render as white pages: nothing there to read, and each would cost the
    engine seconds. The report is still unreadable, and says so."""
    blank = pdfium.PdfDocument.new()
    for _ in range(3):
        blank.new_page(595, 842)
    path = tmp_path / "blank.pdf"
    blank.save(str(path))
    asked: list[tuple] = []

    def engine_spy(image):
        asked.append(image.shape)
        return SimpleNamespace(txts=(), boxes=())

    monkeypatch.setattr(ocr, "engine", lambda: engine_spy)
    text, _ = read_document(path)
    assert asked == []
    assert text.lines == [] and len(text.problems) == 1 and "没有文字层" in text.problems[0]
    page = np.full((200, 200), 255, dtype=np.uint8)
    page[100, 100] = 150  # one dark mark is enough to be read
    assert ocr.page_lines(page, engine_spy) == [] and len(asked) == 1


# Without the engine ----------------------------------------------------------------------------


def test_missing_engine_is_a_problem_in_chinese_not_a_crash(monkeypatch, tmp_path):
    need_shared()
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # `import rapidocr` now raises ImportError
    ocr.engine.cache_clear()
    try:
        scanned = tmp_path / "scanned.pdf"
        scanned.write_bytes(image_pdf(SHARED / SOURCES["hongze_2023"][0], dpi=72))
        text, _ = read_document(scanned)
        assert text.lines == [] and len(text.problems) == 1
        problem = text.problems[0]
        assert "没有文字层" in problem and "OCR" in problem and "pip install" in problem and "rapidocr" in problem
        report = parse(text, LAYOUTS)
        assert report.status == "failed" and problem in report.problems

        mixed = tmp_path / "mixed.pdf"
        mixed.write_bytes(image_pdf(SHARED / SOURCES["hongze_2023"][0], dpi=72, scanned={4}))
        text, _ = read_document(mixed)
        assert text.lines and not text.ocr_lines  # the pages with text are still read
        assert len(text.problems) == 1 and text.problems[0].startswith("PDF 有 1 页没有文字层")
    finally:
        ocr.engine.cache_clear()  # the next test loads the real engine again


# The models ship in the wheel -----------------------------------------------------------------


def test_ocr_fetches_nothing_at_run_time(tmp_path):
    """One page read in a process with no network (or, without `unshare`, a dead proxy) and an
    empty home: the models must come from the installed package."""
    need_shared()
    script = (
        "import sys, pypdfium2; from audits.ingest import ocr; "
        f"page = pypdfium2.PdfDocument({str(SHARED / SOURCES['hongze_2023'][0])!r})[0]; "
        "print('\\n'.join(ocr.page_lines(ocr.render(page, 150), ocr.engine())))"
    )
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HOME": str(tmp_path), "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "NO_PROXY": ""}
    env = {**env, "http_proxy": dead, "https_proxy": dead, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", script]
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-rn", *cmd]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2023年政府信息公开工作年度报告" in proc.stdout
