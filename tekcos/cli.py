"""The ``tekcos`` command: ``tekcos chat``."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tekcos", description="LAN chat hub client tools. "
                                     "The server runs with: twistd -n tekcos --port 9000")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    chat = sub.add_parser("chat", help="chat on a tekcos server",
                          description="Connect to a tekcos chat server. In a pipe, stdin "
                          "lines are sent and server lines printed; at end of input the "
                          "client quits. Exit status: 0 after /quit, 1 nick refused, "
                          "3 server unreachable or gone.")
    chat.add_argument("address", metavar="HOST[:PORT]", help="server (port 9000 by default)")
    chat.add_argument("--nick", help="nick to take (otherwise the first line you type)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "chat":
        return _chat(args)
    return 2


def _chat(args) -> int:
    from twisted.internet import task

    from tekcos import chat_client
    try:
        chat_client.parse_address(args.address)
    except ValueError as e:
        print(f"tekcos chat: {e}", file=sys.stderr)
        return chat_client.EXIT_USAGE
    if args.nick is not None:
        from tekcos.chat.names import nick_error
        problem = nick_error(args.nick)
        if problem:
            print(f"tekcos chat: --nick: {problem}", file=sys.stderr)
            return chat_client.EXIT_USAGE
    result = {}

    def run(reactor):
        d = chat_client.chat(reactor, args.address, args.nick)

        def failed(failure):
            failure.trap(chat_client.ChatFailure)
            print(f"tekcos chat: {failure.value}", file=sys.stderr)
            result["code"] = failure.value.code

        d.addCallbacks(lambda code: result.setdefault("code", code), failed)
        return d

    try:
        task.react(run)
    except SystemExit as e:
        if e.code not in (0, None):
            return e.code
    return result.get("code", 0)


if __name__ == "__main__":
    sys.exit(main())
