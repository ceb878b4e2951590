"""Removing telnet protocol bytes from an input stream.

``telnet`` sends IAC (0xFF) command sequences, for example on Ctrl-C
(IAC IP) or when it negotiates options.  They must never reach other users or
break line parsing, and a sequence may be split across reads, so the filter
carries a small integer state from one call to the next.
"""
from __future__ import annotations

IAC, SB, SE = 255, 250, 240
WILL, WONT, DO, DONT = 251, 252, 253, 254

# States between chunks.
DATA, COMMAND, OPTION, SUBNEG, SUBNEG_IAC = 0, 1, 2, 3, 4


def strip_iac(data: bytes, state: int = DATA) -> tuple[bytes, int]:
    """Return ``data`` without telnet commands, and the state to pass with the
    next chunk.  ``IAC IAC`` stands for one literal 0xFF byte."""
    if state == DATA and IAC not in data:
        return data, DATA
    out = bytearray()
    for byte in data:
        if state == DATA:
            if byte == IAC:
                state = COMMAND
            else:
                out.append(byte)
        elif state == COMMAND:
            if byte == IAC:
                out.append(IAC)
                state = DATA
            elif byte in (WILL, WONT, DO, DONT):
                state = OPTION
            elif byte == SB:
                state = SUBNEG
            else:  # two-byte command: IP, AYT, BRK, NOP, GA, ...
                state = DATA
        elif state == OPTION:
            state = DATA
        elif state == SUBNEG:
            if byte == IAC:
                state = SUBNEG_IAC
        else:  # SUBNEG_IAC
            state = DATA if byte == SE else SUBNEG
    return bytes(out), state
