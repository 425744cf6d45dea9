"""Tests for engine.store against real SQLite files under tmp_path."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine import store
from engine.store import StoreError

REPO_ROOT = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


@pytest.fixture
def db(tmp_path):
    d = store.open_store(tmp_path / "home")
    yield d
    d.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- location / open

def test_home_dir_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setattr(store.opening.platformdirs, "user_data_dir",
                        lambda name, appauthor=None: str(tmp_path / "pd" / name))
    monkeypatch.delenv("PINYIN_IME_HOME", raising=False)
    assert store.home_dir() == tmp_path / "pd" / "pinyin-ime"
    monkeypatch.setenv("PINYIN_IME_HOME", str(tmp_path / "env"))
    assert store.home_dir() == tmp_path / "env"
    assert store.home_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert store.home_dir(str(tmp_path / "explicit2")) == tmp_path / "explicit2"
    for name in ("pd/pinyin-ime", "env", "explicit", "explicit2"):
        assert (tmp_path / name).is_dir()
    assert store.store_path(tmp_path / "env") == tmp_path / "env" / "user.db"


@posix_only
def test_permissions_are_private(tmp_path):
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    db = store.open_store(home)
    store.record_commit(db, "你好")
    db.close()
    assert _mode(home) == 0o700
    assert _mode(home / "user.db") == 0o600
    os.chmod(home / "user.db", 0o644)  # loosened by someone: reopening tightens it again
    store.open_store(home).close()
    assert _mode(home / "user.db") == 0o600


def test_wal_pragmas_and_schema_version(db):
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert store.schema_version(db) == store.SCHEMA_VERSION == len(store.MIGRATIONS) >= 1
    assert {"meta", "commits", "phrases", "models", "settings"} <= set(db.table_names())
    assert store.integrity_ok(db)


def test_reopen_does_not_rerun_migrations(tmp_path, monkeypatch):
    home = tmp_path / "home"
    db = store.open_store(home)
    cid = store.record_commit(db, "保留")
    db.close()

    def boom(conn):
        raise AssertionError("migration re-run")

    monkeypatch.setattr(store.migrations, "MIGRATIONS", [boom] * store.SCHEMA_VERSION)
    db = store.open_store(home)
    assert [c["id"] for c in store.list_commits(db)] == [cid]
    db.close()


def test_failed_migration_leaves_db_untouched(tmp_path, monkeypatch):
    def half_done(conn):
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("crash mid-migration")

    monkeypatch.setattr(store.migrations, "MIGRATIONS", [half_done])
    with pytest.raises(RuntimeError):
        store.open_store(tmp_path)
    conn = sqlite3.connect(tmp_path / "user.db")
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    conn.close()


def test_future_schema_version_raises(tmp_path):
    db = store.open_store(tmp_path)
    db.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(store.SCHEMA_VERSION + 1)])
    db.close()
    with pytest.raises(StoreError, match="upgrade"):
        store.open_store(tmp_path)


def test_memory_store_is_migrated():
    db = store.open_memory_store()
    assert store.schema_version(db) == store.SCHEMA_VERSION
    assert store.learn_phrase(db, "你好", "ni hao")["count"] == 1


# ---------------------------------------------------------------- commits

def test_record_and_list_commits(db):
    a = store.record_commit(db, "你好", "ni hao", "nihao", now=100.0)
    b = store.record_commit(db, "世界", "shi jie", "shijie", source="cli", now=200.0)
    c = store.record_commit(db, "你们", "ni men", now=300.0)
    assert isinstance(a, int) and len({a, b, c}) == 3
    rows = store.list_commits(db)
    assert [r["id"] for r in rows] == [c, b, a]
    assert rows[1] == {"id": b, "text": "世界", "pinyin": "shi jie", "keys": "shijie", "source": "cli", "created_at": 200.0}
    assert [r["id"] for r in store.list_commits(db, newest_first=False)] == [a, b, c]
    assert [r["id"] for r in store.list_commits(db, limit=1, offset=1)] == [b]
    assert [r["id"] for r in store.list_commits(db, search="你")] == [c, a]
    assert [r["id"] for r in store.list_commits(db, search="jie")] == [b]
    assert [r["id"] for r in store.list_commits(db, search="%")] == []  # substring, not a LIKE pattern
    assert store.count_commits(db) == 3
    assert store.count_commits(db, since=200.0) == 2
    assert store.delete_commit(db, b) is True
    assert store.delete_commit(db, b) is False
    assert store.count_commits(db) == 2
    assert store.delete_all_commits(db) == 2
    assert store.list_commits(db) == []


def test_commit_validation(db):
    for bad in ("", "   ", "字" * 10_001, None, 5):
        with pytest.raises(StoreError):
            store.record_commit(db, bad)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="a-z"):
        store.record_commit(db, "你好", "nǐ hǎo")
    with pytest.raises(StoreError, match="source"):
        store.record_commit(db, "你好", source="")
    with pytest.raises(StoreError):
        store.list_commits(db, limit=-1)
    assert store.record_commit(db, "字" * 10_000) is not None
    assert store.count_commits(db) == 1


def test_paused_recording_writes_nothing(db):
    assert store.is_recording_paused(db) is False
    store.set_recording_paused(db, True)
    assert store.is_recording_paused(db) is True
    assert store.record_commit(db, "秘密") is None
    assert store.count_commits(db) == 0
    store.set_recording_paused(db, False)
    assert store.record_commit(db, "公开") is not None
    assert [r["text"] for r in store.list_commits(db)] == ["公开"]


def test_settings_are_json(db):
    assert store.get_setting(db, "missing", default={"x": 1}) == {"x": 1}
    store.set_setting(db, "ui", {"theme": "dark", "size": [1, 2]})
    assert store.get_setting(db, "ui") == {"theme": "dark", "size": [1, 2]}
    raw = db.conn.execute("SELECT value FROM settings WHERE key = 'ui'").fetchone()[0]
    assert json.loads(raw) == {"theme": "dark", "size": [1, 2]}
    with pytest.raises(StoreError, match="JSON"):
        store.set_setting(db, "bad", object())


def test_failed_write_rolls_back(db):
    store.record_commit(db, "之前")
    with pytest.raises(RuntimeError):
        with store.database.write(db) as conn:
            conn.execute("INSERT INTO commits(text, created_at) VALUES ('一半', 1)")
            raise RuntimeError("crash")
    assert [r["text"] for r in store.list_commits(db)] == ["之前"]
    assert not db.conn.in_transaction


_KILL_SCRIPT = """
import sys
from engine import store
db = store.open_store(sys.argv[1])
i = 0
while True:
    cid = store.record_commit(db, "测试%d" % i, "ce shi", "ceshi")
    print(cid, flush=True)
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_commits_survive_sigkill(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE,
                            env=env, text=True)
    printed = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            printed.append(int(line))
            if len(printed) >= 30:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    assert len(printed) == 30
    db = store.open_store(tmp_path)
    ids = {r["id"] for r in store.list_commits(db, limit=10**6)}
    assert set(printed) <= ids
    assert store.integrity_ok(db)
    db.close()


# ---------------------------------------------------------------- phrases

def test_learn_phrase_upserts(db):
    p1 = store.learn_phrase(db, "你好", "ni hao", now=10.0)
    assert (p1["count"], p1["last_used"], p1["created_at"], p1["pinned"]) == (1, 10.0, 10.0, False)
    p2 = store.learn_phrase(db, "你好", " ni  hao ", now=20.0)
    assert p2["id"] == p1["id"] and p2["count"] == 2 and p2["last_used"] == 20.0 and p2["created_at"] == 10.0
    assert store.learn_phrase(db, "你好", "ni hao", increment=5)["count"] == 7
    assert store.get_phrase(db, "你好", "ni hao")["count"] == 7
    assert store.get_phrase(db, "你坏", "ni huai") is None


@pytest.mark.parametrize("text, pinyin, match", [
    ("你好", "ni", "syllable"),
    ("你", "ni hao", "syllable"),
    ("你好", "ni3 hao3", "a-z"),
    ("你好", "Ni Hao", "a-z"),
    ("你好", "nǐ hǎo", "a-z"),
    ("", "", "empty"),
    ("你好", "", "empty"),
    ("ab", "a b", "Chinese"),
    ("你 好", "ni hao", "Chinese"),
])
def test_learn_phrase_validation(db, text, pinyin, match):
    with pytest.raises(StoreError, match=match):
        store.learn_phrase(db, text, pinyin)
    assert store.list_phrases(db) == []


def test_learn_phrase_bad_increment(db):
    with pytest.raises(StoreError):
        store.learn_phrase(db, "你好", "ni hao", increment=0)


def test_phrases_for_pinyin_and_listing(db):
    store.learn_phrase(db, "是", "shi", now=1.0)
    store.learn_phrase(db, "事", "shi", now=2.0, increment=3)
    store.learn_phrase(db, "时", "shi", now=3.0, increment=2)
    store.learn_phrase(db, "时间", "shi jian", now=4.0)
    assert [p["text"] for p in store.phrases_for_pinyin(db, "shi")] == ["事", "时", "是"]
    assert [p["text"] for p in store.phrases_for_pinyin(db, "shi jian")] == ["时间"]
    assert store.phrases_for_pinyin(db, "sh") == []
    assert [p["text"] for p in store.list_phrases(db, order="recent")] == ["时间", "时", "事", "是"]
    assert [p["text"] for p in store.list_phrases(db, order="count", limit=2)] == ["事", "时"]
    assert [p["text"] for p in store.list_phrases(db, pinyin_prefix="shi j")] == ["时间"]
    assert [p["text"] for p in store.list_phrases(db, search="间")] == ["时间"]
    assert len(store.list_phrases(db, order="text", offset=3)) == 1
    with pytest.raises(StoreError, match="order"):
        store.list_phrases(db, order="random")


def test_update_phrase_and_merge(db):
    a = store.learn_phrase(db, "他们", "ta men", now=5.0, increment=2)
    b = store.learn_phrase(db, "她们", "ta men", now=9.0, increment=3)
    edited = store.update_phrase(db, a["id"], count=4, pinned=True)
    assert (edited["id"], edited["count"], edited["pinned"]) == (a["id"], 4, True)
    with pytest.raises(StoreError, match="syllable"):
        store.update_phrase(db, a["id"], pinyin="ta")
    merged = store.update_phrase(db, a["id"], text="她们")  # collides with b: counts merge into b
    assert merged["id"] == b["id"] and merged["count"] == 7 and merged["pinned"] is True
    assert merged["created_at"] == 5.0 and merged["last_used"] == 9.0
    assert [p["text"] for p in store.list_phrases(db)] == ["她们"]
    with pytest.raises(StoreError, match="no phrase"):
        store.update_phrase(db, a["id"], count=1)
    assert store.delete_phrase(db, b["id"]) is True
    assert store.delete_phrase(db, b["id"]) is False
    store.learn_phrase(db, "我", "wo")
    store.learn_phrase(db, "你", "ni")
    assert store.delete_all_phrases(db) == 2
    assert store.list_phrases(db) == []


# ---------------------------------------------------------------- models

def test_models(db):
    f = store.add_model(db, "base", "factory", "/models/base.safetensors", version="1.0", metrics={"top1": 0.5}, now=1.0)
    p = store.add_model(db, "mine", "personal", Path("/models/mine.safetensors"), now=2.0)
    assert store.active_model(db) is None
    store.set_active_model(db, f)
    assert store.active_model(db)["id"] == f
    q = store.add_model(db, "mine2", "personal", "/m2", metrics={"top1": 0.7, "ok": [1, 2]}, activate=True, now=3.0)
    models = store.list_models(db)
    assert [m["id"] for m in models] == [f, p, q]
    assert [m["active"] for m in models] == [False, False, True]
    assert models[0]["metrics"] == {"top1": 0.5} and models[1]["metrics"] is None
    assert models[2]["metrics"] == {"top1": 0.7, "ok": [1, 2]}
    assert models[1]["path"] == "/models/mine.safetensors"
    store.set_active_model(db, p)
    assert db.conn.execute("SELECT count(*) FROM models WHERE active = 1").fetchone()[0] == 1
    assert store.active_model(db)["id"] == p
    with pytest.raises(StoreError, match="no model"):
        store.set_active_model(db, 999)
    assert store.active_model(db)["id"] == p  # failed activation changed nothing
    with pytest.raises(StoreError, match="factory"):
        store.add_model(db, "x", "weird", "/x")
    with pytest.raises(StoreError):
        store.add_model(db, "", "factory", "/x")
    assert store.delete_model_record(db, p) is True
    assert store.delete_model_record(db, p) is False
    assert store.active_model(db) is None
    assert len(store.list_models(db)) == 2


# ---------------------------------------------------------------- export / import

def _fill(db):
    store.record_commit(db, "你好", "ni hao", "nihao", now=1.0)
    store.record_commit(db, "OK!", source="cli", now=2.0)
    store.learn_phrase(db, "你好", "ni hao", now=3.0, increment=4)
    p = store.learn_phrase(db, "世界", "shi jie", now=4.0)
    store.update_phrase(db, p["id"], pinned=True)


def test_export_import_round_trip(db, tmp_path):
    _fill(db)
    exported = json.loads(json.dumps(store.export_data(db)))  # JSON-serialisable
    fresh = store.open_store(tmp_path / "other")
    counts = store.import_data(fresh, exported)
    assert counts["commits"] == 2 and counts["phrases"] == 2
    strip = lambda rows: [{k: v for k, v in r.items() if k != "id"} for r in rows]  # noqa: E731
    assert strip(store.list_commits(fresh)) == strip(store.list_commits(db))
    assert strip(store.list_phrases(fresh)) == strip(store.list_phrases(db))
    again = store.import_data(fresh, exported)  # commits deduplicated, phrase counts added
    assert again["commits"] == 0 and again["commits_skipped"] == 2
    assert store.count_commits(fresh) == 2
    assert store.get_phrase(fresh, "你好", "ni hao")["count"] == 8
    fresh.close()


@pytest.mark.parametrize("bad", [
    [],
    {"format": "something-else", "commits": []},
    {"version": 99, "commits": []},
    {"commits": "nope"},
    {"commits": [1]},
    {"commits": [{"text": "好"}, {"text": ""}]},
    {"commits": [{"text": "好", "created_at": "yesterday"}]},
    {"commits": [{"text": "好" * 10_001}]},
    {"phrases": [{"text": "你好", "pinyin": "ni hao"}, {"text": "你好", "pinyin": "ni"}]},
    {"phrases": [{"text": "你好", "pinyin": "ni hao", "count": -1}]},
    {"phrases": [{"text": "你好", "pinyin": "ni hao", "pinned": "yes"}]},
])
def test_invalid_import_writes_nothing(db, bad):
    _fill(db)
    before = store.export_data(db)
    with pytest.raises(StoreError):
        store.import_data(db, bad)
    after = store.export_data(db)
    assert (after["commits"], after["phrases"]) == (before["commits"], before["phrases"])


def test_import_max_items(db):
    data = {"commits": [{"text": "好", "created_at": float(i)} for i in range(5)]}
    with pytest.raises(StoreError, match="limit"):
        store.import_data(db, data, max_items=4)
    assert store.count_commits(db) == 0
    assert store.import_data(db, data, max_items=5)["commits"] == 5


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed-page"])
def test_a_damaged_store_is_kept_aside_and_a_fresh_one_opens(tmp_path, damage):
    db = store.open_store(tmp_path)
    for i in range(300):
        store.record_commit(db, f"你好{i}", pinyin="ni hao")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    path = store.store_path(tmp_path)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not sqlite at all" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(data[:4096] + b"\xff" * 4096 + data[8192:])
    db = store.open_store(tmp_path)
    assert db.recovered_from is not None and db.recovered_from.exists()
    assert db.recovered_from.read_bytes()[:25] == b"this is not sqlite at all" or damage != "garbage"
    assert store.integrity_ok(db) and store.count_commits(db) == 0
    store.record_commit(db, "新的")
    db.close()
    again = store.open_store(tmp_path)  # no loop: the fresh store opens cleanly next time
    assert again.recovered_from is None and store.count_commits(again) == 1


def test_only_corruption_moves_a_store_aside():
    assert store.opening._is_corruption(sqlite3.DatabaseError("file is not a database"))
    assert store.opening._is_corruption(sqlite3.DatabaseError("database disk image is malformed"))
    assert not store.opening._is_corruption(sqlite3.OperationalError("database is locked"))
    assert not store.opening._is_corruption(sqlite3.OperationalError("unable to open database file"))


def test_crash_safety_benchmark_runs_and_finds_nothing_lost(tmp_path):
    # the 100-trial loop is benchmarks/crash_safety.py; three short trials keep it working
    r = subprocess.run([sys.executable, "-m", "benchmarks.crash_safety", "--trials", "3", "--max-delay", "0.8",
                        "--home", str(tmp_path)], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parent.parent)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and result["failed_trials"] == 0, r.stdout + r.stderr
    assert result["acknowledged_commits"] > 0


def test_crash_safety_kills_after_a_personal_model_is_installed(tmp_path):
    """--finetune's long trials wait for a personalization run to finish before the kill, so the checks (store,
    commits, the active model loading and converting) run with a personal model installed, not only before the
    first one exists."""
    r = subprocess.run([sys.executable, "-m", "benchmarks.crash_safety", "--trials", "2", "--finetune",
                        "--long-every", "2", "--max-delay", "0.5", "--home", str(tmp_path)],
                       capture_output=True, text=True, timeout=400, cwd=Path(__file__).resolve().parent.parent)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and result["failed_trials"] == 0, r.stdout + r.stderr
    assert result["finetune_runs_finished"] >= 1 and result["personal_models_seen"] >= 1, r.stdout


def test_newest_commits_and_what_came_after_one(tmp_path):
    """What personalization reads from the history, through the store (no SQL outside it)."""
    db = store.open_store(tmp_path)
    ids = [store.record_commit(db, t, pinyin=p, now=float(i)) for i, (t, p) in
           enumerate([("你好", "ni hao"), ("中国", "zhong guo"), ("再见了", "zai jian le")])]
    assert [r["text"] for r in store.newest_commits(db, 2)] == ["再见了", "中国"]
    assert store.newest_commits(db, 10)[-1] == {"id": ids[0], "text": "你好", "pinyin": "ni hao"}
    assert store.commits_after(db, ids[0]) == (2, 5) and store.commits_after(db, ids[-1]) == (0, 0)
    db.close()
