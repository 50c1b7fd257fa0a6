"""Hostile inputs cost what their limits say and never block, escape or crash the run.

A 2 GB sparse file is refused from its size before a byte is read; a FIFO or /dev/zero is named, not
read; links out of the input folders are skipped and counted; a DOCX that decompresses to more than
its limit is refused before decompressing, and one whose headers lie about its sizes decompresses no
further than they say; a file name that is not UTF-8 is read through its real path and written out
as display-safe text. Then the real command line audits a folder holding all of them beside two
good reports, whose cells and findings must be those of the same reports audited alone.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import pytest

from audits.ingest import Limits, Skipped, discover, display_path, read_bytes, read_document
from audits.ingest.files import BROKEN_LINK, LEADS_OUTSIDE, NOT_DOCUMENT, NOT_REGULAR
from tests.conftest import EXPECTED, LAYOUTS, ROOT, SHARED, need_shared
from tests.variants import load_seed, report_blocks, to_docx

GOOD_SEED = "000_6138bd5dad981167.txt"
OTHER_SEED = "002_c72821a3dfd52d3e.txt"
GBK_NAME = "灵武市2024年报.txt".encode("gbk")  # what unzipping a Windows archive leaves
TWO_GB = 2 * 1024**3


def sparse(path: Path, size: int = TWO_GB) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)  # no block written: the file costs no disk
    return path


def bomb_docx(padding: int = 130 * 2**20) -> bytes:
    """A real DOCX (seed 000 as Word) whose document.xml carries `padding` spaces: ~130 KB on disk,
    130 MB once decompressed."""
    report = load_seed(EXPECTED / "seed_000.yaml")
    source = zipfile.ZipFile(io.BytesIO(to_docx(report_blocks(report, LAYOUTS[report.template]))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info, source.read(info))
                continue
            head, tail = source.read(info).split(b"<w:body>")
            with archive.open("word/document.xml", "w") as part:
                part.write(head + b"<w:body>")
                for _ in range(padding // 2**20):
                    part.write(b" " * 2**20)
                part.write(tail)
    return out.getvalue()


def lying_docx(declared: int = 2**20) -> bytes:
    """The bomb with 300 MB in its document.xml, whose headers (local and central) declare
    `declared` bytes, with the CRC of those first bytes: every check of what is returned passes."""
    data = bytearray(bomb_docx(300 * 2**20))
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.getinfo("word/document.xml")
    with archive.open(info) as part:
        crc = zlib.crc32(part.read(declared))
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(info.filename)] != info.filename.encode():
        central = data.find(b"PK\x01\x02", central + 4)
    for header, at in ((info.header_offset, 14), (central, 16)):  # the CRC; 8 bytes on, the uncompressed size
        struct.pack_into("<I", data, header + at, crc)
        struct.pack_into("<I", data, header + at + 8, declared)
    return bytes(data)


def peak_rss_mb(code: str) -> tuple[str, int]:
    """Run Python code in a fresh process; its output and its peak resident memory (MB)."""
    wrapper = "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); " \
        "print(r.stdout + r.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)"
    done = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    *out, peak = done.stdout.strip().splitlines()
    return "\n".join(out), int(peak)


# Reading one file ------------------------------------------------------------------------------


def test_sparse_2gb_file_is_refused_from_its_size(tmp_path):
    text, data = read_document(sparse(tmp_path / "big.txt"))
    assert text.problems == ("文件过大（2048.0 MB，上限 8 MB），未解析",) and data == b""
    out, peak = peak_rss_mb(f"from pathlib import Path; from audits.ingest import read_document; print(read_document(Path({str(tmp_path / 'big.txt')!r}))[0].problems)")
    assert "文件过大（2048.0 MB" in out and peak < 300, (out, peak)


def test_no_more_than_the_limit_is_read_of_a_file_that_says_it_is_empty():
    status = Path("/proc/self/status")  # st_size 0, content over 1 KB
    if not status.exists():
        pytest.skip("no /proc")
    assert status.stat().st_size == 0
    text, data = read_document(status, Limits(max_text_bytes=100))
    assert len(data) == 101 and text.problems == ("文件过大（0.0 MB，上限 0 MB），未解析",)


def test_fifo_is_named_not_read(tmp_path):
    fifo = tmp_path / "report.txt"
    os.mkfifo(fifo)
    result = []
    reader = threading.Thread(target=lambda: result.append(read_document(fifo)), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert result[0][0].problems == ("不是普通文件（命名管道），未读取",)


def test_devices_are_named_not_read():
    for device in ("/dev/zero", "/dev/urandom"):
        text, data = read_document(Path(device))
        assert (text.problems, data) == (("不是普通文件（字符设备），未读取",), b"")


def test_docx_that_decompresses_past_its_limit_is_refused_before_decompressing():
    data = bomb_docx()
    assert len(data) < 2**20
    text = read_bytes("bomb.docx", data)
    assert text.problems == ("压缩文件解压后过大（共 130.8 MB，其中 word/document.xml 130.0 MB；上限 128 MB），未解压",)
    assert text.lines == []


def test_docx_whose_headers_lie_decompresses_no_further_than_they_say(tmp_path):
    (tmp_path / "lying.docx").write_bytes(lying_docx())
    code = f"from pathlib import Path; from audits.ingest import read_document; print(read_document(Path({str(tmp_path / 'lying.docx')!r}))[0].problems)"
    out, peak = peak_rss_mb(code)
    assert "读取失败（" in out and peak < 400, (out, peak)  # 300 MB inside, 1 MB declared: cut XML


def test_zip_with_too_many_parts_is_refused_before_opening():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
        for i in range(10_000):
            archive.writestr(f"customXml/item{i}.xml", "")
    assert read_bytes("many.docx", out.getvalue()).problems == ("压缩文件内的文件过多（10001 个，上限 10000 个），未解析",)


def test_name_that_is_not_utf8_is_read_and_shown_with_escapes(tmp_path):
    need_shared()
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/" + GBK_NAME))
    shutil.copy(SHARED / "seeds" / OTHER_SEED, path)
    text, _ = read_document(path)
    assert text.source == str(tmp_path) + "/\\xc1\\xe9\\xce\\xe4\\xca\\xd02024\\xc4\\xea\\xb1\\xa8.txt"
    assert text.source.encode("utf-8") and not text.problems
    assert any("灵武市科学技术局" in line for line in text.lines)
    assert display_path(tmp_path / "年报.txt") == str(tmp_path / "年报.txt")  # UTF-8 names unchanged


# Discovery -----------------------------------------------------------------------------------------


def test_discovery_stays_in_the_input_folders(tmp_path):
    inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
    (inbox / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    (inbox / "report.txt").write_text("报告", encoding="utf-8")
    (inbox / "sub" / "inner.html").write_text("<p>报告</p>", encoding="utf-8")
    (inbox / "counts.csv").write_text("a,b\n", encoding="utf-8")
    (elsewhere / "other.txt").write_text("别处", encoding="utf-8")
    os.mkfifo(inbox / "pipe.txt")
    links = {
        "passwd.txt": "/etc/passwd", "environ.txt": "/proc/self/environ", "etc": "/etc", "zero.txt": "/dev/zero",
        "other.txt": str(elsewhere / "other.txt"), "gone.txt": str(tmp_path / "nothing"),
        "alias.txt": str(inbox / "report.txt"), "sub_again": str(inbox / "sub"),
    }
    for name, target in links.items():
        (inbox / name).symlink_to(target)
    found = discover([inbox])
    assert found.documents == [inbox / "alias.txt", inbox / "report.txt", inbox / "sub" / "inner.html"]
    assert sorted(found.skipped) == sorted([
        Skipped(inbox / "counts.csv", NOT_DOCUMENT), Skipped(inbox / "pipe.txt", NOT_REGULAR),
        Skipped(inbox / "passwd.txt", LEADS_OUTSIDE), Skipped(inbox / "environ.txt", LEADS_OUTSIDE),
        Skipped(inbox / "etc", LEADS_OUTSIDE), Skipped(inbox / "zero.txt", LEADS_OUTSIDE),
        Skipped(inbox / "other.txt", LEADS_OUTSIDE), Skipped(inbox / "gone.txt", BROKEN_LINK),
    ])
    # Given as inputs themselves, the other folder's files are inside the inputs.
    assert inbox / "other.txt" in discover([inbox, elsewhere]).documents


# The command line over all of them -------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _audit(inputs: list[Path], out: Path) -> tuple[subprocess.CompletedProcess, int]:
    """`audits run` on the inputs; its result and its peak resident memory (MB), workers included."""
    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(r.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); sys.exit(r.returncode)"
    )
    command = [sys.executable, "-m", "audits.cli", "run", *map(str, inputs), "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    return done, int(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    need_shared()
    inbox = tmp_path_factory.mktemp("inbox")
    shutil.copy(SHARED / "seeds" / GOOD_SEED, inbox / GOOD_SEED)
    shutil.copy(SHARED / "seeds" / OTHER_SEED, os.fsdecode(os.fsencode(inbox) + b"/" + GBK_NAME))
    sparse(inbox / "sparse.txt")
    (inbox / "bomb.docx").write_bytes(bomb_docx())
    os.mkfifo(inbox / "pipe.txt")
    for name, target in {"passwd.txt": "/etc/passwd", "environ.txt": "/proc/self/environ", "etc": "/etc", "gone.txt": str(inbox / "nothing")}.items():
        (inbox / name).symlink_to(target)
    fifo = tmp_path_factory.mktemp("named") / "fifo.txt"
    os.mkfifo(fifo)
    alone = tmp_path_factory.mktemp("alone")
    shutil.copy(SHARED / "seeds" / GOOD_SEED, alone / GOOD_SEED)
    shutil.copy(SHARED / "seeds" / OTHER_SEED, alone / OTHER_SEED)
    hostile_out, alone_out = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("out_alone")
    hostile = _audit([inbox, Path("/dev/zero"), fifo], hostile_out)
    solo = _audit([alone], alone_out)
    return {"inbox": inbox, "fifo": fifo, "alone": alone, "hostile": (hostile, hostile_out), "solo": (solo, alone_out)}


def test_run_exits_zero_within_bounded_memory(runs):
    (done, peak), _ = runs["hostile"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert peak < 1500, peak  # reading the sparse file alone would take 2 GB


def test_every_input_is_a_row_or_counted_as_skipped(runs):
    (done, _), out = runs["hostile"]
    inbox = runs["inbox"]
    rows = {row["source"]: row for row in _rows(out / "documents.csv")}
    gbk = display_path(Path(os.fsdecode(os.fsencode(inbox) + b"/" + GBK_NAME)))
    assert set(rows) == {str(inbox / GOOD_SEED), gbk, str(inbox / "sparse.txt"), str(inbox / "bomb.docx"), "/dev/zero", str(runs["fifo"])}
    assert {source: row["status"] for source, row in rows.items()} == {
        str(inbox / GOOD_SEED): "parsed", gbk: "parsed", str(inbox / "sparse.txt"): "failed",
        str(inbox / "bomb.docx"): "failed", "/dev/zero": "failed", str(runs["fifo"]): "failed",
    }
    for part in ("3 个指向输入目录以外的链接", "1 个管道、设备等非普通文件", "1 个目标不存在的链接"):
        assert part in " ".join(done.stderr.split()), done.stderr


def test_each_refused_file_says_which_limit_or_what_it_is(runs):
    _, out = runs["hostile"]
    inbox = runs["inbox"]
    messages = {row["source"]: row["message"] for row in _rows(out / "findings.csv") if row["rule_id"] == "PARSE"}
    assert messages == {
        str(inbox / "sparse.txt"): "文件过大（2048.0 MB，上限 8 MB），未解析",
        str(inbox / "bomb.docx"): "压缩文件解压后过大（共 130.8 MB，其中 word/document.xml 130.0 MB；上限 128 MB），未解压",
        "/dev/zero": "不是普通文件（字符设备），未读取",
        str(runs["fifo"]): "不是普通文件（命名管道），未读取",
    }


def _of(out: Path, stem: str, source: str) -> list[dict[str, str]]:
    drop = {"source", "fingerprint", "html"}
    return [{k: v for k, v in row.items() if k not in drop} for row in _rows(out / f"{stem}.csv") if row["source"] == source]


def test_good_reports_beside_them_keep_their_cells_and_findings(runs):
    (_, hostile_out), (_, alone_out) = runs["hostile"], runs["solo"]
    inbox, alone = runs["inbox"], runs["alone"]
    gbk = display_path(Path(os.fsdecode(os.fsencode(inbox) + b"/" + GBK_NAME)))
    for there, here in ((str(inbox / GOOD_SEED), str(alone / GOOD_SEED)), (gbk, str(alone / OTHER_SEED))):
        cells = _of(hostile_out, "cells", there)
        assert len(cells) > 100 and cells == _of(alone_out, "cells", here)
        findings = _of(hostile_out, "findings", there)
        assert findings and findings == _of(alone_out, "findings", here)
