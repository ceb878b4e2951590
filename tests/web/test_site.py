"""The page's view of files kept for people (web/site.py): what this node
keeps has a /get/ address; a file on its way here, or kept on another
node, says so instead of a 404 that reads like a wrong CODE."""
from types import SimpleNamespace

from twisted.web.test.requesthelper import DummyRequest

from tekcos.delivery import Ready
from tekcos.web.site import Web, _Kept

HERE, COMING, ELSEWHERE = "H" * 22, "C" * 22, "E" * 22


class Deliveries:
    def __init__(self, ready):
        self.ready = ready

    def files_for(self, session):
        return self.ready

    def lookup(self, code, now):
        return next((r for r in self.ready if r.code == code and not r.where), None)

    def coming(self, code):
        return code == COMING

    def kept_elsewhere(self, code):
        return "10.0.0.1:9000" if code == ELSEWHERE else None


def kept(code, where=""):
    return Ready(code, ".for/a.txt" if not where else "", "a.txt", 10, "ab" * 32 if not where
                 else "", "alice", "", "bob", 0.0, 100.0, where=where)


def web_with(deliveries):
    web = Web.__new__(Web)
    web.chat = SimpleNamespace(hub=SimpleNamespace(deliveries=deliveries))
    web.clock = SimpleNamespace(seconds=lambda: 1.0)
    return web


def test_the_files_list_gives_an_address_only_to_what_this_node_keeps():
    web = web_with(Deliveries([kept(HERE), kept(COMING, "10.0.0.1:9000"),
                               kept(ELSEWHERE, "10.0.0.1:9000")]))
    files = web.files_for(session=None)
    assert [(f["url"], f.get("note")) for f in files] == [
        (None, f"kept on another node: tekcos get {ELSEWHERE} --from 10.0.0.1:9000"),
        (None, "on its way to this server"),
        (f"/get/{HERE}", None)]


def render(web, code: str, tmp_path) -> tuple[int, bytes, DummyRequest]:
    request = DummyRequest([b""])
    child = _Kept(web, str(tmp_path)).getChild(code.encode(), request)
    body = child.render(request)
    if not isinstance(body, bytes):          # written to the request instead
        body = b"".join(request.written)
    return request.responseCode or 200, body, request


def test_get_says_a_file_is_coming_or_where_it_is_kept(tmp_path):
    web = web_with(Deliveries([]))
    status, body, request = render(web, COMING, tmp_path)
    assert status == 503 and request.responseHeaders.getRawHeaders(b"retry-after") == [b"2"]
    assert b"on its way to this server" in body
    status, body, _ = render(web, ELSEWHERE, tmp_path)
    assert status == 404 and f"tekcos get {ELSEWHERE} --from 10.0.0.1:9000".encode() in body
    status, body, _ = render(web, "W" * 22, tmp_path)
    assert status == 404 and b"wrong or expired code" in body
