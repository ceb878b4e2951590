"""Throw-away network labs in Linux network namespaces, for tests and
benchmarks that must not touch the machine's real interfaces.

Everything a :class:`Lab` creates (namespaces, veth pairs, bridges, nftables
rules inside them) carries its prefix and is removed by :meth:`Lab.close`.
Needs root and iproute2 (nftables for loss).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid


class LabUnavailable(RuntimeError):
    pass


def check_available() -> None:
    """Raise LabUnavailable saying what is missing."""
    if os.geteuid() != 0:
        raise LabUnavailable("network namespaces need root")
    if shutil.which("ip") is None:
        raise LabUnavailable("iproute2 ('ip') is not installed")
    probe = f"tkprobe{uuid.uuid4().hex[:6]}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode:
        raise LabUnavailable(f"cannot create a network namespace: {result.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def run(*cmd: str, input: str | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")
    return result.stdout


class Lab:
    def __init__(self, prefix: str | None = None):
        check_available()
        self.prefix = prefix or f"tk{uuid.uuid4().hex[:6]}"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.ports: dict[str, str] = {}   # host namespace -> its bridge port

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ns(self, name: str) -> str:
        full = f"{self.prefix}-{name}"
        run("ip", "netns", "add", full)
        self.namespaces.append(full)
        self.exec(full, "ip", "link", "set", "lo", "up")
        return full

    def exec(self, ns: str, *cmd: str, input: str | None = None) -> str:
        return run("ip", "netns", "exec", ns, *cmd, input=input)

    def popen(self, ns: str, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kwargs)
        self.processes.append(proc)
        return proc

    def link(self, ns_a: str, addr_a: str, ns_b: str, addr_b: str, mtu: int = 1500) -> tuple[str, str]:
        """A veth pair between two namespaces; addresses in CIDR form."""
        tag = uuid.uuid4().hex[:5]
        dev_a, dev_b = f"va{tag}", f"vb{tag}"
        run("ip", "link", "add", dev_a, "mtu", str(mtu), "netns", ns_a, "type", "veth",
            "peer", "name", dev_b, "mtu", str(mtu), "netns", ns_b)
        for ns, dev, addr in ((ns_a, dev_a, addr_a), (ns_b, dev_b, addr_b)):
            self.exec(ns, "ip", "addr", "add", addr, "dev", dev)
            self.exec(ns, "ip", "link", "set", dev, "up")
        return dev_a, dev_b

    def bridge(self, ns: str, name: str = "br0") -> str:
        self.exec(ns, "ip", "link", "add", name, "type", "bridge")
        self.exec(ns, "ip", "link", "set", name, "up")
        return name

    def attach(self, host_ns: str, switch_ns: str, bridge: str, addrs: list[str] | str,
               mac: str | None = None, dev: str = "eth1") -> str:
        """Plug a host namespace into a bridge: a veth named ``dev`` in the
        host (with ``addrs`` and ``mac``), its peer enslaved to the bridge."""
        tag = uuid.uuid4().hex[:6]
        port = f"p{tag}"
        run("ip", "link", "add", dev, "netns", host_ns, "type", "veth", "peer", "name", port,
            "netns", switch_ns)
        self.ports[host_ns] = port
        self.exec(switch_ns, "ip", "link", "set", port, "master", bridge)
        self.exec(switch_ns, "ip", "link", "set", port, "up")
        if mac:
            self.exec(host_ns, "ip", "link", "set", dev, "address", mac)
        for addr in [addrs] if isinstance(addrs, str) else addrs:
            self.exec(host_ns, "ip", "addr", "add", addr, "dev", dev)
        self.exec(host_ns, "ip", "link", "set", dev, "up")
        return dev

    def drop_arp(self, ns: str, dev: str, percent: float, replies_only: bool = False) -> None:
        """Drop ``percent`` % of the ARP frames arriving on ``dev``.

        Capture taps (libpcap, so arp-scan) see a frame before the ingress
        hook drops it; to hide replies from every scanner alike, drop them on
        the bridge ports the hosts send through (``replies_only=True``)."""
        threshold = int(round(percent * 100))
        match = "ether type arp arp operation reply" if replies_only else "ether type arp"
        rules = f"""
table netdev tekcos_loss {{
    chain ingress_{dev} {{
        type filter hook ingress device "{dev}" priority 0; policy accept;
        {match} numgen random mod 10000 < {threshold} counter drop
    }}
}}
"""
        self.exec(ns, "nft", "-f", "-", input=rules)

    def drop_udp(self, ns: str, dev: str, percent: float) -> None:
        """Drop ``percent`` % of the UDP frames arriving on ``dev`` (nftables,
        netdev ingress, so it works on a veth without tc netem)."""
        if shutil.which("nft") is None:
            raise LabUnavailable("nftables ('nft') is not installed")
        # numgen works on integers: use parts per 10,000.
        threshold = int(round(percent * 100))
        rules = f"""
table netdev tekcos_loss {{
    chain ingress_{dev} {{
        type filter hook ingress device "{dev}" priority 0; policy accept;
        ether type ip ip protocol udp numgen random mod 10000 < {threshold} counter drop
    }}
}}
"""
        self.exec(ns, "nft", "-f", "-", input=rules)

    def drop_larger_than(self, ns: str, dev: str, size: int) -> None:
        """Drop every IPv4 packet longer than ``size`` bytes arriving on
        ``dev``, silently: a switch on the way without jumbo frames (the
        kernel's own MTU check lets some through, as GSO trains)."""
        if shutil.which("nft") is None:
            raise LabUnavailable("nftables ('nft') is not installed")
        rules = f"""
table netdev tekcos_mtu {{
    chain ingress_{dev} {{
        type filter hook ingress device "{dev}" priority 0; policy accept;
        ether type ip ip length > {size} counter drop
    }}
}}
"""
        self.exec(ns, "nft", "-f", "-", input=rules)

    def clear_loss(self, ns: str) -> None:
        """Remove every drop rule of drop_udp/drop_arp in ``ns`` (if any)."""
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "netdev",
                        "tekcos_loss"], capture_output=True)

    def dropped(self, ns: str) -> tuple[int, int]:
        """(packets, bytes) dropped by drop_udp rules in ``ns``."""
        out = self.exec(ns, "nft", "list", "table", "netdev", "tekcos_loss")
        packets = bytes_ = 0
        for line in out.splitlines():
            words = line.split()
            if "counter" in words and "drop" in words:
                i = words.index("packets")
                packets += int(words[i + 1])
                bytes_ += int(words[words.index("bytes") + 1])
        return packets, bytes_

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for ns in reversed(self.namespaces):
            # Anything still running in it goes with it.
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()
