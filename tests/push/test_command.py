"""tekcos push helpers: progress bar, records, exit codes, argument checks."""
import argparse
import io

import pytest

from tekcos.push import command as push
from tekcos.push.sender import Sender


def test_progress_bar_shows_percent_rate_and_eta():
    now = [100.0]
    out = io.StringIO()
    bar = push.Progress(out, "report.pdf", 1_000_000, clock=lambda: now[0])
    now[0] = 101.0
    bar.update(250_000)
    text = out.getvalue()
    assert text.startswith("\rreport.pdf")
    assert " 25.0% [######                  ]" in text
    assert "0.2 MB/s" in text and "ETA    3s" in text
    bar.update(300_000)                     # within 0.1 s: not redrawn
    assert out.getvalue() == text
    bar.finish()
    assert out.getvalue().endswith("\r\x1b[K")


def sender(status, by_peer=False):
    s = Sender(offer_id=1, name="n", size=10, sha256="0" * 64, kind="file",
               read=lambda o, n: b"")
    s.status = status
    s.failed_by_peer = by_peer
    return s


def test_exit_codes():
    assert push.exit_code_for(sender("delivered")) == 0
    assert push.exit_code_for(sender("rejected")) == 1
    assert push.exit_code_for(sender("failed", by_peer=True)) == 1
    assert push.exit_code_for(sender("failed")) == 3


def args(**kw):
    base = dict(files=[], message=None, to="127.0.0.1:9000", payload=1400, window=64,
                timeout=10.0)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("kw, needle", [
    ({}, "nothing to push"),
    ({"files": ["/nonexistent"]}, "no such file"),
    ({"files": ["/"]}, "not a regular file"),
    ({"message": ""}, "empty message"),
    ({"message": "x", "payload": 8}, "--payload"),
    ({"message": "x", "to": "a:b:c"}, "--to"),
])
def test_argument_errors(kw, needle):
    with pytest.raises(push.UsageError, match=needle):
        push.check_args(args(**kw))
