"""The server announced over mDNS/DNS-SD (tekcos/mdns.py): the records and
the service with a stand-in zeroconf, then the real thing between two
network namespaces (multicast never leaves the lab)."""
from __future__ import annotations

import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from twisted.internet import defer

from tekcos import mdns
from tests.twistd import REPO, serve_in, wait_until


def test_records_name_the_chat_and_the_page_and_the_host_label_is_a_dns_label():
    chat, web = mdns.records("lab-pc.example.org", 9000, 8080, "1.2", udp_port=9001,
                             node="")
    assert (chat.kind, chat.instance, chat.port) == (mdns.CHAT_TYPE, "tekcos on lab-pc", 9000)
    assert chat.properties == {"version": "1.2", "udp": "9001", "web": "8080"}
    assert (web.kind, web.instance, web.port, web.properties) == \
        (mdns.WEB_TYPE, "tekcos chat on lab-pc", 8080, {"path": "/"})
    assert [r.kind for r in mdns.records("h", 9000, None, "1")] == [mdns.CHAT_TYPE]
    assert mdns.records("h", None, None, "1") == []
    assert mdns.host_label("my_box (2).lan") == "my-box-2"
    assert mdns.host_label("...") == "tekcos" and len(mdns.host_label("x" * 99)) == 63
    assert len(mdns.records("h", 1, None, "1", node="ü" * 60)[0].instance.encode()) <= 63


def test_lan_addresses_leave_out_loopback_link_local_and_duplicates():
    a = socket.AF_INET
    b = socket.AF_INET6

    def interfaces():
        entry = lambda family, address: SimpleNamespace(family=family, address=address)  # noqa: E731
        return {"lo": [entry(a, "127.0.0.1"), entry(b, "::1")],
                "eth0": [entry(a, "192.168.1.20"), entry(b, "fe80::1%eth0"),
                         entry(b, "2001:db8::20"), entry(17, "aa:bb:cc:dd:ee:ff")],
                "eth1": [entry(a, "192.168.1.20"), entry(b, "fd00::7")]}
    assert mdns.lan_addresses(interfaces) == ["192.168.1.20", "2001:db8::20", "fd00::7"]


class FakeZeroconf:
    def __init__(self, fail=None):
        self.registered, self.calls, self.fail = [], [], fail

    def register_service(self, info, allow_name_change=False):
        if self.fail:
            raise self.fail
        self.registered.append((info, allow_name_change))

    def unregister_all_services(self):
        self.calls.append("goodbye")

    def close(self):
        self.calls.append("close")


def advertiser(zc, addresses=("10.0.0.5",)):
    recs = mdns.records("lab", 9000, 8080, "1.0", 9000)
    return mdns.Advertiser("lab", recs, lambda: list(addresses), zeroconf=lambda: zc,
                           in_thread=lambda f: defer.maybeDeferred(f))


def test_the_service_registers_every_record_and_says_goodbye_on_stop():
    zc = FakeZeroconf()
    service = advertiser(zc)
    service.startService()
    infos = [info for info, renames in zc.registered]
    assert all(renames for _, renames in zc.registered)     # a name clash is renamed
    assert [(i.type, i.name, i.port, i.server) for i in infos] == [
        (mdns.CHAT_TYPE, f"tekcos on lab.{mdns.CHAT_TYPE}", 9000, "lab.local."),
        (mdns.WEB_TYPE, f"tekcos chat on lab.{mdns.WEB_TYPE}", 8080, "lab.local.")]
    assert infos[0].parsed_addresses() == ["10.0.0.5"]
    assert infos[0].properties[b"udp"] == b"9000"
    service.stopService()
    assert zc.calls == ["goodbye", "close"]


@pytest.mark.parametrize("zc,addresses", [(FakeZeroconf(fail=OSError("no multicast")),
                                           ("10.0.0.5",)),
                                          (FakeZeroconf(), ())])
def test_where_it_cannot_announce_the_server_says_so_once_and_goes_on(zc, addresses):
    from twisted.logger import formatEvent, globalLogPublisher
    said = []

    def observe(event):
        if event.get("log_namespace", "").startswith("tekcos.mdns"):
            said.append(formatEvent(event))
    globalLogPublisher.addObserver(observe)
    try:
        service = advertiser(zc, addresses)
        service.startService()
        assert service.stopService() is None
    finally:
        globalLogPublisher.removeObserver(observe)
    assert len(said) == 1 and said[0].startswith("mDNS: not announced (")
    assert "no multicast" in said[0] or "no LAN address" in said[0]


BROWSE = """
import socket, sys
sys.path.insert(0, {repo!r})
from zeroconf import AddressResolver, Zeroconf
from tekcos import mdns
print("chat", mdns.browse(wait=1.5))
print("web", mdns.browse(mdns.WEB_TYPE, wait=1.5))
zc = Zeroconf()
name = mdns.host_label(socket.gethostname()) + ".local."
resolver = AddressResolver(name)
print("host", resolver.request(zc, 3000) and resolver.parsed_addresses())
zc.close()
"""


def test_phones_and_tekcos_chat_find_the_server_by_mdns_and_no_mdns_is_quiet(lab, tmp_path):
    a, b = lab.ns("srv"), lab.ns("phone")
    lab.link(a, "10.77.0.1/24", b, "10.77.0.2/24")
    log = tmp_path / "server.log"
    browse = BROWSE.format(repo=REPO)
    # --no-mdns: nothing answers.
    quiet = serve_in(lab, a, tmp_path / "dl", log=open(log, "w"), args=("--web", "8080"))
    heard = lab.exec(b, sys.executable, "-c", browse)
    assert "chat []" in heard and "web []" in heard and "host False" in heard
    quiet.terminate()
    quiet.wait(10)
    # On: the chat, the page and HOSTNAME.local answer from the other namespace.
    server = serve_in(lab, a, tmp_path / "dl", log=open(log, "w"),
                      args=("--web", "8080", "--mdns", "true"))
    wait_until(lambda: "mDNS: announced" in log.read_text(), timeout=20,
               what="the server to announce itself")
    host = mdns.host_label(socket.gethostname())
    assert f"the page is http://{host}.local:8080/" in log.read_text()
    heard = lab.exec(b, sys.executable, "-c", browse)
    assert f"chat [('10.77.0.1', {{'server': 'tekcos on {host}', 'version': " in heard
    assert "'chat_port': 9000})]" in heard
    assert f"web [('10.77.0.1', {{'server': 'tekcos chat on {host}'" in heard
    assert "'chat_port': 8080})]" in heard
    assert "host ['10.77.0.1']" in heard
    # The page answers to that name (a phone's browser sends it as Host).
    page = lab.exec(b, sys.executable, "-c", (
        "import urllib.request as u;"
        "r = u.urlopen(u.Request('http://10.77.0.1:8080/', headers={'Host': %r}), timeout=10);"
        "print(r.status, b'tekcos' in r.read())") % f"{host}.local:8080")
    assert page.split() == ["200", "True"]
    # tekcos chat with no host: found by mDNS, connected, heard.
    chat = lab.popen(b, [sys.executable, "-m", "tekcos.cli", "chat", "--nick", "phoney"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     cwd=REPO)
    out, err = chat.communicate(b"hello over mdns\n", timeout=30)
    assert "found by mDNS" in out.decode() + err.decode()
    assert "connecting to 10.77.0.1:9000" in err.decode()
    assert "<phoney> hello over mdns" in out.decode()
    server.terminate()
    server.wait(20)
    assert "Traceback" not in log.read_text()
