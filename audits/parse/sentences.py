"""What a sentence is: text up to and including a sentence end (。；;!?！？).

One definition for the parser (Python, a line at a time: the period statement and contacts) and
the rules (Polars, over the whole batch's lines: claims, negations, mentions, enumerations).
"""

from __future__ import annotations

import re

import polars as pl

SENTENCE = r"[^。；;!?！？]+[。；;!?！？]?"
_SENTENCE = re.compile(SENTENCE)


def split(text: str) -> list[str]:
    """The sentences of one line, stripped, empty ones left out."""
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def split_expr(text: pl.Expr) -> pl.Expr:
    """The same split in Polars: a list of sentences per line (strip and drop empties after exploding)."""
    return text.str.extract_all(SENTENCE)
