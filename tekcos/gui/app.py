"""``tekcos gui [HOST[:PORT]] [--nick NAME]``: the desktop window.

Tk runs on the main thread; the Twisted reactor runs in a daemon thread
(``installSignalHandlers=False``), so a modal dialog (a file chooser, the
nick prompt) never stops the network: ``tksupport``, which drives the
reactor from Tk's loop, froze completely under a modal dialog.  The two
threads meet in :class:`~tekcos.gui.link.Hop` (to Tk) and
``reactor.callFromThread`` (to the reactor).

Exit status: 0 when the window is closed, 2 when it cannot open (no Tk in
this Python, no display, a bad argument).
"""
from __future__ import annotations

import getpass
import os
import sys
import threading
import time

from tekcos import exits

NO_TK = ("tekcos gui: this Python has no Tk; install it (Debian/Ubuntu: apt install python3-tk; "
         "macOS and Windows: the python.org installer) and try again")


def add_arguments(parser) -> None:
    parser.add_argument("address", metavar="HOST[:PORT]", nargs="?",
                        help="server to connect to; without it, Find servers lists those "
                        "on the LAN")
    parser.add_argument("--nick", help="nick to take (asked for otherwise)")
    parser.add_argument("--downloads", default=os.path.expanduser("~/Downloads")
                        if os.path.isdir(os.path.expanduser("~/Downloads")) else ".",
                        metavar="DIR", help="where accepted files are saved (~/Downloads)")


def _theme(root) -> None:
    """sv-ttk where it is installed (pip install ".[gui]"), clam otherwise."""
    try:
        import sv_ttk
    except ImportError:
        from tkinter import ttk
        ttk.Style(root).theme_use("clam")
        return
    sv_ttk.set_theme("light", root)


def run(args) -> int:
    try:
        import tkinter as tk
        from tkinter import simpledialog
    except ImportError:
        print(NO_TK, file=sys.stderr)
        return exits.USAGE
    from tekcos.chat.names import nick_error
    if args.nick is not None and nick_error(args.nick):
        print(f"tekcos gui: --nick: {nick_error(args.nick)}", file=sys.stderr)
        return exits.USAGE
    try:
        root = tk.Tk(className="tekcos")
    except tk.TclError as e:
        print(f"tekcos gui: cannot open a window: {e}", file=sys.stderr)
        return exits.USAGE
    _theme(root)
    nick = args.nick
    while not nick:
        nick = simpledialog.askstring("tekcos", "Your nick:", parent=root,
                                      initialvalue=getpass.getuser())
        if nick is None:
            root.destroy()
            return exits.OK
        nick = nick.strip()
        if nick_error(nick):
            simpledialog.messagebox.showerror("tekcos", nick_error(nick), parent=root)
            nick = None

    from twisted.internet import reactor

    from tekcos.gui.link import Hop, Link
    from tekcos.gui.window import Window

    hop = Hop()
    root.createfilehandler(hop.read_fd, tk.READABLE, lambda fd, mask: hop.run_pending())
    window = Window(root, reactor.callFromThread, None, args.address, nick, args.downloads,
                    time.monotonic, probe=os.environ.get("TEKCOS_GUI_PROBE"))
    window.link = Link(reactor, hop.post, window, window.transfers, args.downloads)
    link = window.link

    thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                              name="reactor", daemon=True)
    thread.start()

    def close() -> None:
        def left(_):
            hop.post(root.destroy)
        reactor.callFromThread(lambda: link.close().addBoth(left))
        root.after(3000, root.destroy)    # the server did not let go: leave anyway
    root.protocol("WM_DELETE_WINDOW", close)
    root.bind("<Control-q>", lambda e: close())
    if args.address:
        window.connect()
    try:
        root.mainloop()
    except KeyboardInterrupt:
        pass
    reactor.callFromThread(reactor.stop)
    thread.join(5)
    hop.close()
    return exits.OK
