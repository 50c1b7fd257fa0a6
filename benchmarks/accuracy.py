"""Cell accuracy against the hand transcriptions (tests/expected/*.yaml), per file.

    .venv/bin/python -m benchmarks.accuracy [--shared ../shared] [--crawler]

Every file the transcriptions name is parsed as one batch, as `audits run` reads it (the settle
step over the batch included, when the code has one). Per file: the settled cells transcribed, how
many of them were read exactly, the unsettled ones (transcribed as several possible values) and how
many of those the reader flags `ambiguous` with one of those values (or `blank`, for the cell a
short run leaves blank), and what went wrong.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ROOT / "tests" / "expected"


def expected(doc: dict) -> tuple[dict, dict]:
    """(settled cells → value, unsettled cells → possible values) of one transcription."""
    settled = {
        (t, r, c): (None if v is None else float(v))
        for t, rows in doc["cells"].items()
        for r, cols in rows.items()
        for c, v in cols.items()
    }
    unsettled = {
        (t, r, c): {None if v is None else float(v) for v in values}
        for t, rows in (doc.get("unsettled") or {}).items()
        for r, cols in rows.items()
        for c, values in cols.items()
    }
    return settled, unsettled


def batch_cells(shared: Path, sources: list[str]) -> pl.DataFrame:
    from audits.audit import parse_batch

    frames, _ = parse_batch([shared / s for s in sources], ROOT / "rules" / "templates", workers=1)
    try:  # the settle step over the batch (absent in older versions of the code)
        from audits.layouts import load_layouts
        from audits.settle import settle_batch

        frames = settle_batch(frames, load_layouts(ROOT / "rules" / "templates"))
    except ImportError:
        pass
    return frames.cells.with_columns(pl.col("source").cast(pl.Utf8))


def measure(shared: Path, crawler_only: bool) -> list[dict]:
    docs = {p.stem: YAML(typ="safe").load(p.read_text(encoding="utf-8")) for p in sorted(EXPECTED.glob("*.yaml"))}
    if crawler_only:
        docs = {k: d for k, d in docs.items() if d["source"].endswith(".txt") and d["source"].startswith("corpus/")}
    cells = batch_cells(shared, [d["source"] for d in docs.values()])
    rows = []
    for name, doc in docs.items():
        mine = cells.filter(pl.col("source") == str(shared / doc["source"]))
        got = {(t, r, c): (v, f) for t, r, c, v, f in mine.select("table", "row", "col", "value", "flag").iter_rows()}
        settled, unsettled = expected(doc)
        wrong = [k for k, v in settled.items() if k not in got or got[k][0] != v]
        flagged = [k for k, v in settled.items() if k in got and got[k][0] == v and got[k][1] == "ambiguous"]
        unsettled_ok = [
            k for k, vs in unsettled.items()
            if k in got and got[k][0] in vs and (got[k][1] == "ambiguous" or got[k][0] is None and got[k][1] == "blank")
        ]
        extra = sorted(set(got) - set(settled) - set(unsettled)) if doc.get("complete") else []
        rows.append(
            {
                "file": Path(doc["source"]).name,
                "settled": len(settled),
                "exact": len(settled) - len(wrong),
                "exact_but_flagged_ambiguous": len(flagged),
                "unsettled": len(unsettled),
                "unsettled_flagged": len(unsettled_ok),
                "extra": len(extra),
                "wrong": ", ".join(f"{'.'.join(k)}={got.get(k, ('absent',))[0]}≠{settled[k]}" for k in wrong[:4]) + (" …" if len(wrong) > 4 else ""),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--crawler", action="store_true", help="only the crawler texts of the corpus")
    args = parser.parse_args()
    rows = measure(args.shared, args.crawler)
    with pl.Config(tbl_rows=100, tbl_cols=20, fmt_str_lengths=120, tbl_width_chars=250):
        table = pl.DataFrame(rows)
        print(table)
        total = table.select(pl.col("settled", "exact", "unsettled", "unsettled_flagged").sum()).row(0, named=True)
        print(
            f"settled cells exact: {total['exact']}/{total['settled']} ({total['exact'] / total['settled']:.4f}); "
            f"unsettled cells flagged ambiguous: {total['unsettled_flagged']}/{total['unsettled']}"
        )


if __name__ == "__main__":
    main()
