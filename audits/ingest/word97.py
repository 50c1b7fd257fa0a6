"""Word 97–2003 (.doc) and WPS Writer (.wps): LibreOffice converts them to DOCX, read as any DOCX.

Both are OLE2 compound files with a `WordDocument` stream (WPS Writer saves Word's binary format).
`soffice --headless --convert-to docx` keeps the tables with their merged cells, so the DOCX reader
writes them exactly as it writes a DOCX saved by Word. Each process converts in a private folder
with its own LibreOffice profile (a second soffice started on a profile in use passes its work to
the running one instead of converting), one call at a time, and a call that runs over its time is
killed. Several documents converted in one call cost far less than one call each (benchmarks/README.md).

Without LibreOffice a Word or WPS file is not read: its problem says what to install.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from audits.ingest.docx import read_docx
from audits.model import SourceText

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
CONVERTERS = ("soffice", "libreoffice")  # the commands LibreOffice's packages put on PATH
INSTALL = "apt-get install -y --no-install-recommends libreoffice-writer-nogui"
MISSING = (
    "未安装 LibreOffice，无法读取 Word 97–2003（.doc）或 WPS 文件："
    f"请以 root 运行“{INSTALL}”（或在本项目目录运行“bash scripts/setup.sh”），然后重新审核"
)
# Each further document in one call may take this much longer before the call is given up.
BATCH_SECONDS_PER_DOCUMENT = 10.0
# What the other OLE2 files that reach us are, by the stream that marks them.
_OLE_KINDS = (
    ("Workbook", "Excel 电子表格"),
    ("Book", "Excel 电子表格"),
    ("PowerPoint Document", "PowerPoint 演示文稿"),
    ("__properties_version1.0", "Outlook 邮件"),
)


def ole_streams(data: bytes) -> set[str] | None:
    """Names of the streams and storages of an OLE2 compound file (paths joined by '/'); None when
    the bytes are not a readable compound file."""
    import olefile

    if not data.startswith(OLE2_MAGIC):
        return None
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            return {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
    except Exception:  # noqa: BLE001 - olefile raises assorted errors on damaged files
        return None


def ole_kind(streams: set[str]) -> str:
    """What a compound file without a `WordDocument` stream is, in words for the reviewer."""
    for stream, kind in _OLE_KINDS:
        if stream in streams:
            return kind
    return "OLE2 复合文件"


def converter() -> str | None:
    """The LibreOffice executable on PATH, or None."""
    for name in CONVERTERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def read_word97(source: str, data: bytes, timeout: float, converted: bytes | str | None = None) -> SourceText:
    """A Word 97–2003 or WPS document as lines; `converted` is its DOCX (or why there is none) when
    it was already converted together with others (`convert_many`)."""
    result = converted if converted is not None else convert_many([data], timeout)[0]
    if isinstance(result, str):
        return SourceText(source, "doc", "", [], problems=(result,))
    return replace(read_docx(source, result), format="doc")


# Converting -------------------------------------------------------------------------------------


@dataclass
class _Workspace:
    pid: int
    root: Path

    @property
    def profile(self) -> Path:
        return self.root / "profile"


_lock = threading.Lock()
_workspace: _Workspace | None = None


def _private_workspace() -> _Workspace:
    """This process's folder: the LibreOffice profile (made by the first call, reused by the next,
    which saves ~0.3 s a call) and one folder per call. A forked child makes its own."""
    global _workspace
    if _workspace is None or _workspace.pid != os.getpid():
        root = Path(tempfile.mkdtemp(prefix="audits-word97-"))
        atexit.register(shutil.rmtree, root, True)
        _workspace = _Workspace(os.getpid(), root)
    return _workspace


def convert_many(documents: list[bytes], timeout: float) -> list[bytes | str]:
    """Each document's DOCX bytes, or the reason in Chinese it could not be converted. One soffice
    call converts them all; when that call runs over its time, the documents it had not finished
    are tried one by one, so that one document that hangs LibreOffice costs only itself."""
    if not documents:
        return []
    soffice = converter()
    if soffice is None:
        return [MISSING] * len(documents)
    with _lock:
        workspace = _private_workspace()
        job = Path(tempfile.mkdtemp(prefix="job-", dir=workspace.root))
        try:
            inputs = []
            for i, data in enumerate(documents):
                path = job / f"{i:05d}.doc"  # named .doc whatever it was called: Word's format either way
                path.write_bytes(data)
                inputs.append(path)
            limit = timeout + BATCH_SECONDS_PER_DOCUMENT * (len(inputs) - 1)
            failure = _soffice(soffice, workspace, job, inputs, limit)
            results: list[bytes | str] = [_output(job, path, failure) for path in inputs]
            if failure and len(inputs) > 1:
                for i, path in enumerate(inputs):
                    if isinstance(results[i], str):
                        results[i] = _output(job, path, _soffice(soffice, workspace, job, [path], timeout))
            return results
        finally:
            shutil.rmtree(job, ignore_errors=True)


def _output(job: Path, source: Path, failure: str) -> bytes | str:
    docx = job / "out" / f"{source.stem}.docx"
    if docx.is_file() and docx.stat().st_size:
        return docx.read_bytes()
    return failure or "LibreOffice 未能转换此文件（文件可能已加密、已损坏或不是 Word/WPS 文档）"


def _soffice(soffice: str, workspace: _Workspace, job: Path, inputs: list[Path], timeout: float) -> str:
    """Run one conversion; '' when soffice ended by itself, else why it was stopped."""
    tmp = job / "tmp"
    tmp.mkdir(exist_ok=True)
    command = [
        soffice, "--headless", "--invisible", "--nologo", "--norestore", "--nolockcheck",
        f"-env:UserInstallation={workspace.profile.as_uri()}",
        "--convert-to", "docx", "--outdir", str(job / "out"), *map(str, inputs),
    ]
    env = {**os.environ, "TMPDIR": str(tmp), "TMP": str(tmp), "TEMP": str(tmp)}
    # NOTE: a session of its own, so that a timeout kills soffice's whole process group (the
    # launcher script, oosplash and soffice.bin), not just the launcher.
    process = subprocess.Popen(
        command, cwd=job, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        # A killed LibreOffice may leave its profile locked or half written: start the next afresh.
        shutil.rmtree(workspace.profile, ignore_errors=True)
        return f"LibreOffice 转换超时（超过 {timeout:g} 秒），未解析"
    if process.returncode != 0:
        detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"退出码 {process.returncode}"]
        return f"LibreOffice 转换失败（{detail[0]}）"
    return ""


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()
