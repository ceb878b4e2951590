"""The ``tekcos`` command: ``tekcos chat``, ``tekcos push``, ``tekcos get``, ``tekcos scan``,
``tekcos gui``.

Exit statuses are the same for every command (:mod:`tekcos.exits`)."""
from __future__ import annotations

import argparse
import sys

from tekcos import __version__, exits
from tekcos.hosts import DEFAULT_PORT, parse_address


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tekcos", description="LAN chat hub client tools. "
                                     "The server runs with: twistd -n tekcos --port 9000")
    parser.add_argument("--version", action="version", version=f"tekcos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chat = sub.add_parser("chat", help="chat on a tekcos server",
                          description="Connect to a tekcos chat server. In a pipe, stdin "
                          "lines are sent and server lines printed; at end of input the "
                          "client quits. Exit status: 0 after /quit, 1 nick refused, "
                          "3 server unreachable or gone.")
    chat.add_argument("address", metavar="HOST[:PORT]", nargs="?",
                      help="server (port 9000 by default); without it, tekcos servers on the "
                      "LAN are found and listed")
    chat.add_argument("--nick", help="nick to take (otherwise the first line you type)")
    chat.add_argument("--wait", type=float, default=0.5, metavar="SECONDS",
                      help="without HOST: how long to wait for servers to answer (0.5)")
    chat.add_argument("--downloads", default=".", metavar="DIR",
                      help="where files you /accept are fetched to (the current directory)")
    push = sub.add_parser("push", help="send files or a message over UDP",
                          description="Push files (or a short message) to a tekcos server over "
                          "UDP with Selective Repeat. Exit status: 0 all delivered and verified, "
                          "1 refused or failed by the server, 2 usage error, 3 server unreachable "
                          "or silent, 130 interrupted (the same command run again continues "
                          "where it stopped).")
    push.add_argument("files", nargs="*", metavar="FILE")
    push.add_argument("--to", required=True, metavar="HOST[:PORT]",
                      help="the server (UDP port 9000 by default)")
    push.add_argument("--message", metavar="TEXT", help="push a short message instead of files")
    push.add_argument("--for", dest="recipient", metavar="NICK",
                      help="keep the files on the server for NICK (or '#ROOM': everyone in "
                      "that room), who is asked first and then told how to fetch them")
    push.add_argument("--wait-accept", type=float, default=300.0, metavar="SECONDS",
                      help="with --for: how long to wait for the answer (300)")
    push.add_argument("--as", dest="as_name", metavar="NAME",
                      help="the name the server shows as the sender (default: your user name)")
    push.add_argument("--json", action="store_true",
                      help="one JSON object per file on stdout")
    push.add_argument("--timeout", type=float, default=10.0,
                      help="give up when the server has not answered for this many seconds (10)")
    push.add_argument("--window", type=int, default=8192, help="packets in flight at most (8192)")
    push.add_argument("--payload", type=int, default=None,
                      help="bytes of data per datagram (default: as many as one packet of the "
                      "path's MTU holds: 1448 on Ethernet, up to 8948 with jumbo frames)")
    push.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    push.add_argument("--no-resume", dest="resume", action="store_false",
                      help="send the whole file even if the server kept part of it from an "
                      "interrupted push")
    push.add_argument("--background", action="store_true",
                      help="yield to other traffic: back off as soon as queues on the way grow "
                      "by more than 2.5 ms (LEDBAT, RFC 6817); for backups and other pushes "
                      "that can wait")
    get = sub.add_parser("get", help="fetch a file kept for you (sent with push --for)",
                         description="Fetch a file that was sent to you: the chat told you "
                         "'tekcos get CODE --from HOST:PORT'. Over UDP with Selective Repeat; "
                         "verified; an interrupted run is continued by the same command. Exit "
                         "status: 0 received and verified, 1 refused (wrong or expired code) "
                         "or failed, 2 usage error, 3 server unreachable or silent, 130 "
                         "interrupted.")
    get.add_argument("code", metavar="CODE")
    get.add_argument("--from", dest="source", required=True, metavar="HOST[:PORT]",
                     help="the server (UDP port 9000 by default)")
    get.add_argument("-o", "--output", default=".", metavar="DIR",
                     help="directory to save into (the current one); never overwrites")
    get.add_argument("--json", action="store_true", help="one JSON object on stdout")
    get.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    get.add_argument("--timeout", type=float, default=10.0,
                     help="give up when the server has not answered for this many seconds (10)")
    scan = sub.add_parser("scan", help="list the devices on the local subnet (ARP)",
                          description="ARP-scan the local subnet. Needs root or CAP_NET_RAW. "
                          "Exit status: 0 scanned, 1 cannot scan here, 2 usage error.")
    from tekcos.scan.command import add_arguments
    add_arguments(scan)
    gui = sub.add_parser("gui", help="the desktop window (Tk)",
                         description="Open the desktop window: chat in tabs, send and receive "
                         "files, find servers on the LAN. Exit status: 0 when closed, 2 when "
                         "no window can open (no Tk, no display).")
    from tekcos.gui.app import add_arguments as gui_arguments
    gui_arguments(gui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "chat":
        return _chat(args)
    if args.command == "push":
        return _push(args)
    if args.command == "get":
        return _get(args)
    if args.command == "gui":
        from tekcos.gui.app import run as gui
        return gui(args)
    if args.command == "scan":
        from tekcos.scan.command import run
        try:
            return run(args)
        except KeyboardInterrupt:
            return 0
    return 2


def _push(args) -> int:
    from tekcos.push import command
    return _checked_run("push", command, args)


def _get(args) -> int:
    from tekcos.push import get
    return _checked_run("get", get, args)


def _checked_run(name: str, module, args) -> int:
    """``module.check_args(args)`` (a usage error: one line, status 2), then
    ``module.run(reactor, args)`` to completion."""
    try:
        module.check_args(args)
    except module.UsageError as e:
        print(f"tekcos {name}: {e}", file=sys.stderr)
        return exits.USAGE
    return _react(lambda reactor: module.run(reactor, args))


def _react(main) -> int:
    """Run ``main(reactor)`` (returning a Deferred exit status) to completion."""
    from twisted.internet import task
    result = {}

    def run(reactor):
        d = main(reactor)
        d.addCallback(lambda code: result.setdefault("code", code))
        return d

    try:
        task.react(run)
    except SystemExit as e:
        if e.code not in (0, None):
            return result.get("code", e.code)
    return result.get("code", 0)


def _discover(wait: float) -> str | None:
    """Find tekcos servers on the LAN and let the user pick one."""
    from tekcos.scan import discover
    from tekcos.scan import iface as ifaces
    try:
        servers, how = discover.find_servers(wait=wait)
    except ifaces.ScanSetupError as e:
        print(f"tekcos chat: cannot look for servers: {e}; give HOST[:PORT]", file=sys.stderr)
        return None
    if not servers:
        print(f"tekcos chat: no tekcos server answered on this LAN ({how}); give HOST[:PORT]",
              file=sys.stderr)
        return None
    def where(ip: str, info: dict) -> str:
        host = f"[{ip}]" if ":" in ip else ip
        return f"{host}:{info.get('chat_port') or DEFAULT_PORT}"

    for i, (ip, info) in enumerate(servers, 1):
        print(f"{i}. {where(ip, info)}  {info.get('server', '?')} "
              f"(tekcos {info.get('version', '?')}, found by {how})")
    if len(servers) == 1:
        choice = 0
    elif sys.stdin.isatty():
        answer = input(f"Connect to which server [1-{len(servers)}]? ").strip()
        if not answer.isdecimal() or not 1 <= int(answer) <= len(servers):
            print("tekcos chat: no server chosen", file=sys.stderr)
            return None
        choice = int(answer) - 1
    else:
        print("tekcos chat: several servers found; give HOST[:PORT]", file=sys.stderr)
        return None
    return where(*servers[choice])


def _chat(args) -> int:
    from tekcos.chat import client as chat_client
    if args.address is None:
        args.address = _discover(args.wait)
        if args.address is None:
            return exits.UNREACHABLE
        print(f"*** connecting to {args.address}", file=sys.stderr)
    try:
        parse_address(args.address)
    except ValueError as e:
        print(f"tekcos chat: {e}", file=sys.stderr)
        return exits.USAGE
    if args.nick is not None:
        from tekcos.chat.names import nick_error
        problem = nick_error(args.nick)
        if problem:
            print(f"tekcos chat: --nick: {problem}", file=sys.stderr)
            return exits.USAGE
    def run(reactor):
        from tekcos.push.actions import FileActions

        def files(say):
            return FileActions(reactor, args.address, say, args.downloads)
        d = chat_client.chat(reactor, args.address, args.nick, files=files)

        def failed(failure):
            failure.trap(chat_client.ChatFailure)
            print(f"tekcos chat: {failure.value}", file=sys.stderr)
            return failure.value.code

        return d.addErrback(failed)

    return _react(run)


if __name__ == "__main__":
    sys.exit(main())
