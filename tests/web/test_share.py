"""The page's address for phones: as text, as an SVG QR code, in a terminal."""
import ipaddress
import xml.etree.ElementTree as ET

from twisted.web.test.requesthelper import DummyRequest

from tekcos.address import lan_address
from tekcos.web.share import ShareResource, page_url, qr_svg, qr_text


def test_page_url_brackets_ipv6_and_drops_default_ports():
    assert page_url("192.168.1.20", 8080) == "http://192.168.1.20:8080/"
    assert page_url("fd00::5", 8080) == "http://[fd00::5]:8080/"
    assert page_url("10.0.0.2", 443, secure=True) == "https://10.0.0.2/"
    assert page_url("10.0.0.2", 80) == "http://10.0.0.2/"
    assert page_url(None, 8080) is None


def test_the_code_is_an_svg_of_that_address_and_a_terminal_block():
    svg = qr_svg("http://192.168.1.20:8080/")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.find(".//{*}path") is not None
    assert "http://192.168.1.20:8080/" in svg.decode()          # its title
    assert qr_svg("http://192.168.1.21:8080/") != svg
    rows = qr_text("http://192.168.1.20:8080/").splitlines()
    # Version 2 (25 modules) plus a border of 2 on each side, two rows a line.
    assert len(rows) == (25 + 4 + 1) // 2 and all(len(r) == 29 for r in rows)
    assert set("".join(rows)) <= set("█▀▄ ")


def test_the_resource_serves_the_code_once_an_address_is_known():
    class Web:
        share_url = None
    resource = ShareResource(Web)
    request = DummyRequest([b""])
    assert resource.render_GET(request) == b"no address to share yet\n"
    assert request.responseCode == 404
    Web.share_url = "http://10.1.2.3:8080/"
    request = DummyRequest([b""])
    body = resource.render_GET(request)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"image/svg+xml"]
    assert b"http://10.1.2.3:8080/" in body


def test_the_lan_address_is_one_of_this_machines_addresses():
    import psutil
    address = lan_address()       # this machine and CI have a default route
    assert address is not None and not ipaddress.ip_address(address).is_loopback
    mine = {a.address for addresses in psutil.net_if_addrs().values() for a in addresses}
    assert address in mine
