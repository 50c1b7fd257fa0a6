"""Web pages: the article's text as lines, each table row as a `| a | b |` row."""

from __future__ import annotations

from audits.ingest.rows import pipe_row
from audits.model import SourceText

_BLOCK_TAGS = {
    "p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "tr",
    "table", "ul", "ol", "header", "footer", "title", "center", "blockquote", "pre", "dd", "dt",
}
_DROP_TAGS = {"script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head"}


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
    if tag == "table":
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


def _html_table_rows(table) -> list[str]:
    rows = []
    for tr in table.iter("tr"):
        cells = [td.text_content() for td in tr if isinstance(td.tag, str) and td.tag in ("td", "th")]
        if cells:
            rows.append(pipe_row(cells))
    return rows
