"""Copied text and prose checks on the real reports (../shared/corpus), from reading them.

- 001 (平潭综合实验区财政金融局, 2024) writes "2023年，在主动公开的61条政府信息中……" and lists
  5 + 1 + 7 + 12 + 51 = 76 items of those 61.
- Agencies with several years in the corpus: the share of each section's text repeated from the
  agency's earlier report (runs of 8+ characters, numbers and punctuation left out), as measured
  and checked by reading both years (the preamble is the report's own text before 一, without the
  crawler's 标题/发布时间/正文 header): the preambles and section 六 repeat (boilerplate), sections
  一 and 五 were rewritten every year, so COPY-PREVIOUS (一 and 五, over 80 %) finds nothing.
"""

from __future__ import annotations

import polars as pl
import pytest

from audits.kinds.base import Batch
from audits.kinds.copying import RepeatedSections, coverage, name_forms, section_texts
from audits.kinds.narrative import name_relation
from tests.conftest import LAYOUTS, SHARED, need_shared


@pytest.fixture(scope="module")
def corpus_findings(audited) -> pl.DataFrame:
    found = pl.read_parquet(audited.out / "findings.parquet")
    return found.filter(pl.col("source").str.contains("/corpus/")).with_columns(pl.col("source").str.split("/").list.last().alias("file"))


def test_pingtan_czj_2024_year_and_sum(corpus_findings):
    mine = corpus_findings.filter(pl.col("file") == "001_pingtan-czj_2024.txt")
    year = mine.filter(pl.col("rule_id") == "REPORT-YEAR").row(0, named=True)
    assert year["severity"] == "error"
    assert year["message"] == "2024 年度报告中写“2023年”叙述当年工作"
    assert year["quote"].startswith("2023年,在主动公开的61条政府信息中")
    total = mine.filter(pl.col("rule_id") == "PROSE-SUM").row(0, named=True)
    assert total["severity"] == "warning"
    assert total["message"] == "正文称共 61，其中各项之和 5 + 1 + 7 + 12 + 51 = 76，超过总数"


@pytest.mark.parametrize(
    "file,message",
    [
        # 2,599 条 of which eleven kinds, the last 其他, add up to 2,533 (read in the report).
        ("011_pingtan-quanqu_2019.txt", "正文称共 2599，其中各项之和 25 + 68 + 28 + 69 + 90 + 175 + 67 + 983 + 48 + 124 + 856 = 2533，不等于总数"),
        # 2,602 条 and its eleven kinds, the last 其他, add up to 2,603.
        ("012_pingtan-quanqu_2020.txt", "正文称共 2602，其中各项之和 82 + 80 + 21 + 40 + 390 + 69 + 143 + 208 + 246 + 271 + 1053 = 2603，超过总数"),
        # 471 条 published, of which seven website columns hold 498.
        ("018_pingtan-scj_2022.txt", "正文称共 471，其中各项之和 109 + 45 + 188 + 85 + 50 + 15 + 6 = 498，超过总数"),
    ],
)
def test_other_sums_that_do_not_add_up(corpus_findings, file, message):
    got = corpus_findings.filter((pl.col("file") == file) & (pl.col("rule_id") == "PROSE-SUM"))
    assert got["message"].to_list() == [message]


def test_sums_that_add_up_are_not_findings(corpus_findings):
    # 005: 31 = 3+1+1+7+19; 007: 316 = 121+128+67; 010: 5 = 2+3 (and 89 项 whose "实现…的有" are
    # not parts); 030: 行政复议 351 = 72+64+178+37 and 诉讼 46 = 25+5+9+7 in one sentence.
    for file in ("005_", "007_", "010_", "030_"):
        assert corpus_findings.filter(pl.col("file").str.starts_with(file) & (pl.col("rule_id") == "PROSE-SUM")).is_empty(), file


def test_no_copy_or_name_findings_in_the_corpus(corpus_findings):
    # Read: no corpus report names another agency as its subject or contact, and no section 一 or
    # 五 repeats the agency's earlier report.
    rules = {"AGENCY-NAME", "AGENCY-CONTACT", "COPY-PREVIOUS", "COPY-AGENCY"}
    assert corpus_findings.filter(pl.col("rule_id").is_in(list(rules))).is_empty()


# Similarity figures measured per agency (share of this year's section text in runs found in the
# earlier report), to a thousandth.
SHARES = {
    # 平潭综合实验区 (全区汇总), 2019–2025 (no 2023 report: 2024 is held to 2022)
    ("012_pingtan-quanqu_2020.txt", "011_pingtan-quanqu_2019.txt"): {"preamble": 0.832, "overview": 0.138, "problems": 0.170, "other": 1.0},
    ("013_pingtan-quanqu_2021.txt", "012_pingtan-quanqu_2020.txt"): {"preamble": 0.809, "overview": 0.109, "problems": 0.076, "other": 0.400},
    ("014_pingtan-quanqu_2022.txt", "013_pingtan-quanqu_2021.txt"): {"preamble": 0.379, "overview": 0.065, "problems": 0.121, "other": 1.0},
    ("016_pingtan-quanqu_2024.txt", "014_pingtan-quanqu_2022.txt"): {"preamble": 0.483, "overview": 0.143, "problems": 0.161, "other": 1.0},
    ("017_pingtan-quanqu_2025.txt", "016_pingtan-quanqu_2024.txt"): {"preamble": 0.968, "overview": 0.216, "problems": 0.117, "other": 1.0},
    # 公安局 2019, 2024 (its 2018 report, 107, is in the 2008 format: read for its title, dates and
    # text only, it has no sections to compare, and 2019 is paired with no earlier report)
    ("004_pingtan-gaj_2024.txt", "002_pingtan-gaj_2019.txt"): {"preamble": 0.405, "overview": 0.126, "problems": 0.045, "other": 0.476},
    # 行政审批局 2021, 2024
    ("023_pingtan-xzsp_2024.txt", "022_pingtan-xzsp_2021.txt"): {"preamble": 0.896, "overview": 0.147, "problems": 0.238, "other": 1.0},
    # 自然资源与生态环境局 2019, 2024
    ("027_pingtan-zrzy_2024.txt", "025_pingtan-zrzy_2019.txt"): {"preamble": 0.607, "overview": 0.041, "problems": 0.222},
}


@pytest.fixture(scope="module")
def texts() -> dict:
    need_shared()
    from pathlib import Path

    from audits.audit import parse_batch

    files = sorted({f for pair in SHARES for f in pair})
    frames, _ = parse_batch([SHARED / "corpus" / f for f in files], Path(__file__).resolve().parents[1] / "rules" / "templates", workers=1)
    batch = Batch(frames, LAYOUTS)
    return {(s.split("/")[-1], sec): t for s, sec, t in section_texts(batch).with_columns(pl.col("source").cast(pl.Utf8)).iter_rows()}, batch


@pytest.mark.parametrize("pair", list(SHARES), ids=lambda p: f"{p[0][:22]}-vs-{p[1][:3]}")
def test_similarity_per_agency(texts, pair):
    found, _ = texts
    mine, earlier = pair
    for section, share in SHARES[pair].items():
        assert coverage(found[(mine, section)], found[(earlier, section)]) == pytest.approx(share, abs=0.0005), section


def test_rule_pairs_each_report_with_the_agencys_latest_earlier_one(texts):
    _, batch = texts
    kind = RepeatedSections(kind="repeated_sections", sections=["overview", "problems"], threshold=0.8, within_years=5)
    judged = kind.measure(batch, batch.frames.documents).judged.with_columns(
        pl.col("source").cast(pl.Utf8).str.split("/").list.last(), pl.col("previous").cast(pl.Utf8).str.split("/").list.last()
    )
    pairs = set(judged.select("source", "previous").iter_rows())
    assert pairs == set(SHARES)
    # Every share the rule measured exactly is the figure above; none passes 80 %.
    for row in judged.filter(pl.col("share").is_not_null()).iter_rows(named=True):
        assert row["share"] == pytest.approx(SHARES[(row["source"], row["previous"])][row["section"]], abs=0.0005)
    assert judged.filter(pl.col("share") > 0.8).is_empty()


def test_name_relations():
    assert name_relation("区公安局", "平潭综合实验区公安局") == "own"
    assert name_relation("区科技局", "桥西区科学技术局") == "own"
    assert name_relation("实验区管委会", "平潭综合实验区") == "own"
    assert name_relation("我局", "平潭综合实验区公安局") == "own"
    assert name_relation("全区", "平潭综合实验区") == "unclear"
    assert name_relation("平潭综合实验区财政金融局", "平潭综合实验区公安局") == "other"
    assert name_relation("宿迁市财政局", "淮安市财政局") == "other"
    assert name_forms("平潭综合实验区财政金融局") == ["平潭综合实验区", "平潭综合实验区财政金融局", "财政金融局"]
    # 市 of 市场 is no city: not 海庆县市, not 场监督管理局
    assert name_forms("海庆县市场监督管理局") == ["市场监督管理局", "海庆县", "海庆县市场监督管理局"]


def test_pages_mark_what_the_other_passage_does_not_have():
    from audits.passages import marked

    mine = "示例市财政局优化门户网站财政信息公开专栏，做好政务新媒体日常维护。"
    theirs = "示例市交通运输局优化门户网站信息公开专栏，做好政务新媒体日常维护。"
    shown = marked([{"title": "本报告", "text": mine}, {"title": "对方", "text": theirs}])
    assert [p["title"] for p in shown] == ["本报告", "对方"]
    assert "".join(t for t, _ in shown[0]["segments"]) == mine
    assert [t for t, differs in shown[0]["segments"] if differs] == ["财政", "财政"]
    assert [t for t, differs in shown[1]["segments"] if differs] == ["交通运输"]


def test_shares_and_coverage_agree():
    import random

    import polars as pl

    from audits.kinds.copying import coverages, shares

    rng = random.Random(5)
    alphabet = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定"
    texts, others = [], []
    for _ in range(200):
        a = "".join(rng.choice(alphabet[: rng.randint(3, 60)]) for _ in range(rng.randint(0, 150)))
        b = a[rng.randint(0, len(a)) :] + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) if rng.random() < 0.7 else a
        texts.append(a)
        others.append(b)
    exact = coverages(pl.DataFrame({"i": range(len(texts)), "a": range(len(texts)), "b": range(len(texts), 2 * len(texts))}), texts + others)
    assert exact.sort("i")["share"].to_list() == pytest.approx([coverage(a, b) for a, b in zip(texts, others)], abs=1e-12)
    _, share = shares(texts, others, worth=0.0)
    assert share.to_list() == pytest.approx([coverage(a, b) for a, b in zip(texts, others)], abs=1e-12)


def test_exact_jaccard_of_hashed_runs():
    import random

    import polars as pl

    from audits.kinds.copying import SHINGLE, _jaccard, jaccard, run_hashes

    rng = random.Random(9)
    alphabet = "政府信息公开工作年度报告主动依申请复议诉讼"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(30, 90))) for _ in range(40)]
    texts += [t[:-3] + "局办室" for t in texts[:20]]
    owner, hashes = run_hashes(texts, SHINGLE)
    pairs = pl.DataFrame({"k": [i for i in range(60) for j in range(i + 1, 60)], "k_b": [j for i in range(60) for j in range(i + 1, 60)]}, schema={"k": pl.UInt32, "k_b": pl.UInt32})
    got = jaccard(pairs, owner, hashes).sort("k", "k_b")
    assert got["jaccard"].to_list() == pytest.approx([_jaccard(texts[i], texts[j]) for i, j in got.select("k", "k_b").iter_rows()], abs=1e-12)
