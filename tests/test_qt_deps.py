"""The check for the system libraries Qt's window needs (ime_app.qt_deps), as ./dev.sh app runs it."""

import subprocess
import sys
from pathlib import Path

from ime_app import qt_deps

REPO = Path(__file__).resolve().parent.parent


def test_this_machine_has_what_qt_needs():
    # the suite itself opens real Qt widgets offscreen here, so nothing the plugins link may be missing
    assert qt_deps.qt_dir() is not None
    missing = qt_deps.missing_libraries()
    assert "libQt6Gui.so.6" not in missing  # Qt's own libraries are found in the wheel, never reported


def test_missing_libraries_are_named_with_their_packages(monkeypatch, capsys):
    monkeypatch.setattr(qt_deps, "missing_libraries", lambda base=None: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1",
                                                                         "libweird.so.9"])
    assert qt_deps.main([]) == 1
    err = capsys.readouterr().err
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in err
    assert "no package known for libweird.so.9" in err


def test_a_plugin_with_an_unresolved_library_is_reported(tmp_path):
    """A real ELF file whose dependency the linker cannot find, laid out as PySide6's folder."""
    cc = subprocess.run(["which", "cc"], capture_output=True, text=True).stdout.strip()
    if not cc:
        import pytest

        pytest.skip("no C compiler to make a test library")
    platforms = tmp_path / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (tmp_path / "dep.c").write_text("int dep(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int dep(void); int plugin(void) { return dep(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "libpinyinimetestdep.so.1"), str(tmp_path / "dep.c"),
                    "-Wl,-soname,libpinyinimetestdep.so.1"], check=True)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(platforms / "libqxcb.so"), str(tmp_path / "plugin.c"),
                    str(tmp_path / "libpinyinimetestdep.so.1")], check=True)
    (tmp_path / "libpinyinimetestdep.so.1").unlink()
    assert "libpinyinimetestdep.so.1" in qt_deps.missing_libraries(tmp_path)


def test_the_command_line_exits_0_when_nothing_is_missing():
    r = subprocess.run([sys.executable, "-m", "ime_app.qt_deps"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == (1 if qt_deps.missing_libraries() else 0), r.stderr
