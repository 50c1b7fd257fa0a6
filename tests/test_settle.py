"""Table-二 readings settled over the batch: the agency's other reports (and earlier runs' cells),
the expectations within a row, the narrative's figures. What stays open stays `ambiguous`.

Values here were worked out by hand from the documents (tests/expected/corpus_*.yaml notes).
"""

from __future__ import annotations

import polars as pl
import pytest

from audits.audit import parse_batch
from audits.settle import settle_batch
from tests.conftest import LAYOUTS, ROOT, SHARED, need_shared, parsed

CORPUS = "corpus"


def _settled(*files: str, history: pl.DataFrame | None = None):
    need_shared()
    frames, _ = parse_batch([SHARED / CORPUS / f for f in files], ROOT / "rules" / "templates", workers=1)
    return frames, settle_batch(frames, LAYOUTS, history)


def _row(frames, file: str, row: str, table: str = "active") -> list[tuple[float | None, str]]:
    cells = frames.cells.filter(
        pl.col("source").cast(pl.Utf8).str.ends_with(file) & (pl.col("table") == table) & (pl.col("row") == row)
    )
    return [(v, str(f)) for v, f in cells.select("value", "flag").iter_rows()]


def _note(frames, file: str, row: str) -> str:
    notes = frames.notes.filter(pl.col("source").cast(pl.Utf8).str.ends_with(file) & (pl.col("row") == row) & (pl.col("kind") == "settled"))
    return "；".join(notes["detail"].to_list())


Q2022, Q2024, Q2025 = "014_pingtan-quanqu_2022.txt", "016_pingtan-quanqu_2024.txt", "017_pingtan-quanqu_2025.txt"


def test_normative_documents_settled_by_the_years_around():
    # 2024 "6233440": the narrative's 62 leaves 62/3/3440, 62/33/440, 62/334/40, 62/3344/0; 现行有效
    # below 制发 rules out the last two, and 440 sits between 2022's 698 and 2025's 546 where 3440
    # does not. 2025 "5845546" is then 58/45/546. Read report by report they were 623/34/40 and 584/55/46.
    before, after = _settled(Q2022, Q2024, Q2025)
    assert _row(before, Q2024, "normative_documents")[1:] == [(33, "ambiguous"), (440, "ambiguous")]
    assert _row(after, Q2024, "normative_documents") == [(62, ""), (33, ""), (440, "")]
    assert _row(after, Q2025, "normative_documents") == [(58, ""), (45, ""), (546, "")]
    assert "2022、2025 年度报告的数量级最接近" in _note(after, Q2024, "normative_documents")
    # 2022 was settled by its own narrative (现行有效698件, 制发88件): nothing to change.
    assert _row(after, Q2022, "normative_documents") == _row(before, Q2022, "normative_documents") == [(88, ""), (55, ""), (698, "")]


def test_without_the_year_that_decides_the_reading_stays_open():
    # Without 2022, 2024's 440 and 3440 are both near enough to 2025: still ambiguous.
    _, after = _settled(Q2024, Q2025)
    assert ("ambiguous" in {f for _, f in _row(after, Q2024, "normative_documents")})


def test_chain_with_next_year_settles_valid_but_not_made_and_repealed():
    # 2021 "693665": 2022 prints 现行有效 698 with 制发 88, 废止 55, so 2021's is 665 (69/3/665 or
    # 6/93/665); which of 69/3 and 6/93 stays open.
    _, after = _settled("013_pingtan-quanqu_2021.txt", Q2022)
    row = _row(after, "013_pingtan-quanqu_2021.txt", "normative_documents")
    assert row[2] == (665, "") and {row[0][1], row[1][1]} == {"ambiguous"}
    assert "现行有效件数 = 上年现行有效件数 + 本年制发件数 − 本年废止件数" in _note(after, "013_pingtan-quanqu_2021.txt", "normative_documents")


def test_history_settles_like_the_batch():
    # A scheduled job holds the 2021 report against the 2022 report's cells kept from earlier runs.
    history = pl.DataFrame(
        {
            "agency_id": ["平潭综合实验区"] * 3, "report_year": [2022] * 3, "table": ["active"] * 3,
            "row": ["normative_documents"] * 3, "col": ["made", "repealed", "valid"], "value": [88.0, 55.0, 698.0], "flag": [""] * 3,
        }
    )
    _, after = _settled("013_pingtan-quanqu_2021.txt", history=history)
    assert _row(after, "013_pingtan-quanqu_2021.txt", "normative_documents")[2] == (665, "")
    # A guessed cell kept from earlier runs is no evidence.
    _, alone = _settled("013_pingtan-quanqu_2021.txt", history=history.with_columns(pl.lit("ambiguous").alias("flag")))
    assert _row(alone, "013_pingtan-quanqu_2021.txt", "normative_documents")[2][1] == "ambiguous"


def test_previous_items_chain_in_the_2019_format():
    # 2019 行政许可 "3960181" and 2020 "396442278": 2020's 上一年项目数量 is 2019's plus its change;
    # only 396/0/181 gives a number 2020's run starts with (396). 2020's change and decisions stay open.
    _, after = _settled("011_pingtan-quanqu_2019.txt", "012_pingtan-quanqu_2020.txt")
    assert _row(after, "011_pingtan-quanqu_2019.txt", "licensing") == [(396, ""), (0, ""), (181, "")]
    assert _row(after, "012_pingtan-quanqu_2020.txt", "licensing")[0] == (396, "")
    assert {f for _, f in _row(after, "012_pingtan-quanqu_2020.txt", "licensing")[1:]} == {"ambiguous"}


def test_expectation_within_the_row():
    # 2021 "2023" (行政审批局): 2/0/23 or 20/2/3; 现行有效 3 after making 20 this year is ruled out.
    before, after = _settled("022_pingtan-xzsp_2021.txt")
    assert {f for _, f in _row(before, "022_pingtan-xzsp_2021.txt", "normative_documents")} == {"ambiguous"}
    assert _row(after, "022_pingtan-xzsp_2021.txt", "normative_documents") == [(2, ""), (0, ""), (23, "")]


def test_what_nothing_settles_stays_ambiguous():
    # 027 "2433": 2/4/33 or 2/43/3 — no other report of the agency in the 2021 format, the narrative
    # agrees with both (2 made), both keep 现行有效 ≥ 制发.
    _, after = _settled("027_pingtan-zrzy_2024.txt")
    assert _row(after, "027_pingtan-zrzy_2024.txt", "normative_documents") == [(2, ""), (4, "ambiguous"), (33, "ambiguous")]
    options = after.cells.filter(pl.col("source").cast(pl.Utf8).str.ends_with("027_pingtan-zrzy_2024.txt") & (pl.col("row") == "normative_documents") & (pl.col("col") == "valid"))["options"]
    assert str(options[0]) == "33|3"


def test_narrative_amount_and_count_settle_procurement():
    # 005 "1973601627.4元": the narrative's '发布采购信息197批次涉及金额3601627.4元' — it used to be read
    # as 1973601 projects and 627.4 元.
    need_shared()
    report = parsed("corpus/005_pingtan-gwhbgs_2020.txt")
    cells = {c.col: (c.value, c.flag) for c in report.cells if c.row == "procurement"}
    assert cells == {"items": (197, ""), "amount": (3601627.4, "")}


def test_page_and_crawler_text_of_one_report_agree():
    # 016 as its page (cells in a table) and as crawler text: the page's 62/33/440 settles the text.
    _, after = _settled("016_pingtan-quanqu_2024.html", Q2024)
    assert _row(after, Q2024, "normative_documents") == [(62, ""), (33, ""), (440, "")]
    assert "另一份文本" in _note(after, Q2024, "normative_documents")


@pytest.mark.parametrize("file", ["001_pingtan-czj_2024.txt", "004_pingtan-gaj_2024.txt", "hongze_2024.pdf"])
def test_reports_without_open_readings_are_untouched(file):
    before, after = _settled(file)
    assert before.cells.equals(after.cells) and before.notes.equals(after.notes)
