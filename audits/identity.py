"""Agency identity: one agency named with or without its city or province prefix is one agency.

淮安市洪泽区人民政府 and 洪泽区人民政府 are the same government; 淮安市人民政府 is another. A prefix
(X省, X自治区, X市, X州, X盟) is dropped only when what remains still starts with a place name of
its own, so a city's own bureaus keep their city. A manifest can pin an identity instead.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^[\u4e00-\u9fff]{2,8}?(?:省|自治区|市|自治州|州|盟|地区)")
_PLACE_START = re.compile(r"^[\u4e00-\u9fff]{1,8}?(?:市|区|县|旗|自治县|镇|乡|街道)")


def agency_key(name: str) -> str:
    """The identity of an agency named `name` (its name without redundant place prefixes)."""
    key = re.sub(r"\s+", "", name or "")
    while True:
        m = _PREFIX.match(key)
        if not m:
            return key
        rest = key[m.end() :]
        if not _PLACE_START.match(rest) or len(rest) < 4:
            return key
        key = rest
