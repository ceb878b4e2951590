"""What the server remembers across restarts: one SQLite file.

``STATE_DIR/tekcos.db`` (stdlib ``sqlite3``, WAL) holds the list of received
files, every room's topic and its recent history.  :meth:`Store.open`
creates or migrates it (``PRAGMA user_version``) and reads what the hub
needs at start-up; after that the reactor never waits for it: every write
is queued to the store's own thread and done there, in order.  A file that
cannot be opened, is not a database, or was written by a newer tekcos stops
the server with one line naming it (:class:`StoreError`), never a silent
empty start.

No Twisted here: the server hands in nothing but paths and values.
"""
from __future__ import annotations

import os
import sqlite3
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

FILE_NAME = "tekcos.db"
HISTORY_KEPT = 1000      # lines kept per room in the file (the hub replays fewer)
TRIM_EVERY = 200         # lines written to a room between two trims
MAX_ROOMS_RESTORED = 1000
MAX_FILES_RESTORED = 100

# Each entry brings the schema from its index to the next version.
MIGRATIONS = [
    """
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        received REAL NOT NULL,
        sender TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE rooms (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        used REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        line TEXT NOT NULL
    );
    CREATE INDEX history_by_room ON history (room, id);
    """,
    """
    CREATE TABLE deliveries (
        code TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        sender TEXT NOT NULL,
        host TEXT NOT NULL,
        recipient TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        fetched INTEGER NOT NULL DEFAULT 0
    );
    """,
    # The numbering of history lines (their ids): a page's "the last line I
    # saw" is only taken against the same numbering.
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('history_epoch', lower(hex(randomblob(8))));
    """,
]
DELIVERY_FIELDS = ("code", "path", "name", "size", "sha256", "sender", "host", "recipient",
                   "created", "expires", "fetched")
VERSION = len(MIGRATIONS)


class StoreError(Exception):
    """The state file cannot be used; ``str()`` is one line naming it."""


@dataclass
class Snapshot:
    """What the hub gets back at start-up."""
    files: list = field(default_factory=list)     # (time, who, name, size), oldest first
    rooms: dict = field(default_factory=dict)     # key -> (name, topic, [lines, oldest first])
    line_ids: dict = field(default_factory=dict)  # key -> [each line's id]
    last_id: int = 0                              # the highest line id ever given
    epoch: str = ""                               # names that numbering
    deliveries: list = field(default_factory=list)   # dicts of DELIVERY_FIELDS


class Store:
    def __init__(self, path: str):
        self.path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tekcos-store")
        self._db: sqlite3.Connection | None = None
        self._written: dict[str, int] = {}     # room key -> lines since its last trim
        self._queue: deque = deque()             # (job, args) waiting for the thread
        self._spent: list = []                   # written batches, freed by add_line
        self._draining = False
        self.failed: Exception | None = None   # the last write that failed
        # Told (from the store's thread) when a write fails, once per kind
        # of failure: a full disk must not become a line per chat line.
        self.on_error = None

    # -- start-up (blocking, before the reactor runs) -----------------------------------
    @classmethod
    def open(cls, state_dir: str, history: int) -> tuple["Store", Snapshot]:
        """Open (create, migrate) ``state_dir``/tekcos.db and read the
        snapshot; raises StoreError."""
        path = os.path.join(os.path.abspath(state_dir), FILE_NAME)
        try:
            os.makedirs(state_dir, exist_ok=True)
        except OSError as e:
            raise StoreError(f"--state-dir: cannot create {state_dir}: {e.strerror}") from None
        store = cls(path)
        try:
            snapshot = store._thread.submit(store._open, history).result()
        except sqlite3.DatabaseError as e:
            store.close()
            raise StoreError(f"{path}: {_reason(e)}") from None
        except StoreError:
            store.close()
            raise
        return store, snapshot

    def _open(self, history: int) -> Snapshot:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db = db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            raise StoreError(f"{self.path}: written by a newer tekcos (schema {version}, "
                             f"this one knows {VERSION})")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Prove the file is whole before anything is built on it.
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"{self.path}: the database is damaged ({check})")
        for step in range(version, VERSION):
            db.execute("BEGIN")
            _script(db, MIGRATIONS[step])
            db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        return self._snapshot(history)

    def _snapshot(self, history: int) -> Snapshot:
        db = self._db
        snapshot = Snapshot()
        snapshot.files = [tuple(row) for row in reversed(db.execute(
            "SELECT received, sender, name, size FROM files ORDER BY id DESC LIMIT ?",
            (MAX_FILES_RESTORED,)).fetchall())]
        for key, name, topic in db.execute(
                "SELECT key, name, topic FROM rooms ORDER BY used DESC LIMIT ?",
                (MAX_ROOMS_RESTORED,)).fetchall():
            rows = list(reversed(db.execute(
                "SELECT id, line FROM history WHERE room = ? ORDER BY id DESC LIMIT ?",
                (key, history)).fetchall())) if history else []
            snapshot.rooms[key] = (name, topic, [line for _, line in rows])
            snapshot.line_ids[key] = [line_id for line_id, _ in rows]
        snapshot.last_id = db.execute("SELECT COALESCE(MAX(id), 0) FROM history").fetchone()[0]
        snapshot.epoch = db.execute(
            "SELECT value FROM meta WHERE key = 'history_epoch'").fetchone()[0]
        snapshot.deliveries = [dict(zip(DELIVERY_FIELDS, row)) for row in db.execute(
            f"SELECT {', '.join(DELIVERY_FIELDS)} FROM deliveries ORDER BY created")]
        return snapshot

    # -- writes (queued, in order) ----------------------------------------------------------
    # A chat line is a hot path: the reactor only appends to a deque, and one
    # job on the store's thread writes everything queued in one transaction.
    def add_line(self, key: str, name: str, line: str, at: float, line_id: int) -> None:
        """A room's history line, numbered by the hub (ids only grow)."""
        if self._db is None:
            return
        if self._spent:
            self._spent.clear()
        self._queue.append((key, name, line, at, line_id))
        self._wake()

    def set_topic(self, key: str, name: str, topic: str, at: float) -> None:
        self._queue_write(self._set_topic, key, name, topic, at)

    def add_file(self, at: float, who: str, name: str, size: int) -> None:
        self._queue_write(self._add_file, at, who, name, size)

    def add_delivery(self, ready) -> None:
        """A file kept for someone (a :class:`tekcos.delivery.Ready`)."""
        self._queue_write(self._add_delivery, tuple(getattr(ready, f) for f in DELIVERY_FIELDS))

    def mark_fetched(self, code: str) -> None:
        self._queue_write(self._mark_fetched, code)

    def remove_delivery(self, code: str) -> None:
        self._queue_write(self._remove_delivery, code)

    def _add_delivery(self, row: tuple) -> None:
        self._db.execute(f"INSERT OR REPLACE INTO deliveries ({', '.join(DELIVERY_FIELDS)}) "
                         f"VALUES ({', '.join('?' * len(DELIVERY_FIELDS))})", row)

    def _mark_fetched(self, code: str) -> None:
        self._db.execute("UPDATE deliveries SET fetched = fetched + 1 WHERE code = ?", (code,))

    def _remove_delivery(self, code: str) -> None:
        self._db.execute("DELETE FROM deliveries WHERE code = ?", (code,))

    def _queue_write(self, job, *args) -> None:
        if self._db is None:
            return
        if self._spent:
            self._spent.clear()
        self._queue.append((job, args))
        self._wake()

    def _wake(self) -> None:
        if not self._draining:
            self._draining = True
            self._thread.submit(self._drain)

    def _drain(self) -> None:
        # Cleared before taking: whatever is queued after this point gets a
        # drain of its own.
        self._draining = False
        queue = self._queue
        if not queue:
            return
        lines, rooms, jobs = [], {}, []
        while queue:
            item = queue.popleft()
            if len(item) == 5:             # a history line: (key, name, line, at, id)
                lines.append((item[4], item[0], item[2]))
                rooms[item[0]] = (item[1], item[3])
            else:
                jobs.append(item)
        db = self._db
        try:
            db.execute("BEGIN")
            if lines:   # in one statement: a busy room writes thousands a second
                db.executemany("INSERT INTO history (id, room, line) VALUES (?, ?, ?)",
                               lines)
            for key, (name, at) in rooms.items():
                self._room_row(key, name, at)
            for job, args in jobs:
                job(*args)
            self._trim(lines)
            db.execute("COMMIT")
            # What was written is freed on the reactor thread (the next
            # write clears it): lines the rooms no longer hold would
            # otherwise be freed here, and glibc, finding its main arena
            # locked by this thread, moves the reactor's allocations to
            # another arena that does not give memory back to the system.
            self._spent.append((lines, jobs))
        except sqlite3.Error as e:   # a full disk: the chat goes on, the log says so
            if db.in_transaction:
                db.execute("ROLLBACK")
            if self.on_error is not None and str(e) != str(self.failed):
                self.on_error(e)
            self.failed = e

    def _room_row(self, key: str, name: str, at: float) -> None:
        self._db.execute("INSERT INTO rooms (key, name, used) VALUES (?, ?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET name = excluded.name, "
                         "used = excluded.used", (key, name, at))

    def _trim(self, lines: list) -> None:
        """Keep HISTORY_KEPT lines per room, trimming every TRIM_EVERY."""
        counts: dict[str, int] = {}
        for _, key, _ in lines:
            counts[key] = counts.get(key, 0) + 1
        for key, n in counts.items():
            written = self._written.get(key, 0) + n
            if written >= TRIM_EVERY:
                written = 0
                self._db.execute(
                    "DELETE FROM history WHERE room = ? AND id <= (SELECT id FROM history "
                    "WHERE room = ? ORDER BY id DESC LIMIT 1 OFFSET ?)", (key, key, HISTORY_KEPT))
            self._written[key] = written

    def _set_topic(self, key: str, name: str, topic: str, at: float) -> None:
        self._room_row(key, name, at)
        self._db.execute("UPDATE rooms SET topic = ? WHERE key = ?", (topic, key))

    def _add_file(self, at: float, who: str, name: str, size: int) -> None:
        self._db.execute("INSERT INTO files (received, sender, name, size) VALUES (?, ?, ?, ?)",
                         (at, who, name, size))

    def flush(self) -> None:
        """Wait until every queued write is done (tests, shutdown)."""
        self._thread.submit(self._drain).result()

    def close(self) -> None:
        """Finish the queued writes and close the file."""
        def closing():
            self._drain()
            if self._db is not None:
                self._db.close()
                self._db = None
        self._thread.submit(closing)
        self._thread.shutdown(wait=True)


def _script(db: sqlite3.Connection, script: str) -> None:
    """The statements of a migration, inside the caller's transaction
    (``executescript`` would commit it)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _reason(error: sqlite3.Error) -> str:
    text = str(error)
    if "not a database" in text or "malformed" in text:
        return f"not a tekcos database, or damaged ({text})"
    return text
