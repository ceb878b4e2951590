"""The server's database: what survives a restart, and what stops one."""
import os
import sqlite3
import time

import pytest

from tekcos.chat.hub import Hub
from tekcos.store import HISTORY_KEPT, TRIM_EVERY, VERSION, Store, StoreError
from tests.memory import Server


def reopen(state, history=20):
    store, snapshot = Store.open(str(state), history)
    return store, snapshot


def restarted(tmp_path):
    """A new in-memory server restored from the database in ``tmp_path``,
    and that store (to close)."""
    store, snapshot = reopen(tmp_path)
    server = Server()
    server.hub.restore(snapshot)
    return store, server


def test_lines_topics_and_files_come_back_after_a_restart(tmp_path):
    store, snapshot = reopen(tmp_path)
    assert snapshot.files == [] and snapshot.rooms == {}
    for i in range(30):
        store.add_line("lobby", "lobby", f"[12:00] <a> line {i}", 100.0 + i, i + 1)
    store.set_topic("games", "Games", "chess at 8", 200.0)
    store.add_line("games", "Games", "[12:01] <b> e4", 201.0, 31)
    store.add_file(300.0, "alice@10.0.0.7", "photo.jpg", 1234)
    store.close()
    store, snapshot = reopen(tmp_path, history=20)
    assert snapshot.files == [(300.0, "alice@10.0.0.7", "photo.jpg", 1234)]
    name, topic, lines = snapshot.rooms["lobby"]
    assert lines == [f"[12:00] <a> line {i}" for i in range(10, 30)]   # the last 20
    assert snapshot.rooms["games"] == ("Games", "chess at 8", ["[12:01] <b> e4"])
    # Each line keeps the id the hub gave it, under the same numbering.
    assert snapshot.line_ids["lobby"] == list(range(11, 31)) and snapshot.last_id == 31
    epoch = snapshot.epoch
    assert len(epoch) == 16
    store.close()
    store, snapshot = reopen(tmp_path)
    assert snapshot.epoch == epoch
    store.close()
    db = sqlite3.connect(tmp_path / "tekcos.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_history_is_trimmed_as_it_grows(tmp_path):
    store, _ = reopen(tmp_path)
    written = HISTORY_KEPT + 3 * TRIM_EVERY
    for i in range(written):
        store.add_line("lobby", "lobby", f"line {i}", float(i), i + 1)
    store.close()
    db = sqlite3.connect(tmp_path / "tekcos.db")
    kept = db.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    assert HISTORY_KEPT <= kept <= HISTORY_KEPT + TRIM_EVERY
    newest = db.execute("SELECT line FROM history ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert newest == f"line {written - 1}"


def test_a_history_of_100000_lines_opens_as_fast_as_a_small_one(tmp_path):
    store, _ = reopen(tmp_path)
    store.add_line("lobby", "lobby", "first", 0.0, 1)
    store.close()
    db = sqlite3.connect(tmp_path / "tekcos.db")
    with db:
        db.executemany("INSERT INTO history (room, line) VALUES ('lobby', ?)",
                       ((f"line {i}",) for i in range(100_000)))
    db.close()
    started = time.perf_counter()
    store, snapshot = reopen(tmp_path, history=20)
    assert time.perf_counter() - started < 0.5
    assert snapshot.rooms["lobby"][2] == [f"line {i}" for i in range(99_980, 100_000)]
    store.close()


def test_a_damaged_file_stops_the_server_with_its_name(tmp_path):
    (tmp_path / "tekcos.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"tekcos\.db: not a tekcos database, or damaged"):
        reopen(tmp_path)


def test_a_newer_schema_is_refused_not_downgraded(tmp_path):
    db = sqlite3.connect(tmp_path / "tekcos.db")
    db.execute(f"PRAGMA user_version = {VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="written by a newer tekcos"):
        reopen(tmp_path)


def test_an_unwritable_state_dir_stops_the_server_with_its_name():
    import shutil
    import subprocess
    import sys
    import tempfile
    base = tempfile.mkdtemp(prefix="tekcos-ro-")
    os.chmod(base, 0o755)
    state = os.path.join(base, "state")
    os.mkdir(state, 0o555)
    try:
        # Checked as an unprivileged user, as the service runs (root writes anywhere).
        code = ("import sys; from tekcos.store import Store, StoreError\n"
                "try: Store.open(sys.argv[1], 20)\n"
                "except StoreError as e: print(e); sys.exit(1)\n")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] \
            if os.geteuid() == 0 else []
        result = subprocess.run([*prefix, sys.executable, "-c", code, state],
                                capture_output=True, text=True,
                                env={**os.environ, "PYTHONPATH": os.path.dirname(
                                    os.path.dirname(os.path.abspath(__file__)))})
        assert result.returncode == 1, result.stderr
        assert result.stdout.startswith(os.path.join(state, "tekcos.db") + ": ")
        assert result.stdout.count("\n") == 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_hub_keeps_what_the_store_gives_back_and_writes_what_happens(tmp_path):
    store, snapshot = reopen(tmp_path)
    server = Server()
    server.hub.store = store
    alice = server.user("alice")
    alice.type("/join games\r\n/topic chess at 8\r\nhello games\r\n")
    alice.type("/part\r\n")                 # games empties: kept, not forgotten
    alice.type("/join games\r\n")
    text = alice.read()
    assert "*** Topic of games: chess at 8" in text.split("You are in games")[-1]
    assert "<alice> hello games" in text.split("Last")[-1]
    store.close()
    # A restart: a new hub from the same file.
    store, server = restarted(tmp_path)
    bob = server.user("bob")
    bob.type("/join games\r\n")
    text = bob.read()
    assert "<alice> hello games" in text and "*** Topic of games: chess at 8" in text
    store.close()


def test_files_pushed_are_listed_after_a_restart(tmp_path):
    from tekcos.push.receiver import Received
    store, _ = reopen(tmp_path)
    hub = Hub(lambda: 1_700_000_000.0)
    hub.store = store
    hub.push_received(Received("file", "alice", ("10.0.0.7", 5000), "photo.jpg", 3_000_000))
    store.close()
    store, server = restarted(tmp_path)
    carol = server.user("carol")
    carol.type("/files\r\n")
    text = carol.read()
    assert "photo.jpg" in text and "alice@10.0.0.7" in text and "No files" not in text
    store.close()


def test_the_real_server_remembers_across_a_restart_and_refuses_a_damaged_file(start,
                                                                               tmp_path):
    import subprocess
    import sys

    from tests.twistd import CLEAN_EXIT, REPO, TWISTD, User, free_port
    state, downloads = str(tmp_path / "state"), str(tmp_path / "dl")
    server = start("--state-dir", state, downloads=downloads)
    alice = User(server.port, "alice")
    alice.send(b"/join games\r\n/topic chess at 8\r\nwho plays?\r\n")
    alice.expect(rb"<alice> who plays\?")
    src = tmp_path / "photo.jpg"
    src.write_bytes(os.urandom(50_000))
    pushed = subprocess.run([sys.executable, "-m", "tekcos.cli", "push", str(src), "--to",
                             f"127.0.0.1:{server.port}", "-q"], capture_output=True, timeout=60,
                            cwd=REPO)
    assert pushed.returncode == 0, pushed.stderr
    alice.send(b"/files\r\n")
    alice.expect(rb"photo\.jpg")
    assert server.stop()[0] in CLEAN_EXIT
    again = start("--state-dir", state, downloads=downloads)
    bob = User(again.port, "bob")
    bob.send(b"/files\r\n/join games\r\n")
    text = bob.expect(rb"Topic of games: chess at 8")
    assert b"photo.jpg" in text and b"<alice> who plays?" in text
    assert again.stop()[0] in CLEAN_EXIT
    # A damaged database: one line naming it, status 1, no empty start.
    with open(os.path.join(state, "tekcos.db"), "r+b") as f:
        f.write(b"garbage!" * 64)
    for name in ("tekcos.db-wal", "tekcos.db-shm"):
        if os.path.exists(os.path.join(state, name)):
            os.unlink(os.path.join(state, name))
    result = subprocess.run([*TWISTD, "-n", "--pidfile=", "-l", str(tmp_path / "log"), "tekcos",
                             "--no-mdns", "--port", str(free_port()), "--udp-port", "0", "--state-dir", state],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr.startswith("twistd tekcos: ") and "tekcos.db" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_file_from_the_previous_schema_is_migrated_and_its_lines_keep_their_ids(tmp_path):
    from tekcos.store import MIGRATIONS
    db = sqlite3.connect(tmp_path / "tekcos.db")
    for script in MIGRATIONS[:2]:      # as the tekcos before line ids left it
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    db.executemany("INSERT INTO history (room, line) VALUES ('lobby', ?)",
                   [(f"old {i}",) for i in range(5)])
    db.execute("INSERT INTO rooms (key, name) VALUES ('lobby', 'lobby')")
    db.commit()
    db.close()
    store, snapshot = reopen(tmp_path)
    assert snapshot.rooms["lobby"][2] == [f"old {i}" for i in range(5)]
    assert snapshot.line_ids["lobby"] == [1, 2, 3, 4, 5] and snapshot.last_id == 5
    assert snapshot.epoch
    # The hub numbers new lines after them.
    hub = Hub(lambda: 0.0)
    hub.restore(snapshot)
    assert hub.next_line_id == 6 and hub.lobby.last_id == 5 and hub.history_epoch == snapshot.epoch
    store.close()
