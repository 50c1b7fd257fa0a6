"""The digit reader on rows built to each case, the expected values worked out by hand.

Crawler text runs a table's cells together; which split is right is decided by the row's own
arithmetic, then by the whole table's (identities down the columns), and a row no split makes
consistent is read so that the fewest of the table's identities fail. A row whose last cell runs
into the next sentence, and a row whose label is printed with a character wrong, keep their cells.
"""

from __future__ import annotations

import pytest

from audits.ingest import read_bytes
from audits.parse.digits import Equation, RowShape, choose, read_row
from audits.parse.report import parse
from tests.conftest import LAYOUTS, need_shared, parsed
from tests.crawler import crawler_report

SEVEN = RowShape(n=7, blocks=(((0, 1, 2, 3, 4, 5), 6),))  # table 三: six applicant columns = 总计
FIFTEEN = RowShape(n=15, blocks=tuple(((b, b + 1, b + 2, b + 3), b + 4) for b in (0, 5, 10)))  # table 四


def _parse(text: str):
    return parse(read_bytes("built.txt", text.encode("utf-8")), LAYOUTS)


def _row(report, table: str, row: str) -> list[tuple[float | None, str]]:
    return [(c.value, c.flag) for c in report.cells if c.table == table and c.row == row]


def _values(report, table: str, row: str) -> list[float | None]:
    return [v for v, _ in _row(report, table, row)]


def _flags(report, table: str, row: str) -> set[str]:
    return {f for _, f in _row(report, table, row)}


# One row ---------------------------------------------------------------------------------------


def test_one_split_fits_the_row():
    # 21710000218: 217 + 1 = 218 is the only split with six applicant cells adding up (corpus 016).
    row = read_row(["21710000218"], SEVEN)
    assert row.values == [217, 1, 0, 0, 0, 0, 218] and row.flags == [""] * 7
    assert len(row.candidates) == 1 and row.consistent


def test_several_splits_fit_the_row_and_stay_candidates():
    # 270020130: 27+0+0+2+0+1 = 30 and 2+7+0+0+20+1 = 30 (corpus 013, 予以公开).
    row = read_row(["270020130"], SEVEN)
    assert {tuple(c) for c in row.candidates} == {
        ("27", "0", "0", "2", "0", "1", "30"),
        ("2", "7", "0", "0", "20", "1", "30"),
    }
    assert row.consistent


def test_table_four_run_that_fails_in_one_block_is_not_read_failing_in_three():
    # 17 digits for 15 cells: two digits must pair up. Printed 行政复议 1/0/0/0/0 (总计 0: wrong),
    # 未经复议直接起诉 0/0/0/0/0, 复议后起诉 12/3/0/0/15. Worked out by hand, the pairs are 10, 12,
    # 23, 30, 15 or triples 100, 123, 230, 300; only "12" with "15" leaves one block failing. The most
    # balanced reading with the long numbers first (10 … 12 …) fails all three blocks:
    # 10/0/0/0/0 | 0/0/0/0/12 | 3/0/0/1/5.
    row = read_row(["10000000001230015"], FIFTEEN)
    assert row.values == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 3, 0, 0, 15]
    assert row.flags == ["inconsistent"] * 5 + [""] * 10
    assert not row.consistent


# The whole table -------------------------------------------------------------------------------


def test_choose_prefers_the_readings_that_fail_fewest_identities():
    # Two rows; row 1 has two readings. The column identity row0[c] = row1[c] for every column
    # holds only with row 1's second reading.
    rows = [(("1", "2"),), (("12", "0"), ("1", "2"))]
    equations = [Equation(((0, c),), ((1, c),)) for c in range(2)]
    choice = choose(rows, equations)
    assert choice.chosen == [0, 1] and choice.tied[1] == frozenset({1}) and not choice.failing


def test_choose_keeps_what_the_table_cannot_tell_apart():
    rows = [(("1", "2"), ("12", "0")), (("1", "2"), ("12", "0"))]
    equations = [Equation(((0, c),), ((1, c),)) for c in range(2)]
    choice = choose(rows, equations)
    assert choice.tied == [frozenset({0, 1}), frozenset({0, 1})] and not choice.failing


def test_inconsistent_total_read_so_that_only_its_row_fails():
    # 一、本年新收 25/1/0/0/0/0/26 and 予以公开 the same; （七）总计 printed "2510000 25": 25 where 26 is
    # meant. No split of it adds up. By hand: 2510000 cuts into six as 25|1|0|0|0|0, 2|51|0|0|0|0 or
    # 2|5|10|0|0|0 (then 总计 25), or into five with "25" as 2|5. 25/1/0/0/0/0/25 fails its row sum and
    # the 总计 column twice (一+二 = 七+四 and the leaves = 七): 3 identities. The balanced reading
    # taken row by row, 25/10/0/0/0/2/5, fails the row and the 商业企业, 其他 and 总计 columns: 7.
    text = crawler_report({"new_received": "251000026", "granted": "251000026", "total_processed": "2510000 25"})
    report = _parse(text)
    assert _values(report, "applications", "new_received") == [25, 1, 0, 0, 0, 0, 26]
    assert _values(report, "applications", "total_processed") == [25, 1, 0, 0, 0, 0, 25]
    assert _flags(report, "applications", "total_processed") == {"inconsistent"}
    note = next(n.detail for n in report.table_notes if n.row == "total_processed")
    assert "不符合勾稽关系" in note and "按全表勾稽关系取不符最少的拆分 25/1/0/0/0/0/25" in note


def test_row_with_two_fitting_splits_settled_by_the_columns():
    # 予以公开 "270020130": 27/0/0/2/0/1/30 or 2/7/0/0/20/1/30. 一、本年新收 and （七）总计 are printed
    # cell by cell as 27 0 0 2 0 1 30: only the first reading lets every column add up.
    spaced = "27 0 0 2 0 1 30"
    report = _parse(crawler_report({"new_received": spaced, "granted": "270020130", "total_processed": spaced}))
    assert _values(report, "applications", "granted") == [27, 0, 0, 2, 0, 1, 30]
    assert _flags(report, "applications", "granted") == {""}


def test_rows_the_table_cannot_settle_stay_ambiguous():
    # The same run in 一、予以公开 and （七）: reading all three one way or all three the other way
    # both let every column add up, so 自然人, 商业企业, 社会公益组织 stay open.
    run = "270020130"
    report = _parse(crawler_report({"new_received": run, "granted": run, "total_processed": run}))
    for row in ("new_received", "granted", "total_processed"):
        flags = [f for _, f in _row(report, "applications", row)]
        assert flags == ["ambiguous", "ambiguous", "", "ambiguous", "ambiguous", "", ""], row


def test_table_four_in_a_report():
    report = _parse(crawler_report(review="10000000001230015"))
    assert _values(report, "review_litigation", "review") == [1, 0, 0, 0, 0]
    assert _values(report, "review_litigation", "lit_after_review") == [12, 3, 0, 0, 15]
    assert _flags(report, "review_litigation", "lit_direct") == {""}


# Run-on into prose and label variants ---------------------------------------------------------


def test_last_cell_run_into_the_next_sentence():
    # "…0" + "2024年，…" prints "02024年": the year is the sentence's, the fifteen zeros table 四's;
    # the same after table 三's last row.
    prose = "2024年，本局未发生因政府信息公开引起的行政复议和行政诉讼。"
    report = _parse(crawler_report(after_review=prose, after_table="2024年，结转申请均已办结。"))
    assert "review_litigation" in report.tables_found
    assert _values(report, "review_litigation", "lit_after_review") == [0, 0, 0, 0, 0]
    assert _values(report, "applications", "carried_forward") == [0] * 7


def test_last_cell_with_digits_run_into_the_year():
    # 复议后起诉 1/0/0/0/1 then "2024年…": "…100012024年".
    report = _parse(crawler_report(review="000000000010001", after_review="2024年，本局无其他需要说明的情况。"))
    assert _values(report, "review_litigation", "lit_after_review") == [1, 0, 0, 0, 1]
    assert _flags(report, "review_litigation", "lit_after_review") == {""}


@pytest.mark.parametrize(
    "row,printed",
    [
        ("deny_enforcement_file", "7.属于行政执法案件"),  # 件 for 卷
        ("deny_internal_affairs", "5.属于三类内部事信息"),  # 务 lost
        ("deny_third_party", "4.保护第三方的合法权益"),  # 的 added
    ],
)
def test_label_variant_keeps_its_row(row, printed):
    # One application, in the row whose label is misprinted: the row keeps its cells, so the
    # result rows still add up to （七）总计.
    one = "1000001"
    report = _parse(crawler_report({"new_received": one, row: one, "total_processed": one}, labels={row: printed}))
    assert _values(report, "applications", row) == [1, 0, 0, 0, 0, 0, 1]
    assert any(n.kind == "label_variant" and n.row == row for n in report.table_notes)
    leaves = [c.value for c in report.cells if c.table == "applications" and c.col == "total" and c.row not in ("new_received", "carried_over", "total_processed", "carried_forward")]
    assert sum(leaves) == 1


def test_text_unlike_any_label_is_no_row():
    # Text printed where a label should be, but like none of the next rows' labels, is no row.
    report = _parse(crawler_report(labels={"deny_admin_query": "8.另有说明见附件"}))
    assert not _row(report, "applications", "deny_admin_query")
    assert not any(n.kind == "label_variant" for n in report.table_notes)


# Real reports ----------------------------------------------------------------------------------


def test_real_report_settled_by_the_table_where_it_used_to_be_a_guess():
    # corpus 013: 予以公开 "270020130" and 本机关不掌握 "220000325" each fit two splits; the columns
    # (社会公益组织 2, 商业企业 0 in （七）总计) settle both. They used to be flagged ambiguous.
    need_shared()
    report = parsed("corpus/013_pingtan-quanqu_2021.txt")
    assert _row(report, "applications", "granted") == [(v, "") for v in (27, 0, 0, 2, 0, 1, 30)]
    assert _row(report, "applications", "unable_not_held") == [(v, "") for v in (22, 0, 0, 0, 0, 3, 25)]


def test_real_report_that_fits_row_by_row_is_unchanged():
    # corpus 016: every table-三 run has one split; the table changes nothing and notes nothing.
    need_shared()
    report = parsed("corpus/016_pingtan-quanqu_2024.txt")
    assert not any("全表" in n.detail for n in report.table_notes)
    assert not any(c.flag for c in report.cells if c.table != "active")


def test_real_report_whose_rows_fail_keeps_failing():
    # corpus 012: every row adds up but the result rows do not add up to （七）总计 in any reading:
    # the choice never hides that.
    need_shared()
    report = parsed("corpus/012_pingtan-quanqu_2020.txt")
    leaves = sum(c.value for c in report.cells if c.table == "applications" and c.col == "total" and c.row not in ("new_received", "carried_over", "total_processed", "carried_forward"))
    total = next(c.value for c in report.cells if (c.table, c.row, c.col) == ("applications", "total_processed", "total"))
    assert (leaves, total) == (27, 21)
