import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(*args, home, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "ime_app.cli", *args, "--home", str(home)], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120)


def test_parse_and_lookup(tmp_path):
    r = run("parse", "xian", "--json", home=tmp_path)
    assert r.returncode == 0
    segs = [s["segmentation"] for s in json.loads(r.stdout)]
    assert segs[0] == "xian" and "xi'an" in segs
    r = run("lookup", "bjdx", "--json", home=tmp_path)
    assert json.loads(r.stdout)[0]["text"] == "北京大学"


def test_bad_keys_are_a_clear_error(tmp_path):
    r = run("parse", "ni3hao", home=tmp_path)
    assert r.returncode == 2 and "not pinyin" in r.stderr and "Traceback" not in r.stderr


def test_history_roundtrip_through_the_store(tmp_path):
    from engine import store

    db = store.open_store(tmp_path)
    store.record_commit(db, "你好", "ni hao", "nihao")
    db.close()
    r = run("history", "list", "--json", home=tmp_path)
    rows = json.loads(r.stdout)
    assert [row["text"] for row in rows] == ["你好"]
    out = tmp_path / "export.json"
    assert run("history", "export", str(out), home=tmp_path).returncode == 0
    assert run("history", "clear", home=tmp_path).returncode == 0
    assert json.loads(run("history", "list", "--json", home=tmp_path).stdout) == []
    r = run("history", "import", str(out), home=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["commits"] == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"commits": "nope"}')
    r = run("history", "import", str(bad), home=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error:")


def test_learned_phrases_can_be_added_edited_and_cleared(tmp_path):
    r = run("phrases", "add", "王小明", "wang", "xiao", "ming", "--count", "2", home=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run("phrases", "edit", "1", "--text", "王晓明", home=tmp_path)
    assert r.returncode == 0 and "王晓明" in r.stdout
    rows = json.loads(run("phrases", "list", "--json", home=tmp_path).stdout)
    assert [(p["text"], p["pinyin"], p["count"]) for p in rows] == [("王晓明", "wang xiao ming", 2)]
    from engine import store
    from engine.pipeline import build_pipeline

    pipe = build_pipeline(model_dir=None, db=store.open_store(tmp_path))  # the engine sees the edit
    assert pipe("wangxiaoming")[0].text == "王晓明"
    r = run("phrases", "add", "王小明", home=tmp_path)
    assert r.returncode != 0 and "pinyin" in r.stderr
    assert "deleted 1" in run("phrases", "clear", home=tmp_path).stdout
