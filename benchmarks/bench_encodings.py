"""How often reading bytes (`audits.ingest.read_bytes`) gives back the exact lines, over the real
reports re-encoded.

Every text report and web page under ../shared (seeds, corpus) is written in each encoding a Chinese
government site or crawler produces, with and without a declaration, whole and cut to its first
1,000, 200 and 40 characters (a title and chrome only: harder to recognise). A reading is right when
its lines are exactly those of the same text read from UTF-8; a wrong reading is silent when it comes
with no problem sentence. Then the hardest case alone: each distinct line of the text reports (a
table label, a heading) as a Big5 file of its own, without a declaration.

    .venv/bin/python -m benchmarks.bench_encodings
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from audits.ingest import read_bytes

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _traditional(text: str) -> str:
    import opencc

    return opencc.OpenCC("s2t").convert(text)


def cases(text: str, page: bool):
    """(name, bytes, declared charset or None, expected text) for one document."""
    yield "utf-8", text.encode("utf-8"), None, text
    yield "gb18030", text.encode("gb18030"), None, text
    gbk = text.encode("gbk", errors="replace")
    yield "gbk", gbk, None, gbk.decode("gbk")
    # Big5 cannot hold simplified characters: the page is first written in traditional script, as
    # Hong Kong, Macao and Taiwan mirrors of mainland pages are.
    big5 = _traditional(text).encode("big5", errors="replace")
    yield "big5", big5, None, big5.decode("big5")
    yield "utf-16-le, no BOM", text.encode("utf-16-le"), None, text
    yield "utf-16-be, no BOM", text.encode("utf-16-be"), None, text
    yield "utf-16, BOM", text.encode("utf-16"), None, text
    # A server's Content-Type charset, where sniffing alone could guess wrong.
    yield "gbk, HTTP charset", gbk, "gbk", gbk.decode("gbk")
    yield "big5, HTTP charset", big5, "big5", big5.decode("big5")
    # Wrong declarations: a server's default charset, a page copied between sites.
    yield "gbk, HTTP says iso-8859-1", gbk, "iso-8859-1", gbk.decode("gbk")
    yield "utf-8, HTTP says gbk", text.encode("utf-8"), "gbk", text
    yield "big5, HTTP says gb2312", big5, "gb2312", big5.decode("big5")
    # One paragraph in another encoding (a footer pasted from another page): cannot come out right,
    # must not come out silently.
    middle = len(text) // 2
    mixed = text[:middle].encode("utf-8") + text[middle : middle + 200].encode("gb18030") + text[middle + 200 :].encode("utf-8")
    yield "utf-8 with 200 chars of GB18030", mixed, None, text
    if page:
        # XHTML: an XML declaration before the page.
        yield "utf-8, XML declaration", ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode("utf-8"), None, text


def documents(shared: Path) -> list[tuple[str, str]]:
    paths = sorted(shared.glob("seeds/*.txt")) + sorted(shared.glob("corpus/*.txt")) + sorted(shared.glob("corpus/*.html"))
    return [(p.name, p.read_text(encoding="utf-8")) for p in paths]


def measure(shared: Path) -> dict[str, list[int]]:
    """Per case: [documents, right, wrong and silent]."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for path, full in documents(shared):
        for cut, text in (("whole", full), ("first 1,000 chars", full[:1000]), ("first 200 chars", full[:200]), ("first 40 chars", full[:40])):
            for name, data, declared, want in cases(text, path.endswith(".html")):
                got = read_bytes(path, data, declared=declared)
                right = got.lines == read_bytes(path, want.encode("utf-8")).lines
                row = tally[f"{name} ({cut})"]
                row[0] += 1
                row[1] += right
                row[2] += not right and not got.problems
    return dict(tally)


def measure_lines(shared: Path) -> list[int]:
    """[lines, right, wrong and silent] for each distinct line (4 characters or more) alone in Big5."""
    paths = sorted(shared.glob("seeds/*.txt")) + sorted(shared.glob("corpus/*.txt"))
    lines = {line.strip() for path in paths for line in path.read_text(encoding="utf-8").splitlines()}
    tally = [0, 0, 0]
    for line in sorted(line for line in lines if len(line) >= 4):
        data = _traditional(line).encode("big5", errors="replace")
        got = read_bytes("line.txt", data)
        right = got.lines == data.decode("big5").splitlines()
        tally[0] += 1
        tally[1] += right
        tally[2] += not right and not got.problems
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="decoding accuracy over the real reports")
    ap.add_argument("--shared", type=Path, default=SHARED)
    args = ap.parse_args(argv)
    tally = measure(args.shared)
    print(f"{'case':<52} {'docs':>5} {'right':>6} {'silent wrong':>13}")
    for name, (n, right, silent) in tally.items():
        print(f"{name:<52} {n:>5} {right:>6} {silent:>13}")
    n = sum(r[0] for r in tally.values())
    print(f"{'all':<52} {n:>5} {sum(r[1] for r in tally.values()):>6} {sum(r[2] for r in tally.values()):>13}")
    n, right, silent = measure_lines(args.shared)
    print(f"{'big5, one line alone (labels, headings)':<52} {n:>5} {right:>6} {silent:>13}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
