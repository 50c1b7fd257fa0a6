"""Two passages shown side by side with their differences marked: the page of a finding of copied
text (the findings carry both passages, each a title and its text; the page marks them)."""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

from audits.kinds.narrative import FULL_SENTENCE


def marked(passages: list[dict]) -> list[dict]:
    """Each passage with `segments` `[text, differs]`: a sentence (or, in short passages, a run of
    characters) that the other passage does not have differs. Passages already marked are kept."""
    if len(passages) != 2 or any("text" not in p for p in passages):
        return passages
    ours, theirs = _segments(passages[0]["text"], passages[1]["text"])
    return [{"title": passages[0]["title"], "segments": ours}, {"title": passages[1]["title"], "segments": theirs}]


@lru_cache(maxsize=4096)
def _segments(a: str, b: str) -> tuple[list, list]:
    """Both passages' segments (the same passages copied into many reports are diffed once)."""
    if max(len(a), len(b)) <= 400:
        return _char_diff(a, b), _char_diff(b, a)
    return _sentence_diff(a, b), _sentence_diff(b, a)


def _sentence_diff(text: str, other: str) -> list[list]:
    keys = {re.sub(r"[^\u3400-\u9fffA-Za-z]", "", s) for s in re.findall(FULL_SENTENCE, other)}
    out: list[list] = []
    for line in text.split("\n"):
        for s in re.findall(FULL_SENTENCE, line):
            differs = re.sub(r"[^\u3400-\u9fffA-Za-z]", "", s) not in keys
            if out and out[-1][1] == differs:
                out[-1][0] += s
            else:
                out.append([s, differs])
        if out:
            out[-1][0] += "\n"
    return out


def _char_diff(text: str, other: str) -> list[list]:
    matcher = difflib.SequenceMatcher(None, text, other, autojunk=False)
    out: list[list] = []
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if i2 > i1:
            out.append([text[i1:i2], tag != "equal"])
    return out
