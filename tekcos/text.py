"""Making user text safe to show to others: chat lines, topics, pushed
messages, sender names and file names (shared by chat and push); sizes as
people read them."""
from __future__ import annotations

import re

# C0/C1 controls and DEL: never forwarded, so nobody can send terminal escape
# sequences (screen clearing, title setting, ...) to other users.  Bidi
# controls (embeddings, overrides, isolates, marks) and the Unicode line and
# paragraph separators are removed too: with them a line can show text in
# another order than it was typed (``invoice\u202efdp.exe`` shows as
# ``invoiceexe.pdf``) or break a line where the terminal does not expect it.
_BIDI_CHARS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI_CHARS}]")
_BIDI = re.compile(f"[{_BIDI_CHARS}]")


def strip_bidi(text: str) -> str:
    """``text`` without bidi controls and line/paragraph separators."""
    return _BIDI.sub("", text)


def clean_text(text: str) -> str:
    """Apply backspaces (Windows telnet sends them in character mode), turn
    tabs into spaces and drop every other control character, bidi controls
    and line/paragraph separators."""
    if "\x08" in text or "\x7f" in text:
        kept: list[str] = []
        for ch in text:
            if ch == "\x08" or ch == "\x7f":
                if kept:
                    kept.pop()
            else:
                kept.append(ch)
        text = "".join(kept)
    return _CONTROLS.sub("", text.replace("\t", " "))


def human_size(size: int) -> str:
    """``3000000`` -> ``3.0 MB`` (decimal units, as file managers show)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)
