"""Structure of one report: title, agency, year, dates, sections, the three tables, statements.

Extraction only: the parser finds the period sentence, the contacts, the sign-off, the sentences
with their section; whether they satisfy a rule is the engines' business.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass, replace

from audits.layouts import Layout, RowSpec
from audits.model import Line, ParsedReport, Section, Snippet, SourceText
from audits.normalize import compact_label, normalise_lines
from audits.parse import sentences
from audits.parse.stream import ROW, SEP, Stream, build_stream
from audits.parse.tables import TableReader

# Why a text that was read is still no report (documents.csv `problems`): not an unreadable file.
NOT_A_REPORT = "未识别为政府信息公开工作年度报告（没有找到报告标题、六个部分的标题或统计表）"

TABLE_ORDER = ("active", "applications", "review_litigation")
_HEAD_NUMERAL = re.compile(r"^(?P<num>[一二三四五六七八九十]{1,2}[、.]|\d{1,2}[.、)])")
_INLINE_NUMERAL = re.compile(r"[一二三四五六七八九十]{1,2}、")
_TITLE = re.compile(r"(?P<pre>.*?)(?P<year>20\d{2})\s*年度?(?P<post>.*?)(?:政府信息公开|政务公开|信息公开)")
NO_TITLE = "未找到报告标题（机关名称和年度）"
_TITLE_MAX = 80  # a title is short; matching _TITLE's lazy groups on a long line costs its square
_YEAR = re.compile(r"20\d{2}\s*年")
_TITLE_PREFIX = re.compile(r"^(标\s*题|标题|题\s*目)\s*[:：]?\s*")
_PUBLISHED = re.compile(
    r"(?:发布日期|发布时间|发布于|时间)\s*[:：]?\s*(\d{4})\s*[-年/.]\s*(\d{1,2})\s*[-月/.]\s*(\d{1,2})"
)
_DATE_CN = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_DIGITS_DATE = re.compile(r"^(20\d{2})(\d{2,4})$")
_FOOTER = re.compile(r"^(政策解读[:：]|附件下载|附件[:：]|扫一扫|分享到|相关链接|打印本页|【打印】|关闭窗口|上一篇|下一篇|//是否显示)")
# What may follow a 落款 date on its line: a contact in brackets, a footer link.
_TRAILER = re.compile(r"[(（][^)）]*[)）]|附件下载|附件|打印|关闭|分享")
_PERIOD_WORDS = re.compile(r"统计期限|统计时限|统计期间|统计时间|统计周期|统计截止|所列数据|统计数据|数据统计")
_PHONE = re.compile(r"(?<!\d)(?:0\d{2,3}\s*[-—–－]{1,2}\s*\d{7,8}|\(0\d{2,3}\)\s*\d{7,8}|1[3-9]\d{9}|0\d{9,11})(?!\d)")
# A bare run of digits is a phone number only where the text says so: crawler text runs table cells
# together ("15130000154" is 151/3/0/0/0/0/154, not a mobile number).
_BARE_PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{9,11})$")
_PHONE_CUE = re.compile(r"(?:电话|手机|热线|传真|联系|咨询|号码|tel|Tel|TEL)[^。；;]{0,12}$")
# Before the report's first sentence, after its title: page or crawler chrome (来源、时间、原文链接、
# 微信、===== 正文 =====), not the report's own text.
_SENTENCE_END = re.compile(r"[。；;]")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_ADDRESS = re.compile(r"(?:通信地址|通讯地址|联系地址|办公地址|地址)\s*[:：,，]?\s*([^，。;；,)）]{4,40})")
_PLACE = re.compile(r"[省市区县镇乡路街道号楼室巷村]")
_URL = re.compile(r"(?:https?://[^\s，。)）]+|www\.[A-Za-z0-9.\-]+)")
_SNIPPET_PATTERNS = (_PERIOD_WORDS, _PHONE, _EMAIL, _ADDRESS, _URL)
_GOVERNMENT = re.compile(r"(人民政府|管委会|管理委员会|实验区|开发区|新区|高新区)$")
_TOWNSHIP = re.compile(r"(乡|镇|街道|街道办事处)(人民政府)?$")


@dataclass(frozen=True)
class Heading:
    key: str
    title: str
    numeral: str
    offset: int


def parse(text: SourceText, layouts: dict[str, Layout], content_hash: str = "") -> ParsedReport:
    report = ParsedReport(source=text.source, format=text.format, encoding=text.encoding, content_hash=content_hash, ocr_lines=len(text.ocr_lines))
    report.problems.extend(text.problems)
    report.attachments = text.attachments
    if not text.lines:
        return report
    lines = normalise_lines(text.lines)
    report.lines = lines
    _read_title(report, lines)
    stream = build_stream(lines)
    earlier = _earlier_format(stream, layouts, report.report_year)
    if earlier is not None:
        return _before_unified(report, earlier, lines, stream)
    layouts = {name: layout for name, layout in layouts.items() if layout.unified}
    layout = _detect_layout(stream, layouts, report.report_year)
    headings = find_sections(stream, layout)
    body_end = _body_end(lines, stream, headings)
    report.sections = _sections(headings, stream, body_end)
    report.published = _published(lines, report.sections)
    report.signed, report.signed_raw = _signed(lines, body_end, report)
    _read_tables(report, stream, layout, layouts, headings)
    if text.ocr_lines:
        # NOTE: a value read from a scan by OCR may be misread: a finding resting on it must be able to say so.
        report.cells = [replace(c, flag="ocr") if not c.flag and c.line in text.ocr_lines else c for c in report.cells]
    body_start = _body_start(lines, report.sections)
    report.body = (body_start, body_end)
    report.snippets = _snippets(lines, body_start, body_end)
    report.status = status_of(report)
    if report.status == "failed":
        report.problems = [NOT_A_REPORT]
    return report


def _earlier_format(stream: Stream, layouts: dict[str, Layout], year: int | None) -> Layout | None:
    """The format before the unified one, when the report is in it: by its year, or — year unknown —
    by that format's words with none of the unified format's."""
    for layout in layouts.values():
        if layout.unified:
            continue
        if year is not None:
            if layout.report_years.contains(year):
                return layout
            continue
        hits = lambda lay: sum(compact_label(m) in stream.text for m in lay.markers)  # noqa: E731
        if hits(layout) >= 2 and not any(hits(other) for other in layouts.values() if other.unified):
            return layout
    return None


def _before_unified(report: ParsedReport, layout: Layout, lines: list[Line], stream: Stream) -> ParsedReport:
    """A report in a format before the unified one: its title, dates and text are read, nothing else
    (the unified format's sections and tables are not looked for)."""
    report.template = layout.template
    body_end = _body_end(lines, stream, [])
    report.published = _published(lines, [])
    report.signed, report.signed_raw = _signed(lines, body_end, report)
    report.body = (_body_start(lines, []), body_end)
    report.status = "parsed" if report.title else "partial"
    return report


# Title and dates ----------------------------------------------------------------------------


def _read_title(report: ParsedReport, lines: list[Line]) -> None:
    previous = ""
    for line in lines[:40]:
        text = _TITLE_PREFIX.sub("", line.text)
        m = _TITLE.search(text) if len(text) < _TITLE_MAX and "报告" in text else None
        if m:
            agency = _clean_agency(m.group("pre")) or _clean_agency(m.group("post")) or _clean_agency(previous)
            report.title, report.agency, report.report_year = text, agency, int(m.group("year"))
            report.agency_kind = agency_kind(agency)
            return
        if text:
            previous = text
    report.problems.append(NO_TITLE)


def _names_a_report_year(text: str) -> bool:
    """What `_TITLE` matches, in linear time: a year ("2024年") with 信息公开 or 政务公开 after it.
    (The first year decides: any later one has less text after it.)"""
    year = _YEAR.search(text)
    return bool(year) and ("信息公开" in text[year.end():] or "政务公开" in text[year.end():])


def _clean_agency(text: str) -> str:
    text = re.sub(r"[\s:：|]", "", text)
    text = re.sub(r"^(关于|印发)", "", text)
    return text if 2 <= len(text) <= 40 and not re.search(r"\d{4}", text) else ""


def agency_kind(name: str) -> str:
    if _TOWNSHIP.search(name):
        return "township"
    if _GOVERNMENT.search(name):
        return "government"
    return "department"


def _date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def _published(lines: list[Line], sections: list[Section]) -> dt.date | None:
    # A page with no section of its own (its report is an attachment) has only chrome: look further.
    limit = sections[0].line if sections else 100
    for line in lines[: max(limit, 1) + 5]:
        m = _PUBLISHED.search(line.text)
        if m and "生成日期" not in line.text[: m.start() + 4]:
            return _date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return None


def _signed(lines: list[Line], body_end: int, report: ParsedReport) -> tuple[dt.date | None, str]:
    """The 落款 date: the last date in the last lines of the body, rebuilt when digits were lost."""
    tail = [line for line in lines[:body_end] if line.text][-4:]
    for line in reversed(tail):
        window = line.text[-120:]
        found = list(_DATE_CN.finditer(window))
        if found and len(_TRAILER.sub("", window[found[-1].end() :]).strip()) <= 2:
            m = found[-1]
            return _date(int(m.group(1)), int(m.group(2)), int(m.group(3))), m.group(0)
        m = _DIGITS_DATE.match(line.text)
        if m:
            return _rebuild_date(m.group(1), m.group(2), report), line.text
    return None, ""


def _rebuild_date(year: str, rest: str, report: ParsedReport) -> dt.date | None:
    """"2023116" → 2023-01-16: the split of the lost 月/日 that fits the report year and publication."""
    candidates = []
    for cut in range(1, len(rest)):
        date = _date(int(year), int(rest[:cut]), int(rest[cut:])) if rest[cut:][:1] != "0" or len(rest[cut:]) == 2 else None
        if date is None:
            continue
        if report.report_year and date.year <= report.report_year:
            continue
        if report.published and date > report.published:
            continue
        candidates.append(date)
    return candidates[0] if len(candidates) == 1 else None


# Sections -----------------------------------------------------------------------------------


def _cells(stream: Stream):
    offset = 0
    for i, piece in enumerate(stream.text.split(SEP)):
        yield offset, piece.replace(ROW, ""), stream.piped[i] if i < len(stream.piped) else False
        offset += len(piece) + 1


def _keyword_hit(spec, text: str, near: int) -> bool:
    for group in spec.keywords:
        first = text.find(group[0])
        if 0 <= first <= near and all(word in text for word in group):
            return True
    return False


def find_sections(stream: Stream, layout: Layout) -> list[Heading]:
    """The six section headings, by wording and in order; numerals as printed, never trusted."""
    candidates: list[tuple[int, str, str, str]] = []  # offset, key, numeral, title
    for offset, cell, piped in _cells(stream):
        if piped or not cell:
            continue
        if len(cell) <= 45 and not cell.startswith("("):
            m = _HEAD_NUMERAL.match(cell)
            numeral = m.group("num") if m else ""
            title = cell[len(numeral) :]
            if layout.heading_words.search(title, 0, 40):
                for spec in layout.sections:
                    if _keyword_hit(spec, title[:40], 20):
                        candidates.append((offset, spec.key, numeral, title))
                        break
            continue
        if not layout.heading_words.search(cell):
            continue  # most long cells are prose or table rows: one search rules them out
        for m in _INLINE_NUMERAL.finditer(cell):
            window = cell[m.end() : m.end() + 40]
            for spec in layout.sections:
                if _keyword_hit(spec, window[:30], 15):
                    end = max(window.find("情况"), window.find("事项"))
                    title = window[: end + 2] if end >= 0 else window[:20]
                    candidates.append((offset + m.start(), spec.key, m.group(0), title))
                    break
    candidates.sort()
    headings: list[Heading] = []
    position = -1
    for spec in layout.sections:
        mine = [c for c in candidates if c[1] == spec.key and c[0] > position]
        chinese = [c for c in mine if c[2][:1] in "一二三四五六七八九十"]
        chosen = (chinese or mine)[:1]
        if chosen:
            offset, key, numeral, title = chosen[0]
            headings.append(Heading(key, title, numeral.rstrip("、.)"), offset))
            position = offset
    return headings


def _sections(headings: list[Heading], stream: Stream, body_end: int) -> list[Section]:
    out = []
    for i, h in enumerate(headings):
        end = stream.line_at(headings[i + 1].offset) if i + 1 < len(headings) else body_end
        out.append(Section(h.key, h.title, h.numeral, stream.line_at(h.offset), max(end, stream.line_at(h.offset))))
    return out


def _body_start(lines: list[Line], sections: list[Section]) -> int:
    """The first line of the report's own text: from its title on, the first line that holds a
    sentence, or the first section heading. Before it stands the title and what the page or the
    crawler put around it (来源、时间、分享、原文链接、===== 正文 =====), which is not the report."""
    title = next((line.no for line in lines if _names_a_report_year(line.text)), 1)
    first_section = sections[0].line if sections else None
    for line in lines[title - 1 : first_section]:
        if _SENTENCE_END.search(line.text) or line.no == first_section:
            return line.no
    return title


def _body_end(lines: list[Line], stream: Stream, headings: list[Heading]) -> int:
    """The last line of the report body: footers (政策解读, 分享到, …) after the last section are chrome."""
    start = stream.line_at(headings[-1].offset) if headings else 1
    for line in lines[start:]:
        if _FOOTER.match(line.text):
            return line.no - 1
    return len(lines)


# Tables -------------------------------------------------------------------------------------


def _detect_layout(stream: Stream, layouts: dict[str, Layout], year: int | None) -> Layout:
    """The layout whose marker words the document prints most; ties go to the report year's."""

    def score(layout: Layout) -> tuple[int, bool]:
        hits = sum(1 for marker in layout.markers if compact_label(marker) in stream.text)
        return hits, bool(year and layout.report_years.contains(year))

    return max(layouts.values(), key=score)


def _table_rows(name: str, layout: Layout, layouts: dict[str, Layout]) -> list[RowSpec]:
    """The layout's rows, plus rows only other templates have (a mixed report prints some)."""
    rows = list(layout.tables[name].rows)
    keys = {r.key for r in rows}
    if name == "active":
        return rows
    for other in layouts.values():
        theirs = other.tables[name].rows
        for i, row in enumerate(theirs):
            if row.key in keys:
                continue
            before = theirs[i - 1].key if i else None
            at = next((j + 1 for j, r in enumerate(rows) if r.key == before), len(rows))
            rows.insert(at, row)
            keys.add(row.key)
    return rows


def _read_tables(report: ParsedReport, stream: Stream, layout: Layout, layouts: dict[str, Layout], headings: list[Heading]) -> None:
    heading_at = {h.key: h.offset for h in headings}
    starts: dict[str, int] = {}
    after = 0
    for name in TABLE_ORDER:
        found = [stream.text.find(compact_label(a), after) for a in layout.tables[name].anchors]
        found = [f for f in found if f >= 0]
        if name == "review_litigation" and heading_at.get(name, -1) >= after:
            found.append(heading_at[name])
        if found:
            starts[name] = min(found)
            after = starts[name] + 1
    ends = sorted(set(starts.values()) | {h.offset for h in headings} | {len(stream.text)})
    cells, notes, found_tables = [], [], []
    for name, start in starts.items():
        end = next(e for e in ends if e > start)
        reader = TableReader(name, layout.tables[name], _table_rows(name, layout, layouts), stream)
        table_cells = reader.read(start, end)
        notes.extend(reader.notes)
        if table_cells:
            cells.extend(table_cells)
            found_tables.append(name)
    report.cells, report.table_notes, report.tables_found = cells, notes, tuple(found_tables)
    report.template = _template(layout, layouts, {(c.table, c.row) for c in cells}) if found_tables else "unknown"


def _template(layout: Layout, layouts: dict[str, Layout], rows: set[tuple[str, str]]) -> str:
    """The detected layout, or `mixed` when the report prints rows only another template has."""
    native = {(name, r.key) for name, t in layout.tables.items() for r in t.rows}
    foreign = {
        (name, r.key)
        for other in layouts.values()
        if other is not layout
        for name, t in other.tables.items()
        for r in t.rows
    } - native
    return "mixed" if rows & foreign else layout.template


# Statements ---------------------------------------------------------------------------------


def _sentences_of(line: Line) -> list[str]:
    if not line.text or line.text.startswith("|"):
        return []
    return sentences.split(line.text)


def _snippets(lines: list[Line], start: int, end: int) -> list[Snippet]:
    """Statements the rules judge: the period statement, phones, e-mails, addresses, web addresses."""
    found: list[Snippet] = []
    for line in lines[start - 1 : end]:
        # A line none of the patterns matches has no sentence they match: most lines are skipped.
        if not any(pattern.search(line.text) for pattern in _SNIPPET_PATTERNS):
            continue
        no = line.no
        for sentence in _sentences_of(line):
            # A period statement gives dates ("统计期限为…"), even broken ones ("自202211日起"); "附相关
            # 数据统计表" names the words without stating a period.
            if _PERIOD_WORDS.search(sentence) and _STATES_DATES.search(sentence):
                found.append(Snippet("period", sentence, no, period_value(sentence)))
            for m in _PHONE.finditer(sentence):
                if _BARE_PHONE.match(m.group(0)) and not _PHONE_CUE.search(sentence[: m.start()]):
                    continue
                found.append(Snippet("phone", sentence, no, m.group(0)))
            for m in _EMAIL.finditer(sentence):
                found.append(Snippet("email", sentence, no, m.group(0)))
            for m in _ADDRESS.finditer(sentence):
                if _PLACE.search(m.group(1)):
                    found.append(Snippet("address", sentence, no, m.group(1)))
            for m in _URL.finditer(sentence):
                found.append(Snippet("url", sentence, no, m.group(0)))
    return found


_PERIOD_DATES = re.compile(
    r"(?P<y1>\d{4})\s*年\s*(?P<m1>\d{1,2})\s*月\s*(?:(?P<d1>\d{1,2})\s*日)?"
    r".{0,6}?(?:至|到|—|－|–|-|~|～)\s*(?:(?P<y2>\d{4})\s*年)?\s*(?P<m2>\d{1,2})\s*月\s*(?:(?P<d2>\d{1,2})\s*日)?"
)
_YEAR_ONLY = re.compile(r"(\d{4})\s*年(?:度|全年)")
_CN_NUMERAL_DATE = re.compile(r"[〇零一二三四五六七八九十]+\s*[年月日]")
_DOTTED_DATE = re.compile(r"(?<!\d)(\d{4})\s*[./／]\s*(\d{1,2})\s*[./／]\s*(\d{1,2})(?!\d)")
_STATES_DATES = re.compile(r"[\d〇○零一二三四五六七八九十]\s*[年月日]|\d{4}\s*[./／]\s*\d")


def period_value(sentence: str) -> str:
    """`2023-01-01/2023-12-31` read from a period statement; `unreadable` when its dates are broken.

    Chinese numerals (二〇二三年十二月三十一日, with ○ for 〇) are read with cn2an, dotted dates
    (2023.1.1-2023.12.31) as dates, and a period ending with a month without its day ends on that
    month's last day (2024年1月至6月 → 2024-06-30)."""
    # 〇 and ○ as 零: cn2an reads 二零二四 in every release since 0.5.2, 二〇二四 only from 0.5.24.
    text = sentence.replace("○", "零").replace("〇", "零")
    if _CN_NUMERAL_DATE.search(text):
        import cn2an  # only period statements written in Chinese numerals need it

        try:
            text = cn2an.transform(text, "cn2an")
        except (ValueError, KeyError):
            pass
    text = _DOTTED_DATE.sub(lambda m: f"{m.group(1)}年{m.group(2)}月{m.group(3)}日", text)
    m = _PERIOD_DATES.search(text)
    if m:
        y1, y2 = int(m.group("y1")), int(m.group("y2") or m.group("y1"))
        start = _date(y1, int(m.group("m1")), int(m.group("d1") or 1))
        m2 = int(m.group("m2"))
        end = None
        if 1 <= m2 <= 12:
            end = _date(y2, m2, int(m.group("d2") or calendar.monthrange(y2, m2)[1]))
        if start and end:
            return f"{start.isoformat()}/{end.isoformat()}"
    m = _YEAR_ONLY.search(text)
    if m and "统计" in text:
        return f"{m.group(1)}-01-01/{m.group(1)}-12-31"
    return "unreadable"


def status_of(report: ParsedReport) -> str:
    if not report.lines or not report.title and not report.tables_found and not report.sections:
        return "failed"
    complete = len(report.tables_found) == len(TABLE_ORDER) and len(report.sections) == 6
    return "parsed" if complete and report.title else "partial"
