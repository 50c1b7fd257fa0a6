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
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200b\u3000\ufeff]+")
_QUOTES = re.compile(r"[“”\"'‘’「」『』]")
_DEBRIS_LEAD = re.compile(r"^[\s?]*\?+")
_DEBRIS_DIGIT = re.compile(r"\?+(?=\d)|(?<=\d)\?+")
_NUMERAL_DOT = re.compile(r"(?<=\d)[、．](?=\D)")


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def strip_pinyin(text: str) -> str:
    return PINYIN.sub("", text)


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def compact(text: str) -> str:
    """The matching key of a label: no whitespace, quotes or '?' (input already normalised)."""
    text = unicodedata.normalize("NFKC", text)
    text = _NUMERAL_DOT.sub(".", text)
    return _SPACES.sub("", _QUOTES.sub("", text)).replace("?", "")


def is_blank_cell(raw: str, text: str) -> bool:
    """A line that printed something (NBSP, '?', ideographic space) but holds no text: an empty cell."""
    return not text and raw.strip(" \t\r\n") != ""


def normalise_lines(lines: list[str]) -> list[Line]:
    # NOTE: the whole document goes through OpenCC in one call; per-line calls cost 10x more.
    joined = "\n".join(lines)
    simplified = unicodedata.normalize("NFKC", to_simplified(strip_pinyin(joined))).split("\n")
    if len(simplified) != len(lines):  # NFKC never adds newlines, but be safe
        simplified = [unicodedata.normalize("NFKC", to_simplified(strip_pinyin(s))) for s in lines]
    out = []
    for no, (raw, text) in enumerate(zip(lines, simplified), start=1):
        text = _DEBRIS_DIGIT.sub("", _DEBRIS_LEAD.sub("", text))
        text = _SPACES.sub(" ", _NUMERAL_DOT.sub(".", text)).strip()
        out.append(Line(no=no, raw=raw, text=text))
    return out
