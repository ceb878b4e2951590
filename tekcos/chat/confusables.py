"""Look-alike names: Unicode TR39 skeletons and invisible characters.

Two nicks whose skeletons are equal look the same on screen (``аlice`` with
a Cyrillic ``а`` and ``alice``).  The skeleton of a string is
``NFD(map(NFD(s)))``, where ``map`` replaces each character by its
prototype from Unicode's confusables data (TR39 section 4).  A name made
only of default-ignorable characters (fillers such as U+3164, zero-width
characters) shows as nothing at all.

The data lives in ``confusables.json`` next to this module: every character
whose skeleton differs from itself, and the default-ignorable code point
ranges.  It was generated from ICU's spoof checker (ICU 72, Unicode 15.0,
the same Unicode version as Python 3.11's ``unicodedata``); regenerate it
with ``python -m tekcos.chat.confusables`` where PyICU is installed.
"""
from __future__ import annotations

import bisect
import json
import os
import sys
import unicodedata

DATA = os.path.join(os.path.dirname(__file__), "confusables.json")
_table: dict[str, str] | None = None
_ignorable_starts: list[int] = []
_ignorable_ends: list[int] = []


def _load() -> dict[str, str]:
    global _table, _ignorable_starts, _ignorable_ends
    if _table is None:
        with open(DATA, encoding="utf-8") as f:
            data = json.load(f)
        _ignorable_starts = [start for start, _ in data["ignorable"]]
        _ignorable_ends = [end for _, end in data["ignorable"]]
        _table = data["skeleton"]
    return _table


def skeleton(text: str) -> str:
    """The TR39 skeleton of ``text``: equal skeletons look alike."""
    table = _load()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(c, c) for c in decomposed))


def is_ignorable(ch: str) -> bool:
    """Whether ``ch`` is a Default_Ignorable_Code_Point (invisible)."""
    _load()
    cp = ord(ch)
    i = bisect.bisect_right(_ignorable_starts, cp) - 1
    return i >= 0 and cp <= _ignorable_ends[i]


def _generate() -> dict:
    import icu  # PyICU: only needed to regenerate the data
    checker = icu.SpoofChecker()
    table = {}
    ignorable = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if icu.Char.hasBinaryProperty(c, icu.UProperty.DEFAULT_IGNORABLE_CODE_POINT):
            if ignorable and ignorable[-1][1] == cp - 1:
                ignorable[-1][1] = cp
            else:
                ignorable.append([cp, cp])
        if unicodedata.category(c) == "Cn" or unicodedata.normalize("NFD", c) != c:
            continue
        mapped = checker.getSkeleton(0, c)
        if mapped != c:
            table[c] = mapped
    return {"source": f"ICU {icu.ICU_VERSION}, Unicode {icu.UNICODE_VERSION}",
            "skeleton": table, "ignorable": ignorable}


if __name__ == "__main__":
    with open(DATA, "w", encoding="utf-8") as out:
        json.dump(_generate(), out, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        out.write("\n")
    sys.stdout.write(f"wrote {DATA}\n")
