"""Every format writes a table row the same way, so that one table grammar reads them all."""

from __future__ import annotations

import re

_WRAPPED = re.compile(r"\s*\n\s*")
_NUMBERS_ONLY = re.compile(r"[\d.,\s\-—/]+")


def _cell_text(text: str | None) -> str:
    # Wrapped labels inside one cell are one label: join their lines without a space.
    return _WRAPPED.sub("", (text or "")).replace("|", "｜").strip()


def pipe_row(cells: list[str | None]) -> str:
    """A table row as `| a | b |`; a row with one filled cell is a title line, written plainly."""
    texts = [_cell_text(c) for c in cells]
    filled = [t for t in texts if t]
    if len(filled) == 1 and not _NUMBERS_ONLY.fullmatch(filled[0]):
        return filled[0]
    return "| " + " | ".join(texts) + " |"


