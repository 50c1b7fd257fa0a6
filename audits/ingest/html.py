"""Web pages: the article's text as lines, each data table's row as a `| a | b |` row.

Tables that lay out the page (the article in a cell beside a menu, a whole body in one cell) are
walked like any other block; only tables that hold data become rows.
"""

from __future__ import annotations

from lxml import etree

from audits.ingest.rows import pipe_row
from audits.model import SourceText

_BLOCK_TAGS = {
    "p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "tr",
    "table", "ul", "ol", "header", "footer", "title", "center", "blockquote", "pre", "dd", "dt",
    "td", "th",  # reached only inside layout tables: each cell is a block of the page
}
_DROP_TAGS = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head"}
# Longer than any cell of a data table: the longest label of the unified template is 36 characters,
# and the longest cell of the real pages under ../shared 37.
_PROSE = 300
# One XPath, evaluated by libxml2: checking cell by cell in Python cost 2 ms a table.
_LAYOUT = etree.XPath(
    "boolean(.//*[self::table or self::h1 or self::h2 or self::h3 or self::h4 or self::h5 or self::h6]"
    f" | (./tr | ./*/tr)/*[self::td or self::th][string-length() > {_PROSE}])"
)


def read_html(source: str, text: str, encoding: str, problems: tuple[str, ...] = ()) -> SourceText:
    import lxml.html

    try:
        # As UTF-8 bytes with the encoding fixed: lxml refuses a str that carries its own encoding
        # declaration (XHTML's <?xml … encoding="…"?>), and the text is decoded already.
        root = lxml.html.document_fromstring(text.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - lxml raises several types on junk
        return SourceText(source, "html", encoding, [], problems=problems + ("网页无法解析",))
    lines: list[str] = []
    title = root.findtext(".//title") or ""
    if title.strip():
        lines.append(title.strip())
    buffer: list[str] = []
    _walk_html(root, lines, buffer)
    _flush(buffer, lines)
    return SourceText(source, "html", encoding, lines, problems=problems)


def _flush(buffer: list[str], lines: list[str]) -> None:
    text = "".join(buffer).strip()
    if text:
        lines.extend(part.strip() for part in text.split("\n") if part.strip())
    buffer.clear()


def _walk_html(node, lines: list[str], buffer: list[str]) -> None:
    tag = node.tag if isinstance(node.tag, str) else ""
    if tag in _DROP_TAGS:
        _append_tail(node, buffer)
        return
    if tag == "table" and not _lays_out(node):
        _flush(buffer, lines)
        lines.extend(_html_table_rows(node))
        _append_tail(node, buffer)
        return
    if tag in _BLOCK_TAGS:
        _flush(buffer, lines)
    if node.text and tag:
        buffer.append(node.text)
    for child in node:
        _walk_html(child, lines, buffer)
    if tag in _BLOCK_TAGS:
        _flush(buffer, lines)
    _append_tail(node, buffer)


def _append_tail(node, buffer: list[str]) -> None:
    if node.tail:
        buffer.append(node.tail)


def _lays_out(table) -> bool:
    """Whether a table lays out the page rather than holding data: it holds another table or a
    heading, or one of its own cells holds prose longer than any cell of a data table."""
    return bool(_LAYOUT(table))


def _html_table_rows(table) -> list[str]:
    rows = []
    for tr in table.iter("tr"):
        cells = [td.text_content() for td in tr if isinstance(td.tag, str) and td.tag in ("td", "th")]
        if cells:
            rows.append(pipe_row(cells))
    return rows
