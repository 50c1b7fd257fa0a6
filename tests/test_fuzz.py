"""2,000 mutations of the real reports, audited in batches: no crash, no hang, every file accounted for.

Each mutant is one real file of ../shared changed by a seeded operator — bytes flipped, cut, doubled,
spliced with hostile text, re-encoded, given another format's magic bytes or name — and keeps a
document suffix, so every one must come back as a row of documents.csv (with a PARSE finding when
it could not be read). The good report audited in each batch keeps its cells and findings.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audits.cli import app
from tests.conftest import ROOT, SHARED, need_shared, read_csv

MUTANTS = 2000
BATCHES = 4
GOOD = "000_6138bd5dad981167.txt"
HOSTILE = [
    b"<script>alert(1)</script>", b"\x00" * 64, b"\xef\xbb\xbf", b"\xff\xfe", "９" .encode() * 300, b"1" * 5000,
    "| 一、本年新收政府信息公开申请数量 | 1 | 2 |".encode(), "=cmd|' /C calc'!A0".encode(), "\u202e".encode(),
    b"%PDF-1.7\n", b"PK\x03\x04", "二〇二三年一月一日至二〇二三年十二月三十一日".encode(), b"&#x" * 1000, b"\r" * 100,
]


def _sources() -> list[Path]:
    files = sorted((SHARED / "seeds").iterdir()) + sorted(p for p in (SHARED / "corpus").iterdir() if p.suffix in (".txt", ".html", ".pdf"))
    # a PDF costs over ten times a text file to read: one mutant in ten is a PDF
    text = [p for p in files if p.suffix != ".pdf"]
    pdf = [p for p in files if p.suffix == ".pdf"]
    return text * 9 + pdf * max(1, len(text) * 9 // (9 * len(pdf)))


def _mutate(data: bytes, rng: random.Random) -> bytes:
    n = len(data)
    op = rng.randrange(10)
    at = rng.randrange(max(n, 1))
    if op == 0:  # flip bytes
        out = bytearray(data)
        for _ in range(rng.randint(1, 50)):
            out[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(out)
    if op == 1:  # cut
        return data[:at]
    if op == 2:  # drop a piece
        return data[:at] + data[at + rng.randint(1, 5000):]
    if op == 3:  # double a piece
        return data[:at] + data[at : at + rng.randint(1, 20000)] * rng.randint(2, 5) + data[at:]
    if op == 4:  # splice hostile text
        return data[:at] + rng.choice(HOSTILE) * rng.randint(1, 5) + data[at:]
    if op == 5:  # random bytes
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000))) + data[at:]
    if op == 6:  # re-encode the text
        try:
            return data.decode("utf-8").encode(rng.choice(["gb18030", "big5", "utf-16", "utf-16-le", "latin-1"]), errors="replace")
        except UnicodeDecodeError:
            return data[::-1]
    if op == 7:  # another format's magic bytes in front
        return rng.choice([b"%PDF-1.4\n", b"PK\x03\x04\x14\x00", b"\x89PNG\r\n\x1a\n", b"<?xml version=\"1.0\" encoding=\"GBK\"?>"]) + data
    if op == 8:  # lines joined or every line doubled
        return data.replace(b"\n", b"") if rng.random() < 0.5 else data.replace(b"\n", b"\n\n\n")
    return b""  # empty


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    need_shared()
    rng = random.Random(20261130)
    sources = _sources()
    folders = [tmp_path_factory.mktemp(f"fuzz{i}") for i in range(BATCHES)]
    names: list[list[str]] = [[] for _ in range(BATCHES)]
    for i in range(MUTANTS):
        source = rng.choice(sources)
        name = f"{i:04d}_{source.stem[:20]}{rng.choice([source.suffix] * 4 + ['.txt', '.html', '.pdf', '.docx'])}"
        (folders[i % BATCHES] / name).write_bytes(_mutate(source.read_bytes(), rng))
        names[i % BATCHES].append(name)
    (folders[0] / GOOD).write_bytes((SHARED / "seeds" / GOOD).read_bytes())
    names[0].append(GOOD)
    config = folders[0].parent / "fuzz.toml"
    config.write_text("[limits]\nseconds_per_document = 60\n", encoding="utf-8")
    results = []
    for folder, expected in zip(folders, names):
        out = folder.with_name(folder.name + "-out")
        result = CliRunner().invoke(app, ["run", str(folder), "--rules", str(ROOT / "rules"), "--out", str(out), "--config", str(config)])
        results.append((result, out, expected))
    return results


def test_no_batch_crashes(batches):
    for result, _, _ in batches:
        assert result.exit_code == 0, (result.output[-2000:], result.exception)


def test_every_mutant_is_a_document(batches):
    total = 0
    for _, out, expected in batches:
        documents = read_csv(out / "documents.csv")
        assert sorted(Path(d["source"]).name for d in documents) == sorted(expected)
        failed = {d["source"] for d in documents if d["status"] == "failed"}
        explained = {f["source"] for f in read_csv(out / "findings.csv") if f["rule_id"] == "PARSE" and f["message"]}
        assert failed <= explained, "an unreadable document without a word of why"
        total += len(documents)
    assert total >= MUTANTS


def test_the_good_report_among_the_mutants_is_audited_as_alone(batches, tmp_path):
    _, out, _ = batches[0]
    alone = tmp_path / "alone"
    assert CliRunner().invoke(app, ["run", str(SHARED / "seeds" / GOOD), "--rules", str(ROOT / "rules"), "--out", str(alone), "--workers", "1"]).exit_code == 0

    def rows(folder: Path, stem: str) -> list[dict]:
        # cross-year findings depend on which other years the batch holds (a mutant may carry another)
        return [
            {k: v for k, v in r.items() if k not in ("source", "html", "fingerprint")}
            for r in read_csv(folder / f"{stem}.csv")
            if Path(r["source"]).name == GOOD and r.get("category") != "cross_year"
        ]

    for stem in ("cells", "findings"):
        assert rows(out, stem) == rows(alone, stem), stem
