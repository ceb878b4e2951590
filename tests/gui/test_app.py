"""`tekcos gui` where no window can open."""
from __future__ import annotations


def test_without_tk_or_a_display_tekcos_gui_says_so_in_one_line_and_exits_two(tmp_path):
    import os
    import subprocess
    import sys
    from tests.twistd import REPO
    # A Python built without Tk: its tkinter cannot be imported.
    (tmp_path / "tkinter").mkdir()
    (tmp_path / "tkinter" / "__init__.py").write_text("raise ImportError('No module named _tkinter')\n")
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    no_tk = subprocess.run([sys.executable, "-m", "tekcos.cli", "gui", "--nick", "gina"],
                           env={**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}, cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    assert no_tk.returncode == 2 and no_tk.stdout == ""
    assert no_tk.stderr.count("\n") == 1 and "apt install python3-tk" in no_tk.stderr
    # Tk, but no screen to open a window on.
    no_display = subprocess.run([sys.executable, "-m", "tekcos.cli", "gui", "--nick", "gina"],
                                env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert no_display.returncode == 2
    assert no_display.stderr.startswith("tekcos gui: cannot open a window: ")
