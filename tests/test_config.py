import pytest

from tekcos.config import SETTINGS, ConfigError, load_toml, resolve


def test_defaults():
    values = resolve({})
    assert values["port"] == 9000
    assert values["history"] == 20
    assert values["max-line"] == 2048
    assert values["rate"] == 5.0 and values["burst"] == 20
    assert values["max-per-ip"] == 32
    assert values["max-buffer"] == 1 << 20
    assert values["listen"] == []


def test_cli_beats_file_beats_defaults():
    values = resolve({"history": "7", "rate": None}, {"history": 50, "rate": 0, "burst": 3})
    assert values["history"] == 7
    assert values["rate"] == 0.0
    assert values["burst"] == 3
    assert values["max-line"] == 2048


def test_listen_only_means_no_default_port():
    values = resolve({"listen": ["unix:/tmp/x.sock"]})
    assert values["port"] is None


@pytest.mark.parametrize("cli, needle", [
    ({"max-line": "abc"}, "--max-line: must be a whole number"),
    ({"port": "70000"}, "--port: must be between 1 and 65535"),
    ({"rate": "-1"}, "--rate: must be between"),
    ({"burst": "0"}, "--burst: must be"),
    ({"max-buffer": "1.5"}, "--max-buffer: must be a whole number"),
])
def test_bad_cli_values_name_the_setting(cli, needle):
    with pytest.raises(ConfigError) as e:
        resolve(cli)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_file_values_name_file_and_setting(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('history = "lots"\n')
    with pytest.raises(ConfigError, match=r"t.toml: history: must be a whole number"):
        resolve({}, load_toml(str(path)), str(path))


def test_unknown_keys_and_broken_toml(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("histroy = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'histroy'"):
        load_toml(str(path))
    path.write_text("history = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(str(path))
    with pytest.raises(ConfigError, match="no such file"):
        load_toml(str(tmp_path / "missing.toml"))


def test_shipped_config_documents_every_setting_with_its_default():
    import pathlib
    import tomllib
    text = (pathlib.Path(__file__).parent.parent / "conf" / "tekcos.toml").read_text()
    # Every setting appears, commented out, with its default value.
    for name, setting in SETTINGS.items():
        lines = [l for l in text.splitlines() if l.lstrip("# ").startswith(f"{name} =")]
        assert lines, name
        if setting.default not in (None, []):
            parsed = tomllib.loads(lines[0].lstrip("# "))
            assert parsed[name] == setting.default, name


def test_history_bytes_must_fit_in_the_output_limit():
    with pytest.raises(ConfigError, match=r"--history-bytes: must be at most half of "
                                          r"--max-buffer \(32768\), got 40000"):
        resolve({"history-bytes": "40000", "max-buffer": "65536"})
    assert resolve({"history-bytes": "32768", "max-buffer": "65536"})["history-bytes"] == 32768
