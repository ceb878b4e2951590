"""How a phone finds the page: its address, as text and as a QR code.

At start-up the server logs the page's LAN address with a QR code of it in
the terminal; the page's **Share** item shows the same code, drawn here as
SVG (``/share.svg``: no script, no external service).  segno makes the code.
The address is this machine's LAN address (the one its route to the
outside world would use; see :func:`tekcos.address.lan_address`), so the
code works from a phone even when the operator opened the page as
``localhost``.
"""
from __future__ import annotations

import io

from twisted.web.resource import Resource

SVG_TYPE = b"image/svg+xml"


def page_url(host: str | None, port: int, secure: bool = False) -> str | None:
    """``http://HOST:PORT/`` (IPv6 in brackets); None without a host."""
    if not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if secure else "http"
    default = 443 if secure else 80
    return f"{scheme}://{shown}/" if port == default else f"{scheme}://{shown}:{port}/"


def qr_svg(url: str) -> bytes:
    """A QR code of ``url`` as a standalone SVG (dark on white, with its
    quiet zone, so that phones read it in dark mode too)."""
    import segno
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=4, dark="#000",
                                    light="#fff", title=url, xmldecl=False)
    return out.getvalue()


def qr_text(url: str) -> str:
    """The same code in block characters, for a terminal (two rows a line)."""
    import segno
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue().rstrip("\n")


class ShareResource(Resource):
    """``/share.svg``: the QR code of ``web.share_url`` (404 while unknown)."""

    isLeaf = True

    def __init__(self, web):
        super().__init__()
        self.web = web
        self._made: tuple[str, bytes] | None = None

    def render_GET(self, request):
        url = self.web.share_url
        if url is None:
            request.setResponseCode(404)
            return b"no address to share yet\n"
        if self._made is None or self._made[0] != url:
            self._made = (url, qr_svg(url))
        request.setHeader(b"content-type", SVG_TYPE)
        request.setHeader(b"cache-control", b"no-store")
        return self._made[1]
