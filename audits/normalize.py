"""Normalise report text in the order of domain.md §6.2, keeping each line's original beside it.

Order: pinyin annotations → traditional to simplified (OpenCC t2s) → NFKC → debris ('?' from lost
spaces, NBSP and other spaces). Chrome and spam stay in the text as lines: the parser reads the
publication date from the chrome and the rules report the spam, so neither may vanish here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from audits.model import Line

_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
# A Han character followed by "(pinyin)". The lookahead wants a vowel, so "(pdf)" or "(一)" survive.
PINYIN = re.compile(
    rf"(?<=[\u3400-\u9fff])[(（](?=[a-zü{_TONED}]*[aeiouü{_TONED}])[a-zü{_TONED}]{{1,6}}[)）]"
)
_DROPPED = re.compile(r"[\s\u00a0\u2000-\u200b\u3000\ufeff“”\"'‘’「」『』?]+")  # spaces, quotes and '?' at once
# These run over a whole document at once and never reach across a newline.
_SPACES = re.compile(r"(?:[^\S\n]|[\u00a0\u2000-\u200b\u3000\ufeff])+")
_DEBRIS_LEAD = re.compile(r"^(?:[^\S\n]|\?)*\?+", re.MULTILINE)
_DEBRIS_DIGIT = re.compile(r"\?+(?=\d)|(?<=\d)\?+")
_NUMERAL_DOT = re.compile(r"(?<=\d)[、．](?=[^\d\n])")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def strip_pinyin(text: str) -> str:
    return PINYIN.sub("", text)


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def compact(text: str) -> str:
    """The matching key of a label: NFKC, numerals' "、" as ".", no whitespace, quotes or '?'."""
    return compact_normalised(_NUMERAL_DOT.sub(".", unicodedata.normalize("NFKC", text)))


def compact_normalised(text: str) -> str:
    """`compact` of a line `normalise_lines` made (already NFKC, numerals already fixed)."""
    return _DROPPED.sub("", text)


@lru_cache(maxsize=4096)
def compact_label(label: str) -> str:
    """`compact` for the layouts' own words (labels, anchors, markers), which every report looks up."""
    return compact(label)


def is_blank_cell(raw: str, text: str) -> bool:
    """A line that printed something (NBSP, '?', ideographic space) but holds no text: an empty cell."""
    return not text and raw.strip(" \t\r\n") != ""


def normalise_lines(lines: list[str]) -> list[Line]:
    # NOTE: the whole document goes through each step in one call (OpenCC, NFKC, the debris and
    # space patterns, which stop at newlines); per-line calls cost several times more.
    simplified = _normalise("\n".join(lines)).split("\n")
    if len(simplified) != len(lines):  # NFKC never adds newlines, but be safe
        simplified = [_normalise(line) for line in lines]
    return [Line(no=no, raw=raw, text=text.strip()) for no, (raw, text) in enumerate(zip(lines, simplified), start=1)]


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", to_simplified(strip_pinyin(text)))
    text = _DEBRIS_DIGIT.sub("", _DEBRIS_LEAD.sub("", text))
    return _SPACES.sub(" ", _NUMERAL_DOT.sub(".", text))
