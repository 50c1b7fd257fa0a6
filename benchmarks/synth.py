"""Synthetic annual reports for the benchmarks, made from the real ones in ../shared.

Every synthetic report is one real report (a *template*) with its agency, year, phone numbers and
counts changed, written in one of the formats the tool reads:

| family   | templates                                   | variants (how the file is written)                          |
|----------|---------------------------------------------|-------------------------------------------------------------|
| flat     | seeds 000, 002, 003 (one cell per line)     | txt, txt-trad (OpenCC s2t)                                  |
| markdown | seed 001 (pipe tables with shifted cells)   | md, md-trad, html-md (tables as <table>), html-md-gbk       |
| pinyin   | seed 004 (traditional script with pinyin)   | txt-pinyin                                                  |
| crawler  | corpus/*.txt (run-together table digits)    | txt, txt-trad                                               |
| html     | corpus/031_shanghai-szfbgt_2019.html        | html (UTF-8, declared), html-gbk, html-trad                 |

`*-gbk` variants are GBK bytes with the `<meta charset>` removed, so the reader has to detect the
encoding. How a template is varied, consistently within one report:

- the agency: the template's agency name, its region prefix and its department part are replaced
  in one pass by a generated agency (department, government or township), also inside traditional
  text whose characters carry pinyin annotations (seed 004);
- the year: every year 2010–2030 in the text moves by the same delta (citations such as
  〔2021〕 stay), so that the report year stays within its template's format years;
- the numbers: in the formats whose table cells are separated (flat, markdown, HTML) every table
  cell and every narrative count ("收到申请5件") is multiplied by the same integer k, so table
  identities and text-versus-table claims still hold; crawler text keeps its run-together table
  digits (their split is the parser's job) and only varies 条/篇 counts;
- a few reports (5 % of those with separated cells) get one table cell off by one, so that the
  identity rules have something to find, as in real batches;
- phone numbers get new last digits.

Deterministic: report i depends only on (seed, i), not on N or on the number of processes.

    .venv/bin/python -m benchmarks.synth --n 2000 --out /tmp/audits-bench/synth-2000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AUDITS_SHARED", ROOT.parent / "shared"))
TEMPLATES_DIR = ROOT / "rules" / "templates"
SYNTH_VERSION = 3
DEFAULT_BASE = Path(os.environ.get("AUDITS_BENCH_DIR", "/tmp/audits-bench"))

FAMILY_WEIGHTS = {"crawler": 0.40, "flat": 0.20, "markdown": 0.15, "pinyin": 0.05, "html": 0.20}
VARIANTS = {
    "flat": {"txt": 0.75, "txt-trad": 0.25},
    "markdown": {"md": 0.40, "md-trad": 0.15, "html-md": 0.25, "html-md-gbk": 0.20},
    "pinyin": {"txt-pinyin": 1.0},
    "crawler": {"txt": 0.80, "txt-trad": 0.20},
    "html": {"html": 0.45, "html-gbk": 0.35, "html-trad": 0.20},
}
ERROR_RATE = 0.05  # share of separated-cell reports with one table cell off by one

# Generated agencies: region stems × region suffixes × departments (tens of thousands of names).
_STEM_CHARS = "安宁平清河山阳江南北东西新兴永长德福华嘉金龙泉林桂湖海云石丰庆临武昌盛泰和溪川"
_REGION_SUFFIX = ("市", "县", "区")
DEPARTMENTS = (
    "科学技术局", "财政局", "公安局", "交通运输局", "市场监督管理局", "自然资源局", "生态环境局", "教育局",
    "民政局", "卫生健康委员会", "人力资源和社会保障局", "住房和城乡建设局", "农业农村局", "水利局", "商务局",
    "文化和旅游局", "应急管理局", "审计局", "统计局", "林业局", "司法局", "退役军人事务局", "医疗保障局",
    "行政审批局", "发展和改革委员会", "工业和信息化局", "城市管理局", "体育局", "人民政府办公室", "信访局",
)
_TOWN_SUFFIX = ("镇", "乡")


@dataclass(frozen=True)
class Template:
    family: str
    path: Path
    text: str
    agency: str  # as the parser reads it (simplified)
    year: int
    layout: str
    years: tuple[int, int]  # report years its format is for


# Templates ----------------------------------------------------------------------------------


def template_paths(shared: Path = SHARED) -> dict[str, list[Path]]:
    seeds = sorted((shared / "seeds").glob("*.txt"))
    by_name = {p.name[:3]: p for p in seeds}
    return {
        "flat": [by_name[k] for k in ("000", "002", "003") if k in by_name],
        "markdown": [by_name[k] for k in ("001",) if k in by_name],
        "pinyin": [by_name[k] for k in ("004",) if k in by_name],
        "crawler": sorted((shared / "corpus").glob("*.txt")),
        "html": [p for p in [shared / "corpus" / "031_shanghai-szfbgt_2019.html"] if p.exists()],
    }


@lru_cache(maxsize=1)
def load_templates(shared: str = str(SHARED)) -> dict[str, list[Template]]:
    """Every template with what the parser reads from it (agency, year, format)."""
    from audits.workers import parse_file
    from audits.layouts import load_layouts

    layouts = load_layouts(TEMPLATES_DIR)
    out: dict[str, list[Template]] = {}
    for family, paths in template_paths(Path(shared)).items():
        for path in paths:
            report = parse_file(str(path), str(TEMPLATES_DIR))
            if not report.agency or not report.report_year:
                raise SystemExit(f"template {path} does not parse (agency/year missing)")
            layout = report.template if report.template in layouts else "2021"
            span = layouts[layout].report_years
            years = (span.from_, min(span.to or 2025, 2025))
            text = path.read_text(encoding="utf-8")
            out.setdefault(family, []).append(Template(family, path, text, report.agency, report.report_year, layout, years))
    missing = [f for f in FAMILY_WEIGHTS if f not in out]
    if missing:
        raise SystemExit(f"no template for {missing} under {shared}")
    return out


@lru_cache(maxsize=2)
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def s2t(text: str) -> str:
    return _opencc("s2t").convert(text)


# Variation ----------------------------------------------------------------------------------

_ADMIN = re.compile(r"^(.*?(?:自治区|自治州|自治县|省|市|州|盟|地区|区|县|旗))(.*)$")
# A year is a year when a date or 年 follows: crawler tables print "文件2023" for the cells 2/0/2/3.
_YEAR = re.compile(r"(〔\d{4}〕|\[\d{4}\])|(?<!\d)(20[0-3]\d)(?=\s*(?:年|[-/.－]\s*\d))")
_DIGIT_DATE_LINE = re.compile(r"(?m)^([ \t\u3000]*)(20[0-3]\d)(\d{2,4})([ \t\u3000]*)$")
_LEAP = re.compile(r"(\d{4})(年|-|/|\.)(0?2)(月|-|/|\.)29")
_COUNT = re.compile(r"(?<![\d.])(\d{1,6})(?=\s*(?:条|件|篇|个|人次|次|项|家|场|期|份|名|人))")
_PUBLICATION_COUNT = re.compile(r"(?<![\d.])(\d{1,6})(?=\s*(?:条|篇))")
_CELL_LINE = re.compile(r"(?m)^([ \t\u3000\u00a0?]*)(\d{1,6}(?:\.\d+)?)([ \t\u3000\u00a0]*)$")
_PIPE_CELL = re.compile(r"(?<=\|)([ \t]*)(\d{1,6}(?:\.\d+)?)([ \t]*)(?=\|)")
_HTML_CELL = re.compile(r"(>\s*)(\d{1,6}(?:\.\d+)?)((?:万元|元)?\s*<)")
_TABLE_SPAN = re.compile(r"(?is)<table.*?</table>")
# Fixed lines with their separator, mobiles only after 电话/手机 (a run of table digits may look like one).
_PHONE = re.compile(r"(?<!\d)(0\d{2,3}\s*[-—–－]{1,2}\s*\d{3,4})(\d{4})(?!\d)|(?<=[话机][:：])(\s*1[3-9]\d{5})(\d{4})(?!\d)")
_META_CHARSET = re.compile(r"""<meta[^>]*charset\s*=\s*["']?[A-Za-z0-9_\-]+["']?[^>]*>""", re.I)
_PINYIN = "(?:[(（][a-zü\u0101\u00e1\u01ce\u00e0\u0113\u00e9\u011b\u00e8\u012b\u00ed\u01d0\u00ec\u014d\u00f3\u01d2\u00f2\u016b\u00fa\u01d4\u00f9\u01d6\u01d8\u01da\u01dc]{1,6}[)）])?"


def new_agency(rng: random.Random) -> tuple[str, str, str]:
    """(agency, region, the rest) of a generated agency."""
    stem = rng.choice(_STEM_CHARS) + rng.choice(_STEM_CHARS)
    region = stem + rng.choice(_REGION_SUFFIX)
    roll = rng.random()
    if roll < 0.75:
        rest = rng.choice(DEPARTMENTS)
    elif roll < 0.90:
        rest = "人民政府"
    else:
        rest = rng.choice(_STEM_CHARS) + rng.choice(_STEM_CHARS) + rng.choice(_TOWN_SUFFIX) + "人民政府"
    return region + rest, region, rest


def _agency_pattern(names: dict[str, str], pinyin: bool) -> tuple[re.Pattern, dict[str, str]]:
    keys = sorted((k for k in names if k), key=len, reverse=True)
    if pinyin:
        parts = ["".join(re.escape(ch) + _PINYIN for ch in k) for k in keys]
    else:
        parts = [re.escape(k) for k in keys]
    return re.compile("|".join(f"({p})" for p in parts)), {str(i + 1): names[k] for i, k in enumerate(keys)}


def replace_agency(text: str, old: str, new: tuple[str, str, str], traditional: bool = False, pinyin: bool = False) -> str:
    """The template's agency, region and department part → the new ones, in one pass."""
    agency, region, rest = new
    m = _ADMIN.match(old)
    old_region, old_rest = (m.group(1), m.group(2)) if m else ("", old)
    names = {old: agency}
    if old_region and old_region != old and len(old_region) >= 2:
        names[old_region] = region
    if len(old_rest) >= 3 and old_rest != old:
        names[old_rest] = rest
    if traditional:
        names = {s2t(k): s2t(v) for k, v in names.items()}
    pattern, by_group = _agency_pattern(names, pinyin)
    return pattern.sub(lambda mm: by_group[str(mm.lastindex)], text)


def shift_years(text: str, delta: int) -> str:
    if delta == 0:
        return text

    def year(m: re.Match) -> str:
        if m.group(1):
            return m.group(1)
        y = int(m.group(2))
        return str(y + delta) if 2010 <= y <= 2030 else m.group(2)

    text = _DIGIT_DATE_LINE.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + delta}{m.group(3)}{m.group(4)}", text)
    text = _YEAR.sub(year, text)

    def leap(m: re.Match) -> str:
        y = int(m.group(1))
        is_leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
        return m.group(0) if is_leap else m.group(0)[:-2] + "28"

    return _LEAP.sub(leap, text)


def _scaled(number: str, k: int, bump: int = 0) -> str:
    if "." in number:
        return f"{float(number) * k + bump:.2f}".rstrip("0").rstrip(".")
    return str(int(number) * k + bump)


def scale_cells(text: str, pattern: re.Pattern, k: int, rng: random.Random, error: bool) -> str:
    """Every table cell of `pattern` times k; with `error`, one cell off by one."""
    hits = [m for m in pattern.finditer(text) if not re.fullmatch(r"20[0-3]\d\d{2,4}", m.group(2))]
    wrong = rng.randrange(len(hits)) if error and hits else -1
    if k == 1 and wrong < 0:
        return text
    out, pos = [], 0
    for i, m in enumerate(hits):
        out.append(text[pos : m.start(2)])
        out.append(_scaled(m.group(2), k, 1 if i == wrong else 0))
        pos = m.end(2)
    out.append(text[pos:])
    return "".join(out)


def scale_html_tables(text: str, k: int, rng: random.Random, error: bool) -> str:
    spans = list(_TABLE_SPAN.finditer(text))
    if not spans:
        return text
    counts = [len(_HTML_CELL.findall(s.group(0))) for s in spans]
    total = sum(counts)
    wrong = rng.randrange(total) if error and total else -1
    out, pos, seen = [], 0, 0
    for span, count in zip(spans, counts):
        out.append(text[pos : span.start()])
        local = wrong - seen if 0 <= wrong - seen < count else -1
        index = iter(range(count))

        def cell(m: re.Match, local=local, index=index) -> str:
            i = next(index)
            return m.group(1) + _scaled(m.group(2), k, 1 if i == local else 0) + m.group(3)

        out.append(_HTML_CELL.sub(cell, span.group(0)))
        seen += count
        pos = span.end()
    out.append(text[pos:])
    return "".join(out)


def scale_counts(text: str, pattern: re.Pattern, factor: float) -> str:
    if factor == 1:
        return text
    return pattern.sub(lambda m: str(max(0, round(int(m.group(1)) * factor))), text)


def vary_phones(text: str, rng: random.Random) -> str:
    tails: dict[str, str] = {}

    def phone(m: re.Match) -> str:
        head, tail = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        tails.setdefault(head + tail, f"{rng.randrange(10000):04d}")
        return head + tails[head + tail]

    return _PHONE.sub(phone, text)


def markdown_to_html(text: str, charset: bool = True) -> str:
    """A markdown report as the web page it came from: paragraphs, and pipe tables as <table>."""
    lines = text.splitlines()
    title = next((line.strip() for line in lines if line.strip()), "")
    out = ["<!DOCTYPE html>", '<html lang="zh-CN">', "<head>"]
    if charset:
        out.append('<meta charset="utf-8">')
    out += [f"<title>{escape(title)}</title>", "</head>", "<body>"]
    in_table = False
    for line in lines:
        s = line.strip()
        if s.startswith("|") and s.count("|") >= 2:
            if re.match(r"^\|?\s*:?-{2,}", s):
                continue
            if not in_table:
                out.append('<table border="1" cellspacing="0"><tbody>')
                in_table = True
            cells = s.strip("|").split("|")
            out.append("<tr>" + "".join(f"<td>{escape(c.strip()) or '&nbsp;'}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</tbody></table>")
            in_table = False
        if s:
            out.append(f"<p>{escape(s)}</p>")
    if in_table:
        out.append("</tbody></table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def make_report(index: int, seed: int, shared: str = str(SHARED)) -> tuple[str, bytes, dict]:
    """Report number `index`: (file name, bytes, what it is)."""
    rng = random.Random(f"{seed}:{index}")
    templates = load_templates(shared)
    family = _pick(rng, FAMILY_WEIGHTS)
    template = rng.choice(templates[family])
    variant = _pick(rng, VARIANTS[family])
    year = rng.randint(*template.years)
    agency = new_agency(rng)
    k = rng.choice((1, 1, 2, 3, 5)) if family != "crawler" else 1
    error = family != "crawler" and rng.random() < ERROR_RATE

    text = template.text
    traditional_source = family == "pinyin"
    text = replace_agency(text, template.agency, agency, traditional=traditional_source, pinyin=traditional_source)
    text = shift_years(text, year - template.year)
    text = vary_phones(text, rng)
    if family == "crawler":
        text = scale_counts(text, _PUBLICATION_COUNT, rng.choice((0.5, 0.8, 1, 1.3, 2)))
    else:
        text = scale_counts(text, _COUNT, k)
        if family in ("flat", "pinyin"):
            text = scale_cells(text, _CELL_LINE, k, rng, error)
        elif family == "markdown":
            text = scale_cells(text, _PIPE_CELL, k, rng, error)
        else:
            text = scale_html_tables(text, k, rng, error)

    encoding = "utf-8"
    if variant == "html-md":
        text = markdown_to_html(text)
    elif variant == "html-md-gbk":
        text, encoding = markdown_to_html(text, charset=False), "gbk"
    elif variant == "html-gbk":
        text, encoding = _META_CHARSET.sub("", text, count=1), "gbk"
    if variant.endswith("-trad"):
        text = s2t(text)
    ext = {"md": ".md", "md-trad": ".md"}.get(variant, ".html" if variant.startswith("html") else ".txt")
    data = text.encode(encoding, errors="xmlcharrefreplace" if encoding == "gbk" else "strict")
    name = f"{index // 1000:03d}/{index:06d}.{family}.{variant}{ext}"
    meta = {"family": family, "variant": variant, "template": template.path.name, "year": year, "agency": agency[0], "k": k, "error": error}
    return name, data, meta


# Writing ------------------------------------------------------------------------------------


def _write_range(args: tuple[int, int, int, str, str]) -> dict:
    start, stop, seed, out, shared = args
    counts: dict[str, int] = {}
    errors = 0
    size = 0
    for i in range(start, stop):
        name, data, meta = make_report(i, seed, shared)
        path = Path(out) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        key = f"{meta['family']}/{meta['variant']}"
        counts[key] = counts.get(key, 0) + 1
        errors += meta["error"]
        size += len(data)
    return {"counts": counts, "errors": errors, "bytes": size}


def manifest_path(out: Path) -> Path:
    return out / "manifest.json"


def generate(n: int, out: Path, seed: int = 20250101, jobs: int = 2, shared: Path = SHARED, quiet: bool = False) -> dict:
    """Write reports 0..n-1 under `out` (reused when a manifest says it already holds them)."""
    out = Path(out)
    wanted = {"n": n, "seed": seed, "version": SYNTH_VERSION}
    mp = manifest_path(out)
    if mp.exists():
        manifest = json.loads(mp.read_text(encoding="utf-8"))
        if all(manifest.get(k) == v for k, v in wanted.items()):
            return manifest
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    load_templates(str(shared))  # fail early, and warm the cache before forking
    t0 = time.perf_counter()
    step = 500
    ranges = [(s, min(s + step, n), seed, str(out), str(shared)) for s in range(0, n, step)]
    totals: dict[str, int] = {}
    errors = size = 0
    if jobs > 1 and len(ranges) > 1:
        with Pool(jobs) as pool:
            parts = pool.imap_unordered(_write_range, ranges)
            for part in parts:
                for key, c in part["counts"].items():
                    totals[key] = totals.get(key, 0) + c
                errors += part["errors"]
                size += part["bytes"]
    else:
        for r in ranges:
            part = _write_range(r)
            for key, c in part["counts"].items():
                totals[key] = totals.get(key, 0) + c
            errors += part["errors"]
            size += part["bytes"]
    seconds = time.perf_counter() - t0
    manifest = {
        **wanted,
        "counts": dict(sorted(totals.items())),
        "with_error": errors,
        "bytes": size,
        "generate_seconds": round(seconds, 2),
    }
    mp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    if not quiet:
        print(f"synth: {n} reports, {size / 1e6:.0f} MB in {seconds:.1f} s under {out}", file=sys.stderr)
    return manifest


def files(out: Path) -> list[Path]:
    """The synthetic reports under `out`, in index order."""
    return sorted(p for p in Path(out).rglob("*") if p.is_file() and p.name != "manifest.json")


DEFAULT_SEED = 20250101


def default_dir(n: int, seed: int = DEFAULT_SEED) -> Path:
    return DEFAULT_BASE / (f"synth-{n}" if seed == DEFAULT_SEED else f"synth-{n}-{seed}")


def make_pdfs(out: Path, n: int = 60, shared: Path = SHARED) -> list[Path]:
    """The real PDFs of the corpus, repeated under new names (PDF content is not varied)."""
    sources = sorted((shared / "corpus").glob("*.pdf"))
    if not sources:
        raise SystemExit(f"no PDF under {shared / 'corpus'}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        src = sources[i % len(sources)]
        path = out / f"{i:04d}-{src.name}"
        if not path.exists() or path.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=None, help="default: /tmp/audits-bench/synth-N")
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--check", type=int, default=0, help="parse this many of them and print status per variant")
    args = ap.parse_args(argv)
    out = args.out or default_dir(args.n, args.seed)
    manifest = generate(args.n, out, args.seed, args.jobs)
    print(json.dumps(manifest, ensure_ascii=False, indent=1))
    if args.check:
        from collections import Counter

        from audits.workers import parse_file

        stats: Counter = Counter()
        for path in files(out)[: args.check]:
            r = parse_file(str(path), str(TEMPLATES_DIR))
            variant = "/".join(path.name.split(".")[1:3])
            stats[(variant, r.status, len(r.cells) > 150)] += 1
        for key, c in sorted(stats.items()):
            print(key, c)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
