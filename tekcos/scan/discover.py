"""Finding tekcos servers on the LAN for ``tekcos chat`` without a host:
first the servers that announce themselves over mDNS (tekcos/mdns.py); if
none does, an ARP scan, then a HELLO to every neighbour; without raw-socket
rights, a HELLO to the subnet's broadcast address instead."""
from __future__ import annotations

from tekcos.hello import hello_replies
from tekcos.hosts import DEFAULT_PORT
from tekcos.scan import engine
from tekcos.scan import iface as ifaces


def find_servers(port: int = DEFAULT_PORT, system=None, scan=engine.scan,
                 wait: float = 0.5, browse=None) -> tuple[list, str]:
    """[(ip, info)] of tekcos servers on the LAN, and how they were found.
    ``wait``: seconds to wait for answers.  ``browse(wait=...)``: the mDNS
    look (:func:`tekcos.mdns.browse`)."""
    if browse is None:
        from tekcos.mdns import browse
    announced = browse(wait=max(wait, 1.0))
    if announced:
        return announced, "mDNS"
    selection = ifaces.select(system or ifaces.local_system())
    try:
        engine.check_permission()
    except engine.ScanPermissionError:
        return (hello_replies([str(selection.network.broadcast_address)], port, wait,
                              broadcast=True), "broadcast")
    result = scan(selection, tries=2)
    return hello_replies([str(h.ip) for h in result.hosts], port, wait), "ARP scan"
