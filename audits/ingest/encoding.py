"""Bytes → text for pages and text files, and the signs that a text came out wrong.

The order follows what a browser does (a BOM, then the server's Content-Type charset, then the page's
own declaration: <meta charset> or <?xml encoding?>), then what Chinese government sites use: UTF-16
without a BOM (told by its NULs), UTF-8, GB18030 (a superset of GB2312 and GBK), then charset-normalizer
among the Chinese encodings (Big5 above all). A reading that decodes but comes out garbled is not
taken while another one reads cleanly; when none does, the text says so in a problem.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_\-]+)""")
# What only a wrong codec leaves: U+FFFD (bytes it could not decode), C1 controls (a Western
# single-byte codec over Chinese bytes), 锟斤拷 (UTF-8's own U+FFFD read as GBK).
_WRONG = "[\ufffd\x80-\x9f]|锟斤拷"
# What a Chinese report does not hold, more than a few for rare characters in names: private-use
# characters, kana, vertical presentation forms. Big5 read as GB18030 gives them by the hundred
# (Big5's commonest characters fall on GB2312's kana rows, its rarer ones on the private-use area).
_FOREIGN = "[\ue000-\uf8ff\u3040-\u30ff\ufe10-\ufe4f]"
_WRONG_RE, _FOREIGN_RE = re.compile(_WRONG), re.compile(_FOREIGN)
# Either, as one character class: a quick first look (most pieces hold neither).
_MARKS_RE = re.compile("[\ufffd\x80-\x9f锟\ue000-\uf8ff\u3040-\u30ff\ufe10-\ufe4f]")
# charset-normalizer's measure of chaos (odd symbols, accents between CJK, ...), per piece so that a
# garbled paragraph is not averaged away by the rest. The real reports under ../shared score at
# most 0.01 per piece; a garbled paragraph 0.2–3.
_PIECE, _MESSY = 500, 0.2
_C0_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f]")
# Not "0": U+3000, the ideographic space Chinese text indents with, is 00 30 in UTF-16.
_ASCII_MARKS = frozenset(b"\t\n\r !\"#$%&'()*+,-./123456789:;<=>?@")

MISMATCH = "{origin} {encoding} 与内容不符，已自动识别编码"
UNKNOWN = "{origin} {encoding} 不是可识别的编码，已自动识别编码"
SERVER, PAGE = "服务器声明的编码", "网页声明的编码"
# What charset-normalizer may choose from when nothing declared fits: reports are in Chinese, and
# left free it reads a short Big5 text as UTF-16, cp932 or cp949 (a third of table labels).
_CHINESE = ("gb18030", "big5hkscs", "utf_8")


def decode(data: bytes, declared: str | None = None) -> tuple[str, str, tuple[str, ...]]:
    """Bytes → (text, encoding, problems). `declared` is the charset of an HTTP Content-Type header."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            text = data.decode(enc, errors="replace")
            return text, enc, _garbled_problem(text, enc)
    tried: list[tuple[str, str]] = []  # (origin, encoding) of the readings that did not fit
    for origin, enc in _candidates(data, declared):
        text = _strict(data, enc)
        if text is not None and not garbled(text):
            return text, enc, _unfit(tried)
        tried.append((origin, enc))
    best = from_bytes(data, cp_isolation=list(_CHINESE)).best()
    if best is not None and not garbled(str(best)):
        return str(best), best.encoding, _unfit(tried)
    # Nothing reads cleanly: each candidate again with its undecodable bytes replaced, and the one
    # with the fewest garbled pieces kept, the first on a tie (a declared one before a guess). So a
    # GBK page cut inside a character stays GBK, and a UTF-8 page with a paragraph pasted from a GBK
    # one stays UTF-8.
    readings = [(enc, data.decode(enc, errors="replace")) for _, enc in tried if _known(enc)]
    readings += [(best.encoding, str(best))] if best is not None else []
    enc, text = min(readings, key=lambda reading: _bad_pieces(reading[1]))
    return text, enc, (*_unfit(tried, kept=enc), *_garbled_problem(text, enc))


def _strict(data: bytes, enc: str) -> str | None:
    try:
        return data.decode(enc)
    except (LookupError, UnicodeDecodeError):
        return None


def _unfit(tried: list[tuple[str, str]], kept: str = "") -> tuple[str, ...]:
    """A problem for each declared encoding that is not the one the text was read in."""
    return tuple(
        (MISMATCH if _known(enc) else UNKNOWN).format(origin=origin, encoding=enc)
        for origin, enc in tried
        if origin and enc != kept
    )


def _known(enc: str) -> bool:
    try:
        codecs.lookup(enc)
    except LookupError:
        return False
    return True


def _candidates(data: bytes, declared: str | None) -> list[tuple[str, str]]:
    """(origin, encoding) in the order to try; origin is empty for a guess."""
    page = _META_CHARSET.search(data[:4096]) or _XML_ENCODING.search(data[:1024])
    out = [(SERVER, declared or ""), (PAGE, page.group(1).decode("ascii") if page else ""), ("", utf16_order(data) or "")]
    out += [("", "utf-8"), ("", "gb18030")]
    seen, unique = set(), []
    for origin, enc in out:
        enc = canonical(enc) if enc else ""
        if enc and enc not in seen:
            seen.add(enc)
            unique.append((origin, enc))
    return unique


def canonical(enc: str) -> str:
    enc = enc.strip().lower()
    # GB2312 and GBK pages routinely use characters only GB18030 has: read them as GB18030. Big5
    # pages likewise use the Hong Kong additions (what browsers do for the label "big5").
    if enc in ("gb2312", "gbk", "gb_2312-80", "x-gbk", "cp936"):
        return "gb18030"
    if enc in ("big5", "big5-hkscs", "x-x-big5", "cn-big5", "cp950"):
        return "big5hkscs"
    return enc


def utf16_order(data: bytes) -> str | None:
    """UTF-16 without a BOM. Line ends, spaces, digits and ASCII punctuation are their byte and a NUL
    in UTF-16, the NUL on the side that gives the byte order; text in an 8-bit encoding holds no NUL,
    and random bytes hold as many on both sides. (A CJK character can hold a NUL too, 一 U+4E00, but
    beside a letter's byte, never one of these.) The start must also decode without control characters."""
    sample = data[:4096]
    if b"\x00" not in sample:
        return None
    units = list(zip(sample[0::2], sample[1::2]))
    le = sum(1 for a, b in units if b == 0 and a in _ASCII_MARKS)
    be = sum(1 for a, b in units if a == 0 and b in _ASCII_MARKS)
    if max(le, be) < 4 or min(le, be) * 4 > max(le, be):
        return None
    order = "utf-16-le" if le > be else "utf-16-be"
    try:
        # Not final unless the sample is the whole file: the cut may split a character.
        text = codecs.getincrementaldecoder(order)().decode(sample, final=len(sample) == len(data))
    except UnicodeDecodeError:
        return None
    return None if _C0_CONTROLS.search(text) else order


def garbled(text: str) -> bool:
    """Whether the text shows signs of the wrong codec."""
    return any(map(_bad, _pieces(text)))


def _bad_pieces(text: str) -> int:
    return sum(map(_bad, _pieces(text)))


def _pieces(text: str) -> list[str]:
    """The text in pieces of _PIECE characters, the last one as long as the others (a few symbols
    alone, such as " × — ", measure as chaos)."""
    last = max(0, len(text) - _PIECE)
    return [text[min(i, last) : min(i, last) + _PIECE] for i in range(0, len(text), _PIECE)]


def _bad(piece: str) -> bool:
    if piece.isascii():  # markup, scripts: no sign of any codec's mistake is ASCII
        return False
    if _MARKS_RE.search(piece) and (_WRONG_RE.search(piece) or len(_FOREIGN_RE.findall(piece)) * 100 > len(piece)):
        return True
    # Plain Chinese, every character in GB2312 or every one in Big5 (spaces of any width aside), is
    # not mojibake: UTF-8 read as GBK strays outside both (its continuation bytes 80–A0 make
    # characters only GBK has; none of 248 garbled pieces of the reports under ../shared, simplified
    # or traditional, stayed inside either). Most pieces stop here, before the costly measure.
    plain = "".join(piece.split())
    if _encodes(plain, "gb2312") or _encodes(plain, "big5"):
        return False
    # Chaos is measured where a quarter or more of the piece is not ASCII: markup, scripts, English
    # and markdown tables measure as chaos, and are never mojibake of Chinese. The whole measure
    # (threshold 1.0): with a lower one, mess_ratio reports the first messy stretch alone.
    not_ascii = len(piece) - len(piece.encode("ascii", errors="ignore"))
    return not_ascii * 4 >= len(piece) and mess_ratio(piece, 1.0) >= _MESSY


def _encodes(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _garbled_problem(text: str, enc: str) -> tuple[str, ...]:
    if not garbled(text):
        return ()
    return (f"按 {enc} 解码后仍有乱码（如“{_sample(text)}”），部分文字可能读错",)


def _sample(text: str) -> str:
    """A few characters around the first sign of garbling, control characters written as escapes."""
    m = _WRONG_RE.search(text) or _FOREIGN_RE.search(text)
    if m:
        piece = text[max(0, m.start() - 6) : m.start() + 10]
    else:
        piece = next(filter(_bad, _pieces(text)), "")
    piece = " ".join(piece.split())[:16]
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in piece)
