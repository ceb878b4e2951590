"""Making user text safe to show to others."""
from __future__ import annotations

import re

# C0/C1 controls and DEL: never forwarded, so nobody can send terminal escape
# sequences (screen clearing, title setting, ...) to other users.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Apply backspaces (Windows telnet sends them in character mode), turn
    tabs into spaces and drop every other control character."""
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
