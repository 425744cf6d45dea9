import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_self_test_types_through_real_qt_events(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen", PINYIN_IME_HOME=str(tmp_path))
    shot = tmp_path / "shot.png"
    r = subprocess.run([sys.executable, "-m", "ime_app.main", "--self-test", "--screenshot", str(shot)],
                       capture_output=True, text=True, env=env, timeout=120)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and result["ok"], r.stdout + r.stderr
    assert result["committed"] == result["expected"] and result["committed"].startswith("你好，中国北京大学我们")
    assert result["prefix_commit"] and result["paging"] and result["popup"] and result["store"]
    assert not (tmp_path / "user.db").exists()  # the self-test types into a temporary store, not the user's
    assert shot.exists() and shot.stat().st_size > 1000


def test_without_a_display_it_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "ime_app.main"], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2 and "no display" in r.stderr and "--self-test" in r.stderr
