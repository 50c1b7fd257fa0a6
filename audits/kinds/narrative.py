"""Kinds over the prose a reviewer reads by eye: counts that do not add up, another year where the
report year is meant, another agency named as the report's subject.

All read the narrative cut into its sections (`narrative`), computed once per batch: the body's
lines outside the tables, cut again where a section heading starts inside a line (crawler text
puts a whole report on one line), so every passage and sentence knows its section.
"""

from __future__ import annotations

import re
from typing import Iterator, Literal

import polars as pl
from pydantic import Field

from audits.engines.verdicts import Between
from audits.kinds.base import NOT_APPLICABLE, Batch, Kind, Measure, Problem, Scope, unjudged
from audits.kinds.text import _named_group, regex_problem
from audits.parse import sentences as sentence
from audits.vocabulary import number

PREAMBLE = "preamble"  # the text before the first section heading
# A line this long is prose even when the parser read table cells from it (crawler text).
_PROSE_LINE = 200
# Full sentences end at 。！？ only: a list of counts often runs on across "；".
FULL_SENTENCE = r"[^。!?！？]+[。!?！？]?"


def _line_key(line: str) -> pl.Expr:
    """One integer for (source, line): the source's category code and the line number. Categorical
    codes are global in the process, so the key means the same in every frame; joining on it is
    several times cheaper than on the two columns."""
    return pl.col("source").to_physical().cast(pl.UInt64) * (1 << 32) + pl.col(line).cast(pl.UInt64)


def prose_lines(batch: Batch) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(_pos, source, line, text, section, headed): the body's lines of prose in reading order;
    and the section headings found in them (`_headings`).

    `section` is the section the line starts in; `headed` says a section heading starts inside the
    line, where `narrative` cuts it. Lines of `| a | b |` tables, and short lines the table reader
    took cells from, are left out. Lines are stripped (normalise_lines), and each report's lines
    ascend (as build_frames writes them), which join_asof below needs.
    """

    def compute() -> pl.DataFrame:
        frames = batch.frames
        body = frames.documents.select("source", "body_start", "body_end")
        cell_lines = frames.cells.lazy().select(_line_key("line").alias("_key")).unique()
        in_body = pl.col("no").is_between(pl.col("body_start"), pl.col("body_end"))
        table_row = pl.col("text").str.starts_with("|")
        lines = (
            frames.lines.lazy()
            .join(body.lazy(), on="source", maintain_order="left")
            .filter(in_body)
            .with_columns(_line_key("no").alias("_key"))
            .with_columns(pl.col("_key").is_in(cell_lines.collect()["_key"].implode()).alias("_cell"))
            .filter(pl.when(pl.col("_cell")).then(pl.col("text").str.len_chars() >= _PROSE_LINE).otherwise(~table_row))
            .select("source", pl.col("no").alias("line"), "text", "_key")
            .with_row_index("_pos")
            .collect()
        )
        heads = _headings(frames.sections, lines)
        # The section a line starts in: the last heading on an earlier line.
        carried = (
            heads.group_by("source", "line")
            .agg(pl.col("section").sort_by("start").last())
            .with_columns((pl.col("line") + 1).alias("line"))
            .sort("source", "line")
        )
        lines = lines.join_asof(carried, on="line", by="source", strategy="backward", check_sortedness=False).with_columns(
            pl.col("section").cast(pl.Utf8).fill_null(PREAMBLE),
            pl.col("_key").is_in(heads["_key"].implode()).alias("headed"),
        )
        return lines.drop("_key"), heads.drop("_key")

    return batch.shared(("prose_lines",), compute)


def narrative(batch: Batch, where: pl.Expr | None = None, sections: list[str] | None = None) -> pl.DataFrame:
    """(source, line, start, section, text): the body's prose, a piece per line and section, in
    reading order; only of the lines that `where` (an expression over a line's `text`) keeps, and
    of the `sections` named.

    A piece is a line, or the part of it from one heading to the next when headings start inside
    it (crawler text puts a whole report on one line); `start` is the piece's first byte in its
    line. `where` must keep every line a wanted piece lies in: a piece is part of its line.
    """
    if where is None and not sections:
        return batch.shared(("narrative",), lambda: _pieces(*prose_lines(batch), None))
    lines, heads = prose_lines(batch)
    return _pieces(lines.filter(where) if where is not None else lines, heads, sections)


def _pieces(lines: pl.DataFrame, heads: pl.DataFrame, sections: list[str] | None) -> pl.DataFrame:
    whole = lines.filter(~pl.col("headed"))
    if sections:
        whole = whole.filter(pl.col("section").is_in(sections))
    whole = whole.select("_pos", "source", "line", pl.lit(0, pl.Int64).alias("start"), "section", "text")
    headed = lines.filter(pl.col("headed"))
    cuts = pl.concat(
        [
            headed.select("_pos", "source", "line", pl.lit(0, pl.Int64).alias("start"), pl.lit(-1, pl.Int32).alias("order"), "section"),
            heads.join(headed.select("_pos", "source", "line"), on=["source", "line"]).select(
                "_pos", "source", "line", "start", "order", pl.col("section").cast(pl.Utf8)
            ),
        ],
        how="vertical_relaxed",
    ).sort("_pos", "start", "order")
    end = pl.col("start").shift(-1).over("_pos").fill_null(pl.col("text").str.len_bytes().cast(pl.Int64))
    pieces = (
        cuts.join(headed.select("_pos", "text"), on="_pos", maintain_order="left")
        .with_columns(pl.col("text").cast(pl.Binary).bin.slice(pl.col("start"), end - pl.col("start")).cast(pl.Utf8).str.strip_chars())
        .select("_pos", "source", "line", "start", "section", "text")
    )
    if sections:
        pieces = pieces.filter(pl.col("section").is_in(sections))
    # Both are in reading order (`_pos`, then `start`): merged, not sorted again.
    return whole.merge_sorted(pieces, key="_pos").filter(pl.col("text") != "").drop("_pos")


def _headings(sections: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """(source, line, _key, start, order, section): where each section heading starts in its line
    (a byte offset), in reading order."""
    heads = sections.select(_line_key("line").alias("_key"), "source", "position", pl.col("key").alias("section"), "numeral", "title", "line").join(
        lines.select("_key", "text"), on="_key"
    )
    title = pl.col("title").str.replace_all(r"\s+", "").str.slice(0, 4)
    numeral = pl.col("numeral").fill_null("")

    def found(needle: pl.Expr) -> pl.Expr:
        # The first occurrence's byte offset; null when there is none.
        return pl.col("text").str.find(needle, literal=True).cast(pl.Int64)

    with_numeral = pl.when(numeral != "").then(found(numeral + pl.lit("、") + title))
    with_space = pl.when(numeral != "").then(found(numeral + pl.lit("、 ") + title))
    at = pl.min_horizontal(with_numeral, with_space)
    plain = pl.when(title != "").then(found(title))
    start = pl.coalesce(at, plain, pl.lit(0, pl.Int64))
    return (
        heads.with_columns(start.alias("start"))
        .sort("source", "line", "position")
        # Headings of one line in reading order: a title found earlier (the preamble listing the
        # six parts) must not move a later heading before an earlier one.
        .with_columns(pl.col("start").cum_max().over("source", "line"), pl.col("position").cast(pl.Int32).alias("order"))
        .select("source", "line", "_key", "start", "order", "section")
    )


def sentences_of(pieces: pl.DataFrame, full: bool = False) -> pl.DataFrame:
    """(source, line, section, text): the sentences of narrative pieces, split at 。；!? (or,
    `full`, at 。!? only, where a list of counts may run on across "；")."""
    split = pl.col("text").str.extract_all(FULL_SENTENCE) if full else sentence.split_expr(pl.col("text"))
    return (
        pieces.select("source", "line", "section", split.alias("text"))
        .explode("text")
        .with_columns(pl.col("text").str.strip_chars())
        .filter(pl.col("text").is_not_null() & (pl.col("text") != ""))
    )


def narrative_sentences(batch: Batch, full: bool = False) -> pl.DataFrame:
    """The whole narrative's sentences (see `sentences_of`), once per batch."""
    return batch.shared(("narrative_sentences", full), lambda: sentences_of(narrative(batch), full))


def unanchored(pattern: str) -> bool:
    """Whether a match of `pattern` in a sentence is also a match in the line holding it: no `^`,
    `$`, `\\A`, `\\z`, `\\b` or `\\B` outside character classes, and no flags that change them."""
    depth, i = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if depth == 0 and pattern[i + 1 : i + 2] in ("A", "z", "b", "B", "<", ">"):
                return False
            i += 2
            continue
        if c == "[":
            depth += 1
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # a leading ] is a literal
                i += 1
        elif c == "]" and depth:
            depth -= 1
        elif depth == 0 and c in "^$":
            return False
        elif depth == 0 and pattern.startswith("(?", i) and re.match(r"\(\?[a-zA-Z-]*[mR]", pattern[i:]):
            return False
        i += 1
    return True


def sentences_matching(batch: Batch, patterns: list[str], sections: list[str] | None = None, full: bool = False) -> pl.DataFrame:
    """The narrative's sentences (of `sections`) that some pattern may match: when every pattern is
    unanchored, only lines that one of them matches are cut and split (the caller still filters
    the sentences); otherwise the whole narrative's."""
    if patterns and all(unanchored(p) for p in patterns):
        where = pl.any_horizontal([pl.col("text").str.contains(p) for p in patterns])
        return sentences_of(narrative(batch, where, sections), full)
    found = narrative_sentences(batch, full)
    return found.filter(pl.col("section").is_in(sections)) if sections else found


def _sections_problems(sections: list[str], scope: Scope) -> Iterator[Problem]:
    known = scope.sections() | {PREAMBLE}
    for i, key in enumerate(sections):
        if key not in known:
            yield Problem(("sections", i), f"没有名为 {key} 的部分（可用：{'、'.join(sorted(known))}）")


def _quote_from(text: pl.Expr, at: pl.Expr, lead: int = 40) -> pl.Expr:
    """The sentence, or from `at` on when what comes before is longer than `lead` characters
    (crawler text runs table cells and headings into the sentence that follows them)."""
    return pl.when(at > lead).then(text.str.slice(at)).otherwise(text)


# Sums in the prose ---------------------------------------------------------------------------


class ProseSum(Kind):
    kind: Literal["prose_sum"]
    units: list[str] = Field(default_factory=lambda: ["条", "件", "项", "篇", "份", "个"])
    not_parts: list[str] = Field(default_factory=list)  # an item whose words hold one of these is not a part
    all_parts: list[str] = Field(default_factory=list)  # a last item named so says the list is complete
    sections: list[str] = Field(default_factory=list)

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "sentences"
    title = "正文中的分项之和"
    description = (
        "句中“共 N 条（件、项……），其中 a 条、b 条、c 条”：各分项之和不应超过 N；最后一项名为 all_parts 中的词"
        "（如“其他”“其余”）时，句子说的是全部分项，其和应等于 N。分项须与 N 同一单位；名称含 not_parts 中词语"
        "（如“占”“实现…的有”）的项说的是 N 的某种属性而非分项，不计入。括号中的细分不计入。"
    )
    example = "kind: prose_sum\nunits: [条, 件, 项]\nnot_parts: [有, 占, 达]\nall_parts: [其他, 其余]"

    def placeholders(self) -> dict[str, str]:
        return {
            "whole": "句中的总数",
            "parts": "各分项相加的算式（如“5 + 1 + 7 + 12 + 51”）",
            "sum": "各分项之和",
            "relation": "“超过”或“不等于”",
            "sentence": "正文的句子",
        }

    def references(self, scope: Scope) -> Iterator[Problem]:
        yield from _sections_problems(self.sections, scope)

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        units = "|".join(map(re.escape, self.units))
        opens = rf"[0-9]\s*(?:{units})\s*[，,:：]?\s*[（(]?其中"
        s = sentences_matching(batch, [opens], self.sections, full=True).join(docs.select("source"), on="source", how="semi", maintain_order="left")
        # Polars keeps the few sentences that open a list ("61条，其中"); Python reads their lists,
        # once per distinct sentence.
        s = s.filter(pl.col("text").str.contains(opens))
        reader = _CountLists(self.units, self.not_parts, self.all_parts)
        distinct = s["text"].unique(maintain_order=True)
        read = pl.DataFrame({"text": distinct, "list": pl.Series([reader.read(t) for t in distinct], dtype=pl.List(_LIST))})
        lists = s.join(read, on="text", how="left", maintain_order="left").explode("list").filter(pl.col("list").is_not_null()).unnest("list")
        judged = lists.filter(pl.col("count") >= 2).with_columns(
            pl.when(pl.col("complete")).then((pl.col("sum") - pl.col("whole")).abs()).otherwise(pl.max_horizontal(pl.col("sum") - pl.col("whole"), pl.lit(0.0))).alias("excess")
        )
        judged = judged.select("source", "line", "text", "start", "whole", "sum", "parts", "complete", "excess")
        rest = unjudged(docs, judged["source"], NOT_APPLICABLE, "正文没有“共…其中…”列出分项数量的句子")

        def explain(failing: pl.DataFrame) -> pl.DataFrame:
            relation = pl.when(pl.col("sum") > pl.col("whole")).then(pl.lit("超过")).otherwise(pl.lit("不等于"))
            quote = pl.col("text").str.slice(pl.col("start"))
            return failing.select(
                "source",
                "line",
                quote.alias("quote"),
                pl.format("其中各项：{} = {}；总数 {}", pl.col("parts"), _int(pl.col("sum")), _int(pl.col("whole"))).alias("detail"),
                _int(pl.col("sum")).alias("observed"),
                _int(pl.col("whole")).alias("expected"),
                _int(pl.col("whole")).alias("p.whole"),
                pl.col("parts").alias("p.parts"),
                _int(pl.col("sum")).alias("p.sum"),
                relation.alias("p.relation"),
                quote.alias("p.sentence"),
            )

        return Measure(judged, (Between("excess", high=0),), explain, rest)


_LIST = pl.Struct({"start": pl.Int64, "whole": pl.Float64, "sum": pl.Float64, "count": pl.Int32, "parts": pl.Utf8, "complete": pl.Boolean})
_ASIDE = re.compile(r"[（(](?:[^（()）其]|其[^中（()）])*[)）]")  # a bracket that does not hold 其中


class _CountLists:
    """The lists of counts a sentence gives: "共61条，其中：a 5条，b 1条；c 7条；其他 51条"."""

    def __init__(self, units: list[str], not_parts: list[str], all_parts: list[str]):
        u = "|".join(map(re.escape, units))
        self.head = re.compile(rf"(\d+)\s*({u})\s*[，,:：]?\s*其中\s*[:：，,]?")
        self.item = re.compile(rf"([^，,、；;：:。\d]*?)(\d+)\s*({u})")
        self.item_clause = re.compile(rf"^[^\d，,]*?\d+\s*(?:{u})等?$")
        self.not_parts = re.compile("|".join(map(re.escape, not_parts))) if not_parts else None
        self.all_parts = re.compile("|".join(map(re.escape, all_parts))) if all_parts else None

    def read(self, sentence: str) -> list[dict]:
        flat = re.sub(r"[（()）]", "", _ASIDE.sub("", sentence))
        found = []
        for m in self.head.finditer(flat):
            whole, unit = float(m.group(1)), m.group(2)
            clauses = re.split(r"[;；]", re.split(r"[。!?！？]", flat[m.end():])[0])
            text = clauses[0].split("其中")[0]
            for clause in clauses[1:]:
                # The list runs on across "；" while what follows is one more item, not a new list.
                if "其中" in clause or not self.item_clause.match(re.split(r"[,，]", clause)[0].strip()):
                    break
                text += "，" + clause
            parts = [
                (label, float(n))
                for label, n, u in self.item.findall(text)
                if u == unit and not (self.not_parts and self.not_parts.search(label))
            ]
            if not parts:
                continue
            complete = bool(self.all_parts and self.all_parts.search(parts[-1][0]))
            at = m.start()
            if flat != sentence:
                again = re.search(rf"{m.group(1)}\s*{unit}\s*[，,:：]?\s*[（(]?其中", sentence)
                at = again.start() if again else 0
            found.append(
                {
                    "start": _clause_start(sentence, at),
                    "whole": whole,
                    "sum": sum(n for _, n in parts),
                    "count": len(parts),
                    "parts": " + ".join(number(n) for _, n in parts),
                    "complete": complete,
                }
            )
        return found


def _clause_start(text: str, at: int, lead: int = 40) -> int:
    """Where to start quoting a sentence whose point is at `at`: its start, or the clause about
    `lead` characters before `at` when more comes before (crawler text runs tables into prose)."""
    if at <= lead:
        return 0
    cut = max(text.rfind(c, 0, at - lead // 2) for c in "，,;；")
    return cut + 1 if cut >= 0 else 0


def _int(column: pl.Expr) -> pl.Expr:
    return column.cast(pl.Int64).cast(pl.Utf8)


# Another year where the report year is meant -------------------------------------------------


class ReportYear(Kind):
    kind: Literal["report_year"]
    pattern: str  # a year that leads a clause about that year's work, in a group named `year`
    sections: list[str] = Field(default_factory=list)
    unless: str = ""  # a sentence matching this is not about the report year's work (a plan, a comparison)
    later_is_warning: bool = True  # a later year may be a plan: a warning, not the rule's severity

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "sentences"
    title = "正文年份与报告年度不符"
    description = (
        "sections 所列部分中与 pattern（Rust regex 语法）匹配的句子，以名为 year 的分组所说的年份叙述当年工作"
        "（如句首的“2023年，”）。该年份应为报告年度；不是时即不通过。unless 匹配的句子（计划、比较）不算。"
        "later_is_warning 为真时，晚于报告年度的年份可能是计划，只作警告。"
    )
    example = (
        "kind: report_year\n"
        'pattern: "(?P<year>20[0-9]{2})\\\\s*年度?\\\\s*[，,]"\n'
        "sections: [overview, active, applications, review_litigation]\n"
        'unless: "将|计划|拟"'
    )

    def placeholders(self) -> dict[str, str]:
        return {"year": "句中的年份", "report_year": "报告年度", "sentence": "正文的句子"}

    def references(self, scope: Scope) -> Iterator[Problem]:
        bad = [p for p in (regex_problem((f,), getattr(self, f)) for f in ("pattern", "unless") if getattr(self, f)) if p]
        yield from bad
        if not any(p.loc == ("pattern",) for p in bad) and not _named_group(self.pattern, "year"):
            yield Problem(("pattern",), "pattern 中没有名为 year 的分组（?P<year>…）：句子说的年份无从读出")
        yield from _sections_problems(self.sections, scope)

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        years = docs.select("source", "report_year").filter(pl.col("report_year").is_not_null())
        s = sentences_matching(batch, [self.pattern], self.sections).join(years, on="source", how="inner", maintain_order="left")
        s = s.filter(pl.col("text").str.contains(self.pattern))
        if self.unless:
            s = s.filter(~pl.col("text").str.contains(self.unless))
        found = (
            s.with_columns(pl.col("text").str.extract_all(self.pattern).alias("hit"))
            .explode("hit")
            .with_columns(pl.col("hit").str.extract_groups(self.pattern).struct.field("year").cast(pl.Int32, strict=False).alias("year"))
            .filter(pl.col("year").is_not_null())
            .with_columns(
                (pl.col("year") != pl.col("report_year")).cast(pl.Int32).alias("wrong"),
                pl.col("text").str.split(pl.col("hit")).list.first().str.len_chars().alias("at"),
            )
        )
        # One row per sentence and year: the same year twice in a sentence is one finding.
        judged = found.unique(["source", "line", "text", "year"], keep="first", maintain_order=True)
        rest = unjudged(docs, judged["source"], NOT_APPLICABLE, "所查部分没有以年份叙述当年工作的句子")
        later = self.later_is_warning

        def explain(failing: pl.DataFrame) -> pl.DataFrame:
            quote = _quote_from(pl.col("text"), pl.col("at"))
            severity = pl.when(pl.lit(later) & (pl.col("year") > pl.col("report_year"))).then(pl.lit("warning")).otherwise(pl.lit(None, pl.Utf8))
            return failing.select(
                "source",
                "line",
                quote.alias("quote"),
                pl.format("这是 {} 年度的报告，句子叙述的是 {} 年", pl.col("report_year"), pl.col("year")).alias("detail"),
                severity.alias("severity"),
                pl.col("year").cast(pl.Utf8).alias("observed"),
                pl.col("report_year").cast(pl.Utf8).alias("expected"),
                pl.col("year").cast(pl.Utf8).alias("p.year"),
                pl.col("report_year").cast(pl.Utf8).alias("p.report_year"),
                quote.alias("p.sentence"),
            )

        return Measure(judged, (Between("wrong", high=0),), explain, rest)


# Another agency named as the report's subject ------------------------------------------------

# The ends of an agency's name (and of a government's): a captured name must end with one.
AGENCY_END = re.compile(
    r"(局|委员会|委|办公室|办|厅|署|院|中心|人民政府|政府|管委会|管理委员会|街道办事处|街道|镇|乡|支队|大队|分局|区|县|市|旗|州|盟|省)$"
)
_PRONOUN = re.compile(r"^(我|本)")
_WHOLE = re.compile(r"^(全|各)")  # 全区, 各部门: a scope, not an agency
_GOVERNMENT = re.compile(r"(政府|管委会)$")
_DEPARTMENT = re.compile(r"(局|委|办|厅|署|院|中心|支队|大队)$")
_SHORT = ((r"\s+", ""), ("中华人民共和国", ""), ("人民政府", "政府"), ("管理委员会", "管委会"), ("委员会", "委"), ("办公室", "办"))


def _plain_name(name: str) -> str:
    for old, new in _SHORT:
        name = re.sub(old, new, name)
    return name


def name_relation(name: str, own: str) -> str:
    """`own`, `other` or `unclear`: whether `name` (as the report prints it) is the report's agency.

    Own: a pronoun (我局, 本机关), a part of the agency's name (区公安局 in 平潭综合实验区公安局), or
    the agency with more words (its office). Other: a name of an agency that differs from the
    report's in what follows their common beginning (平潭综合实验区财政金融局 in 公安局's report).
    """
    if not name or _PRONOUN.match(name):
        return "own"
    if _WHOLE.match(name) or not AGENCY_END.search(name) or not own:
        return "unclear"
    n, o = _plain_name(name), _plain_name(own)
    if o in n or _subsequence(n, o):
        return "own"
    # A government is also named by its region with 政府 or 管委会 (实验区管委会 for 平潭综合实验区).
    bare_n, bare_o = _GOVERNMENT.sub("", n), _GOVERNMENT.sub("", o)
    if bare_n != n and bare_n and _subsequence(bare_n, bare_o) and not _DEPARTMENT.search(bare_o):
        return "own"
    return "other"


def _subsequence(short: str, long: str) -> bool:
    """Whether the characters of `short` occur in `long` in order (区科技局 in 桥西区科学技术局)."""
    it = iter(long)
    return all(ch in it for ch in short)


class AgencyName(Kind):
    kind: Literal["agency_name"]
    patterns: list[str]  # sentences naming the report's subject, the name in a group named `name`
    sections: list[str] = Field(default_factory=list)

    engine = "great_expectations"
    verdicts = (Between,)
    reads = "sentences"
    title = "正文中的机关名称不是本机关"
    description = (
        "patterns 中的正则表达式（Rust regex 语法）找出把某个机关当作报告主体的句子（如“请与××办公室联系”“××2024年政府信息公开工作”），"
        "名为 name 的分组是该机关名称。名称应是本机关：本机关名称的一部分（如“区公安局”）、加了内设机构的本机关，或“我局”“本机关”；"
        "名称以机关、地方的名称结尾而与本机关不同（如公安局的报告写“××财政金融局”），即不通过。"
    )
    example = (
        "kind: agency_name\n"
        "patterns:\n"
        '  - "请(?:与|联系)[:：]?(?P<name>[\\\\p{Han}]{2,30}?)(?:政府信息公开)?(?:工作)?(?:领导小组)?办公室"'
    )

    def placeholders(self) -> dict[str, str]:
        return {"name": "句中的机关名称", "agency": "本报告的机关", "sentence": "正文的句子"}

    def references(self, scope: Scope) -> Iterator[Problem]:
        for i, pattern in enumerate(self.patterns):
            problem = regex_problem(("patterns", i), pattern)
            if problem:
                yield problem
            elif not _named_group(pattern, "name"):
                yield Problem(("patterns", i), "pattern 中没有名为 name 的分组（?P<name>…）：句中的机关名称无从读出")
        yield from _sections_problems(self.sections, scope)

    def measure(self, batch: Batch, docs: pl.DataFrame) -> Measure:
        agencies = docs.select("source", "agency").filter(pl.col("agency").fill_null("") != "")
        s = sentences_matching(batch, self.patterns, self.sections).join(agencies, on="source", how="inner", maintain_order="left")
        s = s.filter(pl.any_horizontal([pl.col("text").str.contains(p) for p in self.patterns]))
        named = pl.concat(
            [
                s.with_columns(pl.col("text").str.extract_all(p).alias("hit"))
                .explode("hit")
                .filter(pl.col("hit").is_not_null())
                .with_columns(pl.col("hit").str.extract_groups(p).struct.field("name").alias("name"))
                for p in self.patterns
            ],
            how="vertical_relaxed",
        ) if self.patterns else s.with_columns(pl.lit(None, pl.Utf8).alias("hit"), pl.lit(None, pl.Utf8).alias("name"))
        named = named.filter(pl.col("name").is_not_null())
        # Python judges each distinct (name, agency) once.
        pairs = named.select("name", "agency").unique()
        relations = pairs.with_columns(pl.Series("relation", [name_relation(n, a) for n, a in pairs.iter_rows()], dtype=pl.Utf8))
        named = named.join(relations, on=["name", "agency"], how="left", maintain_order="left")
        judged = (
            named.filter(pl.col("relation") != "unclear")
            .with_columns((pl.col("relation") == "other").cast(pl.Int32).alias("other"), pl.col("text").str.split(pl.col("hit")).list.first().str.len_chars().alias("at"))
            .unique(["source", "line", "text", "name"], keep="first", maintain_order=True)
        )
        rest = unjudged(docs, judged["source"], NOT_APPLICABLE, "正文没有以机关名称称呼报告主体的句子")

        def explain(failing: pl.DataFrame) -> pl.DataFrame:
            quote = _quote_from(pl.col("text"), pl.col("at"))
            return failing.select(
                "source",
                "line",
                quote.alias("quote"),
                pl.format("本报告的机关是“{}”，句中写作“{}”", pl.col("agency"), pl.col("name")).alias("detail"),
                pl.col("name").alias("observed"),
                pl.col("agency").alias("expected"),
                pl.col("name").alias("p.name"),
                pl.col("agency").alias("p.agency"),
                quote.alias("p.sentence"),
            )

        return Measure(judged, (Between("other", high=0),), explain, rest)
