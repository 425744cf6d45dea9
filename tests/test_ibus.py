"""The system input method: key mapping, registration, the backend over a real store, and the engine run by
a real ibus-daemon (a private D-Bus session; under Xvfb with a real Qt text field typed into by xdotool)."""

import os
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine import store
from engine.personal import files, versions
from engine.ime.pipeline import build_pipeline
from ime_app.ibus import keys
from ime_app.ibus.backend import ImeBackend, Shared
from ime_app.ibus.gi_loader import available
from ime_app.ibus.install import BUS_NAME, ENGINE_NAME, component_xml, engine_command
from ime_app.ibus.sandbox import missing_tools
from ime_app.settings import Settings, save_settings

REPO = Path(__file__).resolve().parents[1]
FIELD = REPO / "tests" / "data" / "ibus_text_field.py"

# everyday sentences typed as a user types them: the keys, then space (plus punctuation on two of them)
SENTENCES = [("我们明天见", "women mingtian jian"), ("今天天气很好", "jintian tianqi henhao"),
             ("你吃饭了吗", "ni chifan le ma"), ("谢谢你的帮助", "xiexie ni de bangzhu"),
             ("我想去北京", "wo xiang qu beijing"), ("这个问题很重要", "zhege wenti hen zhongyao"),
             ("他是我的朋友", "ta shi wo de pengyou"), ("我们一起学习中文", "women yiqi xuexi zhongwen"),
             ("请给我一杯水", "qing gei wo yi bei shui"), ("周末我们去看电影", "zhoumo women qu kan dianying"),
             ("欢迎来到中国", "huanying laidao zhongguo"), ("明天早上八点开会", "mingtian zaoshang badian kaihui")]


def ibus_missing(x11: bool = False) -> str:
    tools = missing_tools(x11)
    if tools:
        return f"{', '.join(tools)} not installed (./dev.sh test installs them as root with apt)"
    return available()


# -- keys ------------------------------------------------------------------------------------------------------

def test_key_names_follow_x_keysyms():
    assert keys.key_name(ord("a"), 0) == "a"
    assert keys.key_name(ord("'"), 0) == "'"
    assert keys.key_name(0xFF08, 0) == "backspace" and keys.key_name(0xFF0D, 0) == "enter"
    assert keys.key_name(0x20, 0) == "space" and keys.key_name(0xFF56, 0) == "pagedown"
    assert keys.key_name(0xFFB3, 0) == "3"  # the keypad's digits pick too
    assert keys.key_name(ord("A"), keys.SHIFT) == "A"  # a capital: the session leaves it to the program
    assert keys.key_name(ord("c"), keys.CONTROL) is None  # shortcuts are the program's
    assert keys.key_name(ord("a"), keys.RELEASE) is None
    assert keys.key_name(0xFFBE, 0) is None  # F1


def test_a_lone_shift_tap_toggles_but_shift_with_a_key_does_not():
    t = keys.ShiftToggle()
    assert not t.feed(keys.SHIFT_L, 0)
    assert t.feed(keys.SHIFT_L, keys.SHIFT | keys.RELEASE)
    t.feed(keys.SHIFT_L, 0)
    t.feed(ord("A"), keys.SHIFT)
    assert not t.feed(keys.SHIFT_L, keys.SHIFT | keys.RELEASE)
    t.feed(keys.SHIFT_L, keys.CONTROL)  # Ctrl+Shift is a layout switch, not ours
    assert not t.feed(keys.SHIFT_L, keys.CONTROL | keys.SHIFT | keys.RELEASE)


# -- registration ------------------------------------------------------------------------------------------

def test_component_file_names_our_engine_and_how_to_start_it(tmp_path):
    root = ET.fromstring(component_xml(engine_command(tmp_path)))
    assert root.findtext("name") == BUS_NAME
    assert root.findtext("engines/engine/name") == ENGINE_NAME
    assert root.findtext("engines/engine/language") == "zh_CN"
    cmd = shlex.split(root.findtext("exec"))
    assert cmd[0] == sys.executable and cmd[-4:] == ["run", "--ibus", "--home", str(tmp_path.resolve())]


def test_cli_installs_per_user_and_uninstalls(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CONFIG_HOME=str(tmp_path / "config"), PYTHONPATH=str(REPO))
    cli = [sys.executable, "-m", "ime_app.cli", "ibus"]
    out = subprocess.run(cli + ["install"], env=env, capture_output=True, text=True, check=True).stdout
    component = tmp_path / "data" / "ibus" / "component" / "pinyin-ime.xml"
    env_line = (tmp_path / "config" / "environment.d" / "60-pinyin-ime.conf").read_text()
    assert component.exists() and "ibus engine pinyin-ime" in out
    assert env_line == f"IBUS_COMPONENT_PATH={component.parent}:/usr/share/ibus/component\n"
    ET.parse(component)
    status = subprocess.run(cli + ["status"], env=env, capture_output=True, text=True).stdout
    assert f"{component}: installed" in status
    subprocess.run(cli + ["uninstall"], env=env, capture_output=True, text=True, check=True)
    assert not component.exists()


# -- the backend (no IBus) ---------------------------------------------------------------------------------

def lexicon_only(db, home):
    return build_pipeline(model_dir=None, db=db)


def type_line(backend: ImeBackend, keys_: str) -> str:
    for k in keys_:
        backend.press(k)
    backend.press("space")
    while backend.session.composing:
        backend.press("space")
    return "".join(backend.take_commits())


def test_backend_commits_into_the_store_and_honours_password_fields_and_pause(tmp_path):
    shared = Shared(tmp_path, build=lexicon_only)
    backend = ImeBackend(shared)
    assert type_line(backend, "nihao") == "你好"
    view = backend.view()
    assert not view.composing and view.candidates == ()
    assert [c["text"] for c in store.list_commits(shared.db)] == ["你好"]

    backend.set_password(True)  # a password field: letters go to the program as they are, nothing is kept
    assert not backend.press("n") and backend.take_commits() == []
    backend.set_password(False)

    store.set_recording_paused(shared.db, True)  # the app's Pause recording, read at each commit
    assert type_line(backend, "zaijian") == "再见"
    assert len(store.list_commits(shared.db)) == 1
    shared.close()


def test_backend_draws_preedit_and_candidate_pages(tmp_path):
    shared = Shared(tmp_path, build=lexicon_only)
    backend = ImeBackend(shared)
    for k in "zhongguo":
        backend.press(k)
    view = backend.view()
    assert view.composing and view.preedit == "zhong'guo" and view.caret == len("zhong'guo")
    assert view.candidates[0] == "中国" and view.highlight == 0 and len(view.candidates) <= 9
    backend.press("down")
    assert backend.view().highlight == 1
    backend.cancel()
    assert not backend.view().composing and backend.take_commits() == []
    shared.close()


def test_backend_picks_up_what_the_app_changed(tmp_path, tiny):
    """Another process (the app) deletes a learned phrase and installs a personal model: the next focus
    change (``sync``) re-reads the phrases and swaps the model in."""
    shared = Shared(tmp_path)
    backend = ImeBackend(shared)
    assert shared.sync() is None  # nothing changed
    type_line(backend, "nihao")
    assert shared.sync() is None  # our own commit is not news
    assert shared.pipeline.ranker.phrases

    app = store.open_store(tmp_path)
    store.delete_all_phrases(app)
    version = versions.next_version(app, tmp_path)
    staged = files.new_staging_dir(tmp_path)
    staged.rmdir()
    import shutil

    shutil.copytree(tiny, staged)
    files.write_meta(staged, {"kind": "personal", "version": version})
    versions.install(app, tmp_path, staged, version, {})
    app.close()

    status = shared.sync()
    assert status is not None and f"personal model {version}" in status
    assert not shared.pipeline.ranker.phrases
    assert shared.pipeline.model_dir.name == version
    shared.close()



def test_a_change_by_the_app_is_not_lost_behind_our_own_commit(tmp_path):
    """The app deletes the phrases, then a commit comes through the engine before the next focus change: the
    sync after it still sees the app's change (our own commits never move ``data_version``)."""
    shared = Shared(tmp_path, build=lexicon_only)
    backend = ImeBackend(shared)
    type_line(backend, "nihao")
    app = store.open_store(tmp_path)
    store.delete_all_phrases(app)
    app.close()
    type_line(backend, "zaijian")
    shared.sync()
    learned = {text for texts in shared.pipeline.ranker.phrases.values() for text in texts}
    assert "你好" not in learned and "再见" in learned
    shared.close()

def test_backend_follows_the_apps_settings_prediction_and_traditional_output(tmp_path):
    """The app's Settings dialog writes the store; at the next focus change the engine reads them: fuzzy pairs,
    the page size, prediction after a commit and traditional output (the store keeps simplified)."""
    shared = Shared(tmp_path)
    backend = ImeBackend(shared)
    assert shared.settings == Settings()  # the defaults: prediction on, simplified
    assert type_line(backend, "zhonghua") == "中华"
    view = backend.view()
    assert view.predicting and not view.composing and view.candidates  # the next words (联想)
    assert backend.press("escape") and not backend.view().predicting

    app = store.open_store(tmp_path)
    save_settings(app, Settings(fuzzy=("z=zh",), page_size=5, prediction=False, traditional=True))
    app.close()
    shared.sync()
    backend.refresh()
    assert shared.pipeline.fuzzy == Settings(fuzzy=("z=zh",)).fuzzy_options()
    for k in "zongguo":
        backend.press(k)
    view = backend.view()
    assert "中國" in view.candidates and len(view.candidates) <= 5 and view.page_size == 5
    backend.pick(view.candidates.index("中國"))
    assert "".join(backend.take_commits()) == "中國" and not backend.view().predicting
    assert [c["text"] for c in store.list_commits(shared.db, newest_first=False)] == ["中华", "中国"]
    shared.close()


# -- the engine under a real ibus-daemon -------------------------------------------------------------------

@pytest.mark.skipif(bool(ibus_missing()), reason=ibus_missing() or "ok")
def test_engine_through_ibus_daemon_records_learns_and_skips_password_fields(tmp_path, monkeypatch):
    from ime_app.ibus.sandbox import IbusSandbox

    with IbusSandbox(tmp_path / "data") as sb:
        for k, v in sb.env.items():
            monkeypatch.setenv(k, v)
        from ime_app.ibus.client import IbusClient

        client = IbusClient()
        client.type("woxiangqubeijing")
        assert client.preedit == "wo'xiang'qu'bei'jing" and client.table[0] == "我想去北京"
        client.key("space")
        assert client.commits == ["我想去北京"] and client.preedit == ""
        assert client.table  # the next words after the commit (prediction is on by default)
        client.set_password(True)
        used, _ = client.key("a")
        assert not used and client.commits == ["我想去北京"]  # the program types the letter itself
        client.set_password(False)
        client.type("nihao,")
        assert client.commits[1:] == ["你好", "，"]
        client.close()
    db = store.open_store(tmp_path / "data")
    assert [c["text"] for c in store.list_commits(db, newest_first=False)] == ["我想去北京", "你好"]  # marks: not
    assert store.get_phrase(db, "我想去北京", "wo xiang qu bei jing") is not None  # learned, as in the app
    db.close()


def _wait_for(path: Path, predicate, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if predicate(text):
            return text
        time.sleep(0.05)
    return text


@pytest.mark.skipif(bool(ibus_missing(x11=True)), reason=ibus_missing(x11=True) or "ok")
def test_typing_through_ibus_into_a_real_qt_text_field(tmp_path):
    """X key events (xdotool) into a Qt QLineEdit under Xvfb, through ibus-daemon and Qt's IBus input method
    into our engine: every sentence arrives in the field intact, and the store has each commit."""
    from ime_app.ibus.sandbox import IbusSandbox

    out, timings = tmp_path / "field.txt", tmp_path / "timings.tsv"
    with IbusSandbox(tmp_path / "data", x11=True, engine_env={"PINYIN_IME_IBUS_TIMINGS": str(timings)}) as sb:
        field = subprocess.Popen([sys.executable, str(FIELD), str(out)], env=dict(sb.env, QT_QPA_PLATFORM="xcb"),
                                 stderr=subprocess.PIPE, text=True)
        try:
            window = sb.run("xdotool", "search", "--sync", "--name", "ibus-text-field").stdout.split()[0]
            sb.run("xdotool", "windowfocus", "--sync", window)
            # our engine for the focused field; ibus-daemon starts the engine process (it loads the model)
            deadline = time.monotonic() + 60
            while sb.run("ibus", "engine", check=False).stdout.strip() != ENGINE_NAME:
                assert time.monotonic() < deadline, sb.engine_log()
                sb.run("ibus", "engine", ENGINE_NAME, check=False)
                time.sleep(0.2)
            probe = [sys.executable, "-c", "from ime_app.ibus.client import IbusClient as C; C()"]
            subprocess.run(probe, env=dict(sb.env, PYTHONPATH=str(REPO)), check=True, timeout=90)  # engine is up
            sb.run("xdotool", "windowfocus", "--sync", window)
            expected = ""
            for i, (text, pinyin) in enumerate(SENTENCES):
                keys_ = pinyin.replace(" ", "")
                sb.run("xdotool", "type", "--delay", "30", keys_)
                sb.run("xdotool", "key", "comma" if i == 3 else "period" if i == len(SENTENCES) - 1 else "space")
                expected += text + ("，" if i == 3 else "。" if i == len(SENTENCES) - 1 else "")
                got = _wait_for(out, lambda t, e=expected: len(t) >= len(e))
                assert got == expected, f"{got!r} != {expected!r}\n{sb.engine_log()[-2000:]}"
        finally:
            field.terminate()
            field.wait(10)
    db = store.open_store(tmp_path / "data")
    commits = [c["text"] for c in store.list_commits(db, newest_first=False)]
    db.close()
    assert commits == [text for text, _ in SENTENCES]  # punctuation marks are not recorded, as in the app
    ms = sorted(float(line.split("\t")[1]) for line in timings.read_text().splitlines())
    assert len(ms) >= sum(len(p.replace(" ", "")) + 1 for _, p in SENTENCES)
    print(f"engine time per key: p50 {ms[len(ms) // 2]:.1f} ms, p95 {ms[int(len(ms) * 0.95)]:.1f} ms")


@pytest.mark.skipif(bool(ibus_missing()), reason=ibus_missing() or "ok")
def test_ibus_latency_benchmark_prints_its_json_line():
    import json

    r = subprocess.run([sys.executable, "-m", "benchmarks.ibus_latency", "--file",
                        str(REPO / "tests/data/tiny_eval.tsv"), "--lines", "3"], cwd=REPO, capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["keys"] > 10 and 0 < last["p50_ms"] <= last["p95_ms"]
    assert 0 < last["engine_p50_ms"] <= last["p50_ms"] and last["engine_rss_mb"] > 50
