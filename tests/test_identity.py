"""The user's client id: made once, kept private, read back."""
import os
import stat

from tekcos.identity import client_id, id_path


def test_made_once_private_and_read_back(tmp_path):
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    first = client_id(environ)
    assert len(first) == 32 and int(first, 16) >= 0
    assert client_id(environ) == first
    path = id_path(environ)
    assert path == str(tmp_path / "tekcos" / "client-id")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(tmp_path / "tekcos") == ["client-id"]


def test_a_damaged_file_is_replaced_and_no_home_means_no_id(tmp_path):
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}
    (tmp_path / "tekcos").mkdir()
    (tmp_path / "tekcos" / "client-id").write_text("not an id\n")
    replaced = client_id(environ)
    assert len(replaced) == 32 and client_id(environ) == replaced
    assert os.listdir(tmp_path / "tekcos") == ["client-id"]
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert client_id({"XDG_CONFIG_HOME": str(blocked)}) == ""
