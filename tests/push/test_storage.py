import hashlib
import os

import pytest

from tekcos.push.storage import BadName, Downloads, numbered, safe_name


@pytest.mark.parametrize("offered, stored", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("/etc/shadow", "shadow"),
    ("C:\\Windows\\system32\\evil.dll", "evil.dll"),
    ("..\\..\\boot.ini", "boot.ini"),
    (".bashrc", "_bashrc"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("com1.tar.gz", "_com1.tar.gz"),
    ("trailing dots...", "trailing dots"),
    ("한글 파일.txt", "한글 파일.txt"),
])
def test_names_are_reduced_to_a_safe_base_name(offered, stored):
    assert safe_name(offered) == stored


@pytest.mark.parametrize("offered", ["", "..", ".", "a/..", "dir/", "x\x00y", "bell\x07",
                                     "new\nline", "a" * 256, "é" * 128, "\ud800"])
def test_unusable_names_are_refused(offered):
    with pytest.raises(BadName):
        safe_name(offered)


def test_numbered():
    assert numbered("report.pdf", 1) == "report-1.pdf"
    assert numbered("archive.tar.gz", 2) == "archive.tar-2.gz"
    assert numbered("README", 3) == "README-3"
    assert len(numbered("x" * 251 + ".txt", 12).encode()) <= 255


def test_part_file_is_hidden_until_published_and_never_overwrites(tmp_path):
    downloads = Downloads(str(tmp_path))
    (tmp_path / "a.txt").write_text("existing")
    part = downloads.open_part("a.txt", "t1")
    part.append(b"new ")
    part.append(b"data")
    assert sorted(os.listdir(tmp_path)) == [".t1.part", "a.txt"]
    part.start_publish(hashlib.sha256(b"new data").hexdigest())
    assert part.publish_result() == "a-1.txt"
    assert (tmp_path / "a.txt").read_text() == "existing"
    assert (tmp_path / "a-1.txt").read_bytes() == b"new data"
    assert sorted(os.listdir(tmp_path)) == ["a-1.txt", "a.txt"]


def test_a_part_whose_data_does_not_match_is_never_published(tmp_path):
    part = Downloads(str(tmp_path)).open_part("a.txt", "t1")
    part.append(b"data")
    part.start_publish(hashlib.sha256(b"other").hexdigest())
    assert part.publish_result() is False
    assert os.listdir(tmp_path) == []


def test_the_disk_work_happens_on_the_worker_thread_in_order(tmp_path):
    import threading

    from tekcos.push.worker import DiskWorker
    woken = threading.Event()
    worker = DiskWorker(threaded=True, wake=woken.set)
    part = Downloads(str(tmp_path), worker=worker).open_part("big.bin", "t9")
    chunks = [os.urandom(300_000) for _ in range(8)]
    for chunk in chunks:
        part.append(chunk)
        part.flush()
    part.start_publish(hashlib.sha256(b"".join(chunks)).hexdigest())
    assert woken.wait(30)
    worker.close()                      # waits for the queued jobs
    assert part.publish_result() == "big.bin" and part.backlog == 0
    assert (tmp_path / "big.bin").read_bytes() == b"".join(chunks)


def test_discard_and_stale_parts(tmp_path):
    downloads = Downloads(str(tmp_path))
    part = downloads.open_part("b.bin", "t2")
    part.append(b"x" * 10)
    part.discard()
    assert os.listdir(tmp_path) == []
    downloads.open_part("c.bin", "00000000000000c3")       # the server's own pattern
    (tmp_path / ".notes.part").write_text("the operator's")  # not ours: kept
    (tmp_path / ".0123.part").write_text("not ours either")
    (tmp_path / ".notes.resume").write_text("{}")
    # Later sweeps only expire checkpoints; at start-up a part file without
    # a checkpoint cannot be continued and goes.
    assert downloads.sweep(3600) == 0
    assert downloads.sweep(3600, at_start=True) == 1
    assert sorted(os.listdir(tmp_path)) == [".0123.part", ".notes.part", ".notes.resume"]


def test_the_reserve_scales_with_the_filesystem(tmp_path, monkeypatch):
    import collections

    import psutil
    usage = collections.namedtuple("usage", "total used free percent")
    monkeypatch.setattr(psutil, "disk_usage", lambda path: usage(20 << 20, 0, 20 << 20, 0))
    assert Downloads(str(tmp_path)).reserve == 1 << 20            # 5% of 20 MiB
    monkeypatch.setattr(psutil, "disk_usage", lambda path: usage(1 << 40, 0, 1 << 40, 0))
    assert Downloads(str(tmp_path)).reserve == 64 << 20           # capped
    assert Downloads(str(tmp_path), reserve=5).reserve == 5
