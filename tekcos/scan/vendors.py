"""MAC vendor names, offline, from the manufacturer data scapy ships
(Wireshark's ``manuf``), matching the longest registered prefix: MA-S (36
bits), MA-M (28 bits), then MA-L (24 bits)."""
from __future__ import annotations

_TABLE: dict[int, dict[int, str]] | None = None


def _load() -> dict[int, dict[int, str]]:
    from scapy.libs.manuf import DATA  # lazily: decompressing it takes ~0.1 s
    table: dict[int, dict[int, str]] = {24: {}, 28: {}, 36: {}}
    for line in DATA.split("\n"):
        if not line or line[0] == "#":
            continue
        parts = line.split("\t")
        prefix = parts[0].strip()
        name = (parts[2] if len(parts) > 2 and parts[2].strip() else parts[1]).strip()
        bits = 24
        if "/" in prefix:
            prefix, _, size = prefix.partition("/")
            bits = int(size)
        try:
            value = int(prefix.replace(":", "").replace("-", ""), 16)
        except ValueError:
            continue
        digits = len(prefix.replace(":", "").replace("-", ""))
        value >>= max(0, digits * 4 - bits)
        if bits in table:
            table[bits][value] = name
    return table


def normalize(mac: str) -> int:
    """48-bit integer from ``aa:bb:..``, ``AA-BB-..`` or ``aabb..``."""
    digits = mac.replace(":", "").replace("-", "").replace(".", "")
    if len(digits) != 12:
        raise ValueError(f"not a MAC address: {mac!r}")
    return int(digits, 16)


def local_admin(mac: str) -> bool:
    """Locally administered (randomised phone/VM) MACs carry bit 1 of octet 0."""
    return bool((normalize(mac) >> 40) & 0x02)


def vendor(mac: str) -> str | None:
    global _TABLE
    if _TABLE is None:
        _TABLE = _load()
    value = normalize(mac)
    for bits in (36, 28, 24):
        name = _TABLE[bits].get(value >> (48 - bits))
        if name:
            return name
    return None
