"""Finding tekcos servers on the LAN for ``tekcos chat`` without a host:
an ARP scan, then a HELLO to every neighbour; without raw-socket rights, a
HELLO to the subnet's broadcast address instead."""
from __future__ import annotations

import select
import socket
import time

from tekcos.scan import engine, iface as ifaces
from tekcos.transfer import wire


def hello_replies(targets: list[str], port: int, timeout: float = 0.5,
                  broadcast: bool = False) -> list[tuple[str, dict]]:
    hello = wire.encode(wire.HELLO, 0, 0, b" " * wire.HELLO_MIN)
    found: dict[str, dict] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)
        for ip in targets:
            try:
                sock.sendto(hello, (ip, port))
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                break
            try:
                data, addr = sock.recvfrom(2048)
                kind, _, _, payload = wire.decode(data)
                info = wire.decode_json(payload)
            except (OSError, wire.Malformed):
                continue
            if kind == wire.HELLO_REPLY and info.get("tekcos") == 1:
                found[addr[0]] = info
    return sorted(found.items(), key=lambda item: socket.inet_aton(item[0]))


def find_servers(port: int = 9000, system=None, scan=engine.scan) -> tuple[list, str]:
    """[(ip, info)] of tekcos servers on the LAN, and how they were found."""
    selection = ifaces.select(system or ifaces.local_system())
    try:
        engine.check_permission()
    except engine.ScanPermissionError:
        return (hello_replies([str(selection.network.broadcast_address)], port,
                              broadcast=True), "broadcast")
    result = scan(selection, tries=2)
    return hello_replies([str(h.ip) for h in result.hosts], port), "ARP scan"
