"""A minimal terminal line editor that keeps the line being typed intact
while messages arrive (what ``tekcos chat`` does in a terminal).

Plain object: :meth:`LineEditor.feed` takes raw key bytes and returns the
bytes to write to the terminal plus the complete lines entered;
:meth:`LineEditor.show` returns the bytes that print incoming text above the
prompt and redraw the prompt with the unfinished line.
"""
from __future__ import annotations

import codecs
import unicodedata

ERASE_LINE = "\r\x1b[K"
CTRL_C, CTRL_D, CTRL_U, CTRL_W = "\x03", "\x04", "\x15", "\x17"


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class LineEditor:
    def __init__(self, prompt: str = "> ", encoding: str = "utf-8"):
        self.prompt = prompt
        self.buffer = ""
        self.eof = False
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self._escape = ""  # part of an escape sequence (arrow keys) being skipped

    def redraw(self) -> str:
        return ERASE_LINE + self.prompt + self.buffer

    def show(self, text: str) -> str:
        """Print ``text`` (lines) above the prompt, then redraw the prompt.
        Lines end in LF: the terminal (cbreak keeps output processing on)
        turns that into CR LF."""
        body = text.replace("\r\n", "\n").rstrip("\n")
        return ERASE_LINE + body + "\n" + self.prompt + self.buffer

    def feed(self, data: bytes) -> tuple[str, list[str]]:
        """Handle typed bytes; return (terminal output, lines entered)."""
        out: list[str] = []
        lines: list[str] = []
        for ch in self._decoder.decode(data):
            if self._escape:
                self._escape += ch
                # CSI sequences end with a letter or ~; two-character ones otherwise.
                if (len(self._escape) == 2 and ch not in "[O") or \
                        (len(self._escape) > 2 and (ch.isalpha() or ch == "~")):
                    self._escape = ""
                continue
            if ch == "\x1b":
                self._escape = ch
            elif ch in "\r\n":
                lines.append(self.buffer)
                self.buffer = ""
                out.append(ERASE_LINE + self.prompt)
            elif ch in "\x7f\x08":
                if self.buffer:
                    gone = self.buffer[-1]
                    self.buffer = self.buffer[:-1]
                    width = display_width(gone)
                    out.append("\b" * width + " " * width + "\b" * width)
            elif ch == CTRL_U:
                self.buffer = ""
                out.append(self.redraw())
            elif ch == CTRL_W:
                self.buffer = self.buffer.rstrip(" ")
                self.buffer = self.buffer[:len(self.buffer) - len(self.buffer.split(" ")[-1])]
                out.append(self.redraw())
            elif ch in (CTRL_C, CTRL_D):
                if ch == CTRL_D and self.buffer:
                    continue
                self.eof = True
                break
            elif ch == "\t":
                self.buffer += " "
                out.append(" ")
            elif ch.isprintable():
                self.buffer += ch
                out.append(ch)
        return "".join(out), lines
