"""The desktop window's responsiveness: round trip of a typed line and idle CPU.

Starts ``twistd tekcos`` on loopback and, in this process, the window of
``tekcos gui`` (Tk on the main thread, the reactor in its thread, exactly
as ``tekcos gui`` runs them) on the display in $DISPLAY (run under
``xvfb-run`` on a machine without a screen).  Measures, in one invocation:

1. Round trip: a line entered in the window's input (the same handler as
   the Return key) until the server's echo of it is drawn in the room's
   tab, every 50 ms (the server started with --rate 0: no pacing); p50/p99 against a plain-socket client doing the same
   through the same server at the same moment (the baseline: what the
   server and loopback cost).  Target: p99 <= 20 ms.
2. Under a modal dialog: a dialog with a grab is held open for 2 s (as a
   file chooser would be) while a plain-socket member says a line every
   50 ms; each line's time from its send to being drawn in the window's
   tab, against the same member's lines with no dialog open.  Target: the
   dialog adds <= 50 ms.
3. Idle CPU of the open, connected window over 10 s (user + system time of
   this process, both threads), against the server process idle beside it.
   Target: <= 1%.

Usage: xvfb-run -a python bench/gui.py [--lines 400]
Traffic stays on 127.0.0.1.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from common import HOST, ROOT, free_port

sys.path.insert(0, ROOT)
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def plain_round_trips(port: int, count: int, results: list) -> None:
    sock = socket.create_connection((HOST, port))
    buffer = b""

    def until(token: bytes) -> None:
        nonlocal buffer
        while token not in buffer:
            buffer += sock.recv(65536)
        buffer = buffer[buffer.index(token) + len(token):]
    until(b"Choose a nick")
    sock.sendall(b"plain\n")
    until(b"You are in")
    for i in range(count):
        marker = f"plain-{i}-mark".encode()
        started = time.perf_counter()
        sock.sendall(marker + b"\n")
        until(marker)
        results.append(time.perf_counter() - started)
        time.sleep(0.05)
    sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=400)
    args = parser.parse_args()
    import psutil
    import tkinter as tk

    from twisted.internet import reactor

    from tekcos.gui.link import Hop, Link
    from tekcos.gui.window import Window

    port = free_port()
    state = tempfile.mkdtemp(prefix="tekcos-bench-gui-")
    log = open(os.path.join(state, "server.log"), "wb")
    server = subprocess.Popen([*TWISTD, "-n", "--pidfile=", "-l", "-", "tekcos", "--no-mdns", "--port",
                               str(port), "--udp-port", "0", "--rate", "0", "--state-dir", state,
                               "--downloads", state], stdout=log, stderr=subprocess.STDOUT,
                              cwd=ROOT)
    for _ in range(200):
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)

    root = tk.Tk(className="tekcos")
    hop = Hop()
    root.createfilehandler(hop.read_fd, tk.READABLE, lambda fd, mask: hop.run_pending())
    window = Window(root, reactor.callFromThread, None, f"{HOST}:{port}", "bench", state,
                    time.monotonic)
    window.link = Link(reactor, hop.post, window, window.transfers, state)
    threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                     daemon=True).start()
    window.connect()

    pending: dict[str, float] = {}
    window_rtt: list[float] = []
    plain_rtt: list[float] = []
    shown = window.server_line

    def server_line(line: str) -> None:
        shown(line)                      # drawn in its tab before the clock stops
        for marker in [m for m in pending if m in line]:
            root.update_idletasks()
            window_rtt.append(time.perf_counter() - pending.pop(marker))
    window.server_line = server_line

    def joined() -> bool:
        return "#lobby" in window.model.tabs

    def wait(condition, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            root.update()
            time.sleep(0.002)

    wait(joined, 10)
    if not joined():
        sys.exit("the window did not join the server")
    plain = threading.Thread(target=plain_round_trips, args=(port, args.lines, plain_rtt))
    plain.start()
    for i in range(args.lines):
        marker = f"window-{i}-mark"
        window.entry.insert(0, marker)
        pending[marker] = time.perf_counter()
        window._entered()
        wait(lambda: marker not in pending, 5)
        wait(lambda: False, 0.05)
    plain.join()

    # Lines from another member, drawn in the window, with and without a modal dialog.
    speaker = socket.create_connection((HOST, port))
    speaker.sendall(b"speaker\n")
    wait(lambda: any("speaker joined" in line.text
                     for line in window.model.tabs["#lobby"].lines), 5)

    def speak(prefix: str, count: int) -> None:
        for i in range(count):
            marker = f"{prefix}-{i}-mark"
            pending[marker] = time.perf_counter()
            speaker.sendall(marker.encode() + b"\n")
            time.sleep(0.05)
    window_rtt_before = len(window_rtt)
    talk = threading.Thread(target=speak, args=("free", 30))
    talk.start()
    wait(lambda: not talk.is_alive() and not pending, 10)
    free_rtt = window_rtt[window_rtt_before:]
    modal_start = len(window_rtt)
    dialog = tk.Toplevel(root)
    tk.Label(dialog, text="a modal dialog").pack()
    dialog.grab_set()
    talk = threading.Thread(target=speak, args=("modal", 30))
    root.after(10, talk.start)
    root.after(2000, dialog.destroy)
    root.wait_window(dialog)              # Tk's nested loop, as a file chooser runs
    talk.join()
    wait(lambda: not pending, 5)
    modal_rtt = window_rtt[modal_start:]
    del window_rtt[window_rtt_before:]
    speaker.close()

    me = psutil.Process()
    served = psutil.Process(server.pid)
    before = (sum(me.cpu_times()[:2]), sum(served.cpu_times()[:2]), time.monotonic())
    end = time.monotonic() + 10
    root.after(int(10_000), root.quit)
    root.mainloop()                       # idle, as a user's open window is
    while time.monotonic() < end:
        time.sleep(0.05)
    after = (sum(me.cpu_times()[:2]), sum(served.cpu_times()[:2]), time.monotonic())
    seconds = after[2] - before[2]

    def line(name, values):
        ms = [v * 1000 for v in values]
        return (f"{name:<26} n={len(ms):<4} p50 {statistics.median(ms):6.2f} ms   "
                f"p99 {percentile(ms, 99):6.2f} ms   max {max(ms):6.2f} ms")
    print(line("window (type -> drawn)", window_rtt))
    print(line("plain socket (baseline)", plain_rtt))
    print(f"{'ratio p99 window/plain':<26} "
          f"{percentile(window_rtt, 99) / percentile(plain_rtt, 99):.2f}")
    print(line("member -> drawn, no dialog", free_rtt))
    print(line("member -> drawn, modal open", modal_rtt))
    print(f"{'modal adds (p99)':<26} "
          f"{(percentile(modal_rtt, 99) - percentile(free_rtt, 99)) * 1000:+.2f} ms")
    print(f"idle CPU over {seconds:.1f} s: window {100 * (after[0] - before[0]) / seconds:.2f}%"
          f"   server {100 * (after[1] - before[1]) / seconds:.2f}%")
    server.terminate()
    server.wait(10)
    reactor.callFromThread(reactor.stop)


if __name__ == "__main__":
    main()
