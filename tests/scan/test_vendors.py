import pytest

from tekcos.scan import vendors


def test_longest_registered_prefix_wins():
    # 00:55:DA is split into MA-M (/28) blocks; 00:1B:C5:00:00 into MA-S (/36).
    assert vendors.vendor("00:55:DA:00:00:01") == "Shinko Technos co.,ltd."
    assert vendors.vendor("00:55:DA:10:00:01") == "KoolPOS Inc."
    assert vendors.vendor("00:1B:C5:00:00:15") == "Converging Systems Inc."
    assert vendors.vendor("00:00:01:12:34:56") == "Xerox Corporation"


def test_formats_and_flags():
    assert vendors.vendor("00-00-01-12-34-56") == vendors.vendor("00:00:01:12:34:56")
    assert vendors.local_admin("02:00:00:00:00:01")
    assert vendors.local_admin("DA-A1-19-00-00-01")     # randomised phone MAC
    assert not vendors.local_admin("00:00:01:12:34:56")
    with pytest.raises(ValueError):
        vendors.normalize("00:11")
