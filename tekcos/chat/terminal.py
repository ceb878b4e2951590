"""The keyboard and screen of ``tekcos chat`` in a terminal.

prompt_toolkit edits the line (history with Up/Down, Tab to complete the
nicks of the room, Ctrl-C to clear the line or, on an empty line, to quit,
Ctrl-D on an empty line to quit) and prints what the server says above it.
It runs its own event loop in a thread of its own; the reactor hears of
each entered line through ``callFromThread`` and writes through
prompt_toolkit's thread-safe stdout proxy.
"""
from __future__ import annotations

import re
import sys
import threading

PROMPT = "> "


class Members:
    """The nicks of the user's rooms, as far as the server's lines tell:
    ``/who`` and ``/names`` answers, joins, quits, renames and speakers (a
    departure from another room is not taken as gone: they may share this
    one)."""

    # Lines of the user's other rooms carry the room's tag after the time.
    _JOINED = re.compile(r"^\[\d\d:\d\d\] (?:#\S+ )?-- (\S+) joined ")
    _GONE = re.compile(r"^\[\d\d:\d\d\] -- (\S+) (?:has quit|left|was kicked|was banned)")
    _RENAMED = re.compile(r"^\[\d\d:\d\d\] (?:#\S+ )?-- (\S+) is now known as (\S+)$")
    _SPOKE = re.compile(r"^\[\d\d:\d\d\] (?:#\S+ )?(?:<(\S+)>|\* (\S+)) ")
    _LIST = re.compile(r"^\*\*\* \S+ \(\d+\): (.*)$")

    def __init__(self):
        self.nicks: set[str] = set()

    def seen(self, line: str) -> None:
        if line.startswith("*** You are in "):
            self.nicks.clear()
        elif (m := self._LIST.match(line)) is not None:
            names = re.split(r",\s*|\s+", re.sub(r"\([^)]*\)", "", m.group(1)))
            self.nicks = {name.lstrip("@") for name in names if name.strip("@")}
        elif (m := self._JOINED.match(line)) is not None:
            self.nicks.add(m.group(1))
        elif (m := self._GONE.match(line)) is not None:
            self.nicks.discard(m.group(1))
        elif (m := self._RENAMED.match(line)) is not None:
            self.nicks.discard(m.group(1))
            self.nicks.add(m.group(2))
        elif (m := self._SPOKE.match(line)) is not None:
            self.nicks.add(m.group(1) or m.group(2))

    def completing(self, word: str) -> list[str]:
        """The nicks that start with ``word`` (any case), sorted."""
        folded = word.casefold()
        return sorted(n for n in self.nicks if n.casefold().startswith(folded))


def _completer(members: Members):
    from prompt_toolkit.completion import Completer, Completion

    class NickCompleter(Completer):
        def get_completions(self, document, complete_event):
            word = document.get_word_before_cursor(WORD=True)
            if not word or word.startswith("/"):
                return
            alone = document.text_before_cursor.strip() == word   # at the start: "nick: "
            for nick in members.completing(word):
                yield Completion(nick + (": " if alone else ""), start_position=-len(word))

    return NickCompleter()


def _keys():
    from prompt_toolkit.key_binding import KeyBindings
    keys = KeyBindings()

    @keys.add("c-c")
    def _interrupt(event):
        # As in bash: Ctrl-C forgets the line being typed; on an empty line
        # it leaves.
        buffer = event.app.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=EOFError())

    return keys


class Terminal:
    """Line input in a thread; ``on_line(text)`` and ``on_end()`` are
    called in the reactor thread."""

    def __init__(self, reactor, on_line, on_end, members: Members):
        self.reactor = reactor
        self.on_line = on_line
        self.on_end = on_end
        self.members = members
        self.ready = threading.Event()
        self._session = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tekcos-terminal", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.ready.wait(10)

    def show(self, text: str) -> None:
        """Server text, printed above the line being typed."""
        sys.stdout.write(text.replace("\r\n", "\n").rstrip("\n") + "\n")
        sys.stdout.flush()

    def _run(self) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout
        self._session = session = PromptSession(
            history=InMemoryHistory(), completer=_completer(self.members),
            complete_while_typing=False, key_bindings=_keys())
        with patch_stdout(raw=True):
            self.ready.set()
            while True:
                try:
                    line = session.prompt(PROMPT)
                except (EOFError, KeyboardInterrupt):
                    if not self._stopping:
                        self.reactor.callFromThread(self.on_end)
                    return
                self.reactor.callFromThread(self.on_line, line)

    def stop(self) -> None:
        """Leave the prompt (the chat is over) and give the terminal back."""
        self._stopping = True
        session = self._session
        app = getattr(session, "app", None)
        if app is not None and app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(lambda: app.is_running and app.exit(
                exception=EOFError()))
        self._thread.join(5)
