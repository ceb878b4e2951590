"""``tekcos gui`` in a real window under Xvfb, driven by xdotool's real key
and mouse events, against a real ``twistd tekcos`` and a telnet-style user.

Needs Xvfb, xdotool and Tk (packages xvfb, xdotool, python3-tk or a Python
built with Tk).  Skipped where they are missing, except under
TEKCOS_REQUIRE_DISPLAY=1 (CI), where that is a failure.  The window
describes itself in the file named by TEKCOS_GUI_PROBE (what its widgets
show, read back from Tk); screenshots go to $TEKCOS_ARTIFACTS (default
build/artifacts/).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.twistd import REPO, User, wait_until

pytestmark = pytest.mark.display

ARTIFACTS = os.environ.get("TEKCOS_ARTIFACTS", os.path.join(REPO, "build", "artifacts"))
TEKCOS = [sys.executable, "-m", "tekcos.cli"]


def _require_display() -> None:
    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    try:
        import tkinter  # noqa: F401
    except ImportError:
        missing.append("tkinter")
    if missing:
        reason = f"missing {', '.join(missing)}"
        if os.environ.get("TEKCOS_REQUIRE_DISPLAY") == "1":
            pytest.fail(f"TEKCOS_REQUIRE_DISPLAY=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def display():
    """A private Xvfb screen (its number chosen by Xvfb), stopped afterwards."""
    _require_display()
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read, 16)
        if not chunk:
            break
        number += chunk
    os.close(read)
    if not number.strip():
        xvfb.kill()
        pytest.fail("Xvfb did not start")
    yield f":{number.decode().strip()}"
    xvfb.terminate()
    xvfb.wait(10)


class Gui:
    """``tekcos gui`` as a user runs it, on ``display``."""

    def __init__(self, display: str, tmp_path, *args: str):
        self.display = display
        self.probe = str(tmp_path / "window.json")
        self.env = {**os.environ, "DISPLAY": display, "TEKCOS_GUI_PROBE": self.probe}
        self.log = open(tmp_path / "gui.log", "wb")
        self.proc = subprocess.Popen([*TEKCOS, "gui", *args], env=self.env, cwd=REPO,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        found = wait_until(lambda: self._xdotool("search", "--class", "tekcos").split(),
                           what="the window to appear")
        self.window = found[0]

    def _xdotool(self, *args: str) -> str:
        return subprocess.run(["xdotool", *args], env=self.env, capture_output=True,
                              text=True).stdout

    def seen(self) -> dict:
        try:
            with open(self.probe, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def until(self, condition, what: str, timeout: float = 20.0) -> dict:
        return wait_until(lambda: (lambda s: s if s and condition(s) else None)(self.seen()),
                          timeout=timeout, what=what)

    def type(self, text: str, enter: bool = True) -> None:
        self._xdotool("windowfocus", "--sync", self.window)
        self._xdotool("type", "--delay", "15", text)
        if enter:
            self.key("Return")

    def key(self, *keys: str) -> None:
        self._xdotool("key", *keys)

    def click(self, x: int, y: int, times: int = 1) -> None:
        self._xdotool("mousemove", "--sync", str(x), str(y))
        self._xdotool("click", "--repeat", str(times), "--delay", "80", "1")

    def screenshot(self, name: str) -> None:
        from PIL import ImageGrab
        os.makedirs(ARTIFACTS, exist_ok=True)
        ImageGrab.grab(xdisplay=self.display).crop((0, 0, 1000, 680)).save(
            os.path.join(ARTIFACTS, name))

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        self.log.close()
        return self.proc.wait(10)


def tab(seen: dict, key: str) -> dict | None:
    return next((t for t in seen.get("tabs", ()) if t["key"] == key), None)


def test_the_window_chats_in_tabs_sends_and_receives_files(start, display, tmp_path):
    server = start()                       # chat and pushes on the same port number
    tom = User(server.port, "tom")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    gui = Gui(display, tmp_path, f"127.0.0.1:{server.port}", "--nick", "gina",
              "--downloads", str(downloads))
    try:
        seen = gui.until(lambda s: "You are in lobby" in (tab(s, "#lobby") or {}).get("text", "")
                         and {m["nick"] for m in s["members"]} == {"gina", "tom"},
                         "the window in the lobby with its members")
        assert tab(seen, "#lobby")["selected"] and seen["title"].startswith("tekcos — gina")

        # A line typed with real key events reaches the telnet user, and back.
        gui.type("hello tom, 안녕")
        tom.expect("<gina> hello tom, 안녕".encode())
        tom.send(b"/msg gina psst, https://example.org/x\n")
        seen = gui.until(lambda s: tab(s, "tom") is not None, "a private tab for tom")
        assert tab(seen, "tom")["title"] == "tom (1, @1)" and "psst" in tab(seen, "tom")["text"]
        # Another room: a tab of its own, and the lobby's lines count as unread there.
        gui.type("/join dev")
        gui.until(lambda s: (tab(s, "#dev") or {}).get("selected"), "the #dev tab, selected")
        tom.send(b"are you there gina?\n")
        seen = gui.until(lambda s: tab(s, "#lobby")["title"] == "#lobby (1, @1)",
                         "an unread mention in the lobby")
        assert "are you there" not in tab(seen, "#dev")["text"]
        assert [m["nick"] for m in seen["members"]] == ["gina"]     # of #dev only
        gui.screenshot("gui-chat.png")

        # A modal dialog (the file chooser) does not stop the network.
        gui.key("ctrl+o")
        time.sleep(0.5)
        tom.send(b"/msg gina while the dialog is open\n")
        gui.until(lambda s: "while the dialog is open" in tab(s, "tom")["text"],
                  "a line that arrived under the modal dialog", timeout=5)
        gui.key("Escape")

        # Send a file to tom: back in the lobby, double-click him (a private
        # tab), then Send file…
        sent = tmp_path / "report.bin"
        sent.write_bytes(os.urandom(3_000_000))
        gui.type("/switch lobby")
        seen = gui.until(lambda s: len(s["members"]) == 2 and tab(s, "#lobby")["selected"],
                         "the lobby's members")
        tom_row = next(m for m in seen["members"] if m["nick"] == "tom")
        gui.click(tom_row["x"], tom_row["y"], times=2)
        gui.until(lambda s: tab(s, "tom")["selected"], "tom's tab, selected")
        gui.key("ctrl+o")
        time.sleep(0.5)
        gui._xdotool("type", "--delay", "10", str(sent))
        gui.key("Return")
        offer = tom.expect(rb"gina offers you report\.bin \(3\.0 MB\)\. /accept \d+")
        tom.send(offer.rsplit(b" ", 1)[0].rsplit(b". ", 1)[1] + b" " +
                 offer.rsplit(b" ", 1)[1] + b"\n")
        ready = tom.expect(rb"tekcos get \S+ --from")
        seen = gui.until(lambda s: s["transfers"] and s["transfers"][0][6].startswith("✓"),
                         "the transfer row done")
        assert seen["transfers"][0][0] == "report.bin" and seen["transfers"][0][1] == "↑"
        # What the server kept for tom is the file, verified by a fetch.
        code = ready.rsplit(b"tekcos get ", 1)[1].split()[0].decode()
        fetched = tmp_path / "tom"
        got = subprocess.run([*TEKCOS, "get", code, "--from", f"127.0.0.1:{server.port}",
                              "-o", str(fetched), "-q"], cwd=REPO, capture_output=True,
                             timeout=60)
        assert got.returncode == 0, got.stderr
        assert (fetched / "report.bin").read_bytes() == sent.read_bytes()

        # A file offered to gina: Accept, clicked; saved in her downloads.
        offered = tmp_path / "slides.odp"
        offered.write_bytes(os.urandom(2_000_000))
        push = subprocess.Popen([*TEKCOS, "push", str(offered), "--to",
                                 f"127.0.0.1:{server.port}", "--for", "gina", "-q",
                                 "--as", "tom"], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        seen = gui.until(lambda s: s["offers"], "the offer bar")
        assert seen["offers"][0]["text"].startswith("📄 tom offers you slides.odp")
        gui.screenshot("gui-offer.png")
        gui.click(seen["offers"][0]["x"], seen["offers"][0]["y"])
        # The Save dialog, its name field filled in with the offer's: saved elsewhere.
        saved = tmp_path / "kept" / "slides from tom.odp"
        saved.parent.mkdir()
        time.sleep(0.5)
        gui.key("ctrl+a", "ctrl+k")
        gui._xdotool("type", "--delay", "10", str(saved))
        gui.key("Return")
        assert push.wait(60) == 0, push.stderr.read()
        wait_until(lambda: saved.exists(), what="the accepted file saved where chosen")
        assert not (downloads / "slides.odp").exists()
        assert [p.name for p in saved.parent.iterdir()] == [saved.name]   # no part file left
        digest = hashlib.sha256(saved.read_bytes()).hexdigest()
        assert digest == hashlib.sha256(offered.read_bytes()).hexdigest()
        seen = gui.until(lambda s: len(s["transfers"]) == 2 and s["transfers"][1][6].startswith(
            "✓"), "the download row done")
        assert seen["transfers"][1][:4] == ["slides from tom.odp", "↓",
                                             f"127.0.0.1:{server.port}", "100% of 2.0 MB"]
        assert seen["transfers"][1][6] == f"✓ saved as {saved}" and not seen["offers"]
        gui.screenshot("gui-transfers.png")

        # Ctrl+N: the Neighbours window asks the server (which has not scanned).
        gui.key("ctrl+n")
        seen = gui.until(lambda s: s["neighbours"] == [] and "No scan yet" in tab(
            s, "tom")["text"], "the Neighbours window, and the server's answer")
        table = gui._xdotool("search", "--name", "^Neighbours$").split()
        gui._xdotool("windowfocus", "--sync", table[0])
        gui.key("Escape")
        gui.until(lambda s: s["neighbours"] is None, "the Neighbours window closed")

        # Ctrl+Q leaves the chat with /quit and closes the window.
        gui.key("ctrl+q")
        assert gui.proc.wait(10) == 0
        tom.expect(b"gina has quit")
    finally:
        gui.close()
