"""SQLite user store: committed text, learned phrases, model versions, settings.

Design, in the spirit of sqlite-utils: plain functions that take a
``Database`` first and return plain dicts/lists; no ORM.

* One file, ``<home>/user.db`` (home: explicit arg > ``$PINYIN_IME_HOME`` >
  platformdirs), private to the user (dir 0700, file 0600 on POSIX).
* WAL + ``synchronous=FULL``: once a write function returns, its data survives
  a crash or SIGKILL.  Every write runs in one ``BEGIN IMMEDIATE`` transaction
  (``_write``), so a failure mid-write leaves the db as it was before.
* Schema versioning: ``meta.schema_version`` and ``MIGRATIONS`` (index i
  migrates version i -> i+1, run in one transaction with the version bump).
* All input is validated up front; bad input raises ``StoreError`` (a
  ``ValueError``) with a message saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "pinyin-ime"
ENV_HOME = "PINYIN_IME_HOME"
EXPORT_FORMAT = "pinyin-ime-user-data"
EXPORT_VERSION = 1
MAX_TEXT = 10_000  # characters of committed text
MAX_AUX = 100_000  # characters of pinyin / raw keys
MAX_PHRASE = 64  # characters (= syllables) in a learned phrase
MAX_COUNT = 10**12
MODEL_KINDS = ("factory", "personal", "pretrained")
PAUSED_KEY = "recording_paused"

_SYLLABLE = re.compile(r"[a-z]{1,6}")
_HAN = re.compile(r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_SOURCE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class Database:
    """The store's connection, with the little of sqlite-utils' ``Database`` these functions use (``conn``,
    ``query`` → dicts, ``atomic`` → a savepoint, ``close``); importing sqlite-utils cost the window 0.3 s."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.isolation_level = None  # autocommit: a statement outside ``_write``'s explicit BEGIN commits at once
        self.conn = conn
        self.recovered_from: Path | None = None
        self.recovery_reason = ""

    def query(self, sql: str, params: Any = ()) -> Iterator[dict]:
        cur = self.conn.execute(sql, params)
        keys = [d[0] for d in cur.description or ()]
        for row in cur:
            yield dict(zip(keys, row))

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        name = f"sp_{id(self)}_{time.monotonic_ns()}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]

    def close(self) -> None:
        self.conn.close()


class StoreError(ValueError):
    """Bad input or an unusable store; the message says what to do."""


# ---------------------------------------------------------------- location / open

def home_dir(explicit: str | Path | None = None) -> Path:
    """Resolve (and create, 0700 on POSIX) the data directory."""
    if explicit is not None and str(explicit):
        home = Path(explicit)
    elif os.environ.get(ENV_HOME):
        home = Path(os.environ[ENV_HOME])
    else:
        home = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    home = home.expanduser()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        os.chmod(home, 0o700)
    return home


def cache_dir() -> Path:
    """Where re-creatable data goes (annotated corpora): ``$PINYIN_IME_CACHE`` or the platform's cache folder."""
    return Path(os.environ.get("PINYIN_IME_CACHE") or platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def store_path(home: str | Path) -> Path:
    return Path(home) / "user.db"


def open_store(home: str | Path | None = None) -> Database:
    """Open (creating and migrating if needed) the user store in ``home``.

    A damaged file (not a database, malformed, failing SQLite's quick check) is never opened half-way and never
    deleted: it is moved aside as ``user.db.damaged-<time>`` (with its -wal/-shm files), a fresh store is
    started, and ``db.recovered_from`` names the kept file so the app can say so. Other errors (locked, no
    permission, a store from a newer version) are raised as they are: moving those aside would lose data."""
    path = store_path(home_dir(home))
    try:
        db = _open(path)
    except sqlite3.DatabaseError as e:
        if not _is_corruption(e):
            raise
        kept = _move_aside(path)
        db = _open(path)
        db.recovered_from = kept
        db.recovery_reason = str(e)
    return db


def _open(path: Path) -> Database:
    # create private, never world-readable; an existing file is not opened here: closing any descriptor on it
    # would drop every POSIX lock this process's other connections hold on it (SQLite's documented hazard)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    if os.name == "posix":
        os.chmod(path, 0o600)
    db = Database(sqlite3.connect(str(path), timeout=5.0))
    db.recovered_from = None
    try:
        db.conn.execute("PRAGMA busy_timeout=5000")
        mode = db.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"could not enable WAL mode on {path} (got {mode!r}); keep the data dir on a local disk")
        check = db.conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(r) for r in check] != [("ok",)]:
            raise sqlite3.DatabaseError(f"database disk image is malformed ({check[0][0]})")
        _init(db)
    except BaseException:
        db.close()
        raise
    return db


_CORRUPTION = ("file is not a database", "malformed", "database corrupt")


def _is_corruption(e: sqlite3.DatabaseError) -> bool:
    return any(m in str(e).lower() for m in _CORRUPTION)


def _move_aside(path: Path) -> Path:
    kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while kept.exists():
        n += 1
        kept = kept.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(kept.with_name(kept.name + suffix))
    path.replace(kept)
    return kept


def open_memory_store() -> Database:
    """A migrated in-memory store, for tests."""
    db = Database(sqlite3.connect(":memory:"))
    db.recovered_from = None
    _init(db)
    return db


def _init(db: Database) -> None:
    db.conn.execute("PRAGMA synchronous=FULL")
    db.conn.execute("PRAGMA foreign_keys=ON")
    migrate(db)


def transaction(db: Database):
    """Several writes as one: all of them are kept or none (``with store.transaction(db): ...``); the store's
    functions called inside join it instead of committing each on its own."""
    return _write(db)


@contextlib.contextmanager
def _write(db: Database) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE); nested use becomes a savepoint."""
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _rows(db: Database, sql: str, params: Any = ()) -> list[dict]:
    return list(db.query(sql, params))


# ---------------------------------------------------------------- migrations

def _m1_initial(conn: sqlite3.Connection) -> None:
    # one statement at a time: executescript() would COMMIT the migration transaction
    for sql in (
        """CREATE TABLE commits (id INTEGER PRIMARY KEY, text TEXT NOT NULL, pinyin TEXT, keys TEXT,
               source TEXT NOT NULL DEFAULT 'editor', created_at REAL NOT NULL)""",
        "CREATE INDEX idx_commits_created_at ON commits(created_at)",
        """CREATE TABLE phrases (id INTEGER PRIMARY KEY, text TEXT NOT NULL, pinyin TEXT NOT NULL,
               count INTEGER NOT NULL DEFAULT 1, last_used REAL NOT NULL, created_at REAL NOT NULL,
               pinned INTEGER NOT NULL DEFAULT 0, UNIQUE(text, pinyin))""",
        "CREATE INDEX idx_phrases_pinyin ON phrases(pinyin)",
        """CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
               path TEXT NOT NULL, version TEXT, metrics TEXT, created_at REAL NOT NULL,
               active INTEGER NOT NULL DEFAULT 0)""",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT)",
    ):
        conn.execute(sql)


def _m2_pairs(conn: sqlite3.Connection) -> None:
    # which word the user picked right after which: instant learning's "pairing with the previous word"
    conn.execute("""CREATE TABLE pairs (prev TEXT NOT NULL, text TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 1,
                    last_used REAL NOT NULL, PRIMARY KEY (prev, text))""")


def _m3_jobs(conn: sqlite3.Connection) -> None:
    # background training jobs (trainer.jobs): the app and the CLI see the same registry
    conn.execute("""CREATE TABLE jobs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
                    pid INTEGER, args TEXT NOT NULL, out_dir TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
                    created_at REAL NOT NULL, updated_at REAL NOT NULL)""")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m1_initial, _m2_pairs, _m3_jobs]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: Database) -> int:
    if not db.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone():
        return 0
    row = db.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(db: Database) -> int:
    """Bring the schema up to date; returns the final version."""
    target = len(MIGRATIONS)
    while True:
        with _write(db) as conn:  # re-read under the write lock: concurrent openers migrate once
            version = schema_version(db)
            if version > target:
                raise StoreError(
                    f"user.db has schema version {version} but this app only knows {target}: "
                    "please upgrade the app (or point PINYIN_IME_HOME at another directory)")
            if version == target:
                return version
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            MIGRATIONS[version](conn)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(version + 1),))


# ---------------------------------------------------------------- validation

def _str(value: Any, what: str, max_len: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise StoreError(f"{what} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise StoreError(f"{what} is empty; pass some non-blank text")
    if len(value) > max_len:
        raise StoreError(f"{what} is {len(value)} characters long; the limit is {max_len}, split it up")
    return value


def _pinyin(value: Any, *, allow_empty: bool) -> str:
    text = " ".join(_str(value, "pinyin", MAX_AUX, allow_empty=allow_empty).split())
    for syl in text.split():
        if not _SYLLABLE.fullmatch(syl):
            raise StoreError(
                f"pinyin syllable {syl!r} is invalid; use space-separated toneless lowercase a-z "
                "syllables such as 'ni hao' (write ü as v)")
    return text


def _phrase(text: Any, pinyin: Any) -> tuple[str, str]:
    text = _str(text, "phrase text", MAX_PHRASE)
    if not _HAN.fullmatch(text):
        raise StoreError(f"phrase text {text!r} must consist of Chinese characters only (no spaces or punctuation)")
    pinyin = _pinyin(pinyin, allow_empty=False)
    if len(pinyin.split()) != len(text):
        raise StoreError(
            f"phrase {text!r} has {len(text)} characters but pinyin {pinyin!r} has "
            f"{len(pinyin.split())} syllables; give exactly one syllable per character")
    return text, pinyin


def _num(value: Any, what: str) -> float:
    if value is None:
        return time.time()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise StoreError(f"{what} must be a non-negative unix time in seconds, got {value!r}")
    return float(value)


def _int(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise StoreError(f"{what} must be an integer between {lo} and {hi}, got {value!r}")
    return value


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} must be JSON-serialisable (dicts, lists, str, numbers, bools, None): {exc}") from None


def _commit_fields(text: Any, pinyin: Any, keys: Any, source: Any) -> tuple[str, str, str, str]:
    text = _str(text, "commit text", MAX_TEXT)
    pinyin = _pinyin(pinyin if pinyin is not None else "", allow_empty=True)
    keys = _str(keys if keys is not None else "", "keys", MAX_AUX, allow_empty=True)
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise StoreError(f"source {source!r} is invalid; use a short lowercase name such as 'editor', 'import' or 'cli'")
    return text, pinyin, keys, source


# ---------------------------------------------------------------- settings

def get_setting(db: Database, key: str, default: Any = None) -> Any:
    row = db.conn.execute("SELECT value FROM settings WHERE key = ?", (_str(key, "setting key", 200),)).fetchone()
    return default if row is None or row[0] is None else json.loads(row[0])


def set_setting(db: Database, key: str, value: Any) -> None:
    key, encoded = _str(key, "setting key", 200), _json(value, "setting value")
    with _write(db) as conn:
        conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, encoded))


def is_recording_paused(db: Database) -> bool:
    return bool(get_setting(db, PAUSED_KEY, False))


def set_recording_paused(db: Database, paused: bool) -> None:
    set_setting(db, PAUSED_KEY, bool(paused))


# ---------------------------------------------------------------- commits

def record_commit(db: Database, text: str, pinyin: str = "", keys: str = "",
                  source: str = "editor", now: float | None = None) -> int | None:
    """Store one committed text; returns its id, or None (nothing written) while recording is paused."""
    fields = _commit_fields(text, pinyin, keys, source)
    created = _num(now, "now")
    with _write(db) as conn:
        if is_recording_paused(db):
            return None
        cur = conn.execute("INSERT INTO commits(text, pinyin, keys, source, created_at) VALUES (?, ?, ?, ?, ?)",
                           (*fields, created))
        return int(cur.lastrowid)


def list_commits(db: Database, search: str | None = None, limit: int = 100, offset: int = 0,
                 newest_first: bool = True) -> list[dict]:
    where, params = _search_clause(search)
    order = "DESC" if newest_first else "ASC"
    return _rows(db, f"SELECT * FROM commits {where} ORDER BY created_at {order}, id {order} LIMIT ? OFFSET ?",
                 [*params, _int(limit, "limit", 0, 10**9), _int(offset, "offset", 0, 10**12)])


def latest_text_by_keys(db: Database, limit: int = 20_000) -> dict[str, str]:
    """For each key sequence among the newest ``limit`` converted commits (raw letters excluded), the text
    last committed for it."""
    out: dict[str, str] = {}
    for keys, text in db.conn.execute("SELECT keys, text FROM commits WHERE keys != '' AND pinyin != '' "
                                      "ORDER BY id DESC LIMIT ?", (_int(limit, "limit", 0, 10**9),)):
        out.setdefault(keys, text)
    return out


def newest_commits(db: Database, limit: int) -> list[dict]:
    """The last ``limit`` commits written (id, text, pinyin), newest first: what personalization trains on."""
    return _rows(db, "SELECT id, text, pinyin FROM commits ORDER BY id DESC LIMIT ?", (_int(limit, "limit", 0, 10**9),))


def commits_after(db: Database, commit_id: int) -> tuple[int, int]:
    """(how many commits, how many characters in them) were written after commit ``commit_id``."""
    n, chars = db.conn.execute("SELECT count(*), coalesce(sum(length(text)), 0) FROM commits WHERE id > ?",
                               (_int(commit_id, "commit_id", 0, 2**63 - 1),)).fetchone()
    return int(n), int(chars)


def count_commits(db: Database, since: float | None = None) -> int:
    if since is None:
        return db.conn.execute("SELECT count(*) FROM commits").fetchone()[0]
    return db.conn.execute("SELECT count(*) FROM commits WHERE created_at >= ?", (_num(since, "since"),)).fetchone()[0]


def delete_commit(db: Database, id: int) -> bool:
    with _write(db) as conn:
        return conn.execute("DELETE FROM commits WHERE id = ?", (_int(id, "id", 0, 2**63 - 1),)).rowcount > 0


def delete_all_commits(db: Database) -> int:
    with _write(db) as conn:
        return conn.execute("DELETE FROM commits").rowcount


def _search_clause(search: str | None) -> tuple[str, list]:
    if search is None or search == "":
        return "", []
    search = _str(search, "search", MAX_TEXT, allow_empty=True)
    return "WHERE (instr(text, ?) > 0 OR instr(pinyin, ?) > 0)", [search, search]


# ---------------------------------------------------------------- phrases

def _phrase_row(row: dict | None) -> dict | None:
    return None if row is None else {**row, "pinned": bool(row["pinned"])}


def get_phrase(db: Database, text: str, pinyin: str) -> dict | None:
    rows = _rows(db, "SELECT * FROM phrases WHERE text = ? AND pinyin = ?", (text, " ".join(str(pinyin).split())))
    return _phrase_row(rows[0]) if rows else None


def _phrase_by_id(db: Database, id: int) -> dict | None:
    rows = _rows(db, "SELECT * FROM phrases WHERE id = ?", (id,))
    return _phrase_row(rows[0]) if rows else None


def learn_phrase(db: Database, text: str, pinyin: str, now: float | None = None,
                 increment: int = 1) -> dict:
    """Insert the phrase, or add ``increment`` to its count; ``last_used`` becomes ``now``."""
    text, pinyin = _phrase(text, pinyin)
    increment, t = _int(increment, "increment", 1, 10**6), _num(now, "now")
    with _write(db) as conn:
        conn.execute(
            """INSERT INTO phrases(text, pinyin, count, last_used, created_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(text, pinyin) DO UPDATE SET count = min(count + excluded.count, ?),
               last_used = excluded.last_used""", (text, pinyin, increment, t, t, MAX_COUNT))
        return get_phrase(db, text, pinyin)  # type: ignore[return-value]


_PHRASE_ORDER = {"count": "count DESC, last_used DESC, id", "recent": "last_used DESC, id DESC",
                 "text": "text, pinyin, id"}


def list_phrases(db: Database, search: str | None = None, pinyin_prefix: str | None = None,
                 limit: int = 100, offset: int = 0, order: str = "count") -> list[dict]:
    if order not in _PHRASE_ORDER:
        raise StoreError(f"order {order!r} is unknown; use one of {', '.join(_PHRASE_ORDER)}")
    where, params = _search_clause(search)
    if pinyin_prefix:
        prefix = _pinyin(pinyin_prefix, allow_empty=True)
        where += (" AND " if where else "WHERE ") + "substr(pinyin, 1, length(?)) = ?"
        params += [prefix, prefix]
    rows = _rows(db, f"SELECT * FROM phrases {where} ORDER BY {_PHRASE_ORDER[order]} LIMIT ? OFFSET ?",
                 [*params, _int(limit, "limit", 0, 10**9), _int(offset, "offset", 0, 10**12)])
    return [_phrase_row(r) for r in rows]  # type: ignore[misc]


def phrases_for_pinyin(db: Database, pinyin: str) -> list[dict]:
    """Phrases whose pinyin is exactly ``pinyin`` (whitespace-normalised), highest count first."""
    rows = _rows(db, "SELECT * FROM phrases WHERE pinyin = ? ORDER BY count DESC, last_used DESC, id",
                 (" ".join(str(pinyin).split()),))
    return [_phrase_row(r) for r in rows]  # type: ignore[misc]


def update_phrase(db: Database, id: int, text: str | None = None, pinyin: str | None = None,
                  count: int | None = None, pinned: bool | None = None) -> dict:
    """Edit a phrase; if the new (text, pinyin) already exists, merge into that row and delete this one."""
    with _write(db) as conn:
        row = _phrase_by_id(db, _int(id, "id", 0, 2**63 - 1))
        if row is None:
            raise StoreError(f"no phrase with id {id}; list phrases to find a valid id")
        new_text, new_pinyin = _phrase(row["text"] if text is None else text, row["pinyin"] if pinyin is None else pinyin)
        new_count = row["count"] if count is None else _int(count, "count", 1, MAX_COUNT)
        new_pinned = row["pinned"] if pinned is None else bool(pinned)
        other = get_phrase(db, new_text, new_pinyin)
        if other is not None and other["id"] != row["id"]:
            conn.execute("DELETE FROM phrases WHERE id = ?", (row["id"],))
            conn.execute(
                """UPDATE phrases SET count = min(count + ?, ?), last_used = max(last_used, ?),
                   created_at = min(created_at, ?), pinned = max(pinned, ?) WHERE id = ?""",
                (new_count, MAX_COUNT, row["last_used"], row["created_at"], int(new_pinned), other["id"]))
            return _phrase_by_id(db, other["id"])  # type: ignore[return-value]
        conn.execute("UPDATE phrases SET text = ?, pinyin = ?, count = ?, pinned = ? WHERE id = ?",
                     (new_text, new_pinyin, new_count, int(new_pinned), row["id"]))
        return _phrase_by_id(db, row["id"])  # type: ignore[return-value]


def delete_phrase(db: Database, id: int) -> bool:
    with _write(db) as conn:
        return conn.execute("DELETE FROM phrases WHERE id = ?", (_int(id, "id", 0, 2**63 - 1),)).rowcount > 0


def delete_all_phrases(db: Database) -> int:
    with _write(db) as conn:
        return conn.execute("DELETE FROM phrases").rowcount


# ---------------------------------------------------------------- pairs (word picked after word)

def learn_pair(db: Database, prev: str, text: str, now: float | None = None) -> None:
    prev = _str(prev, "prev", MAX_PHRASE)
    text = _str(text, "text", MAX_PHRASE)
    with _write(db) as conn:
        conn.execute("""INSERT INTO pairs(prev, text, count, last_used) VALUES (?, ?, 1, ?)
                        ON CONFLICT(prev, text) DO UPDATE SET count = min(count + 1, ?), last_used = excluded.last_used""",
                     (prev, text, _num(now, "now"), MAX_COUNT))


def list_pairs(db: Database, limit: int = 100_000) -> list[dict]:
    return _rows(db, "SELECT * FROM pairs ORDER BY count DESC, last_used DESC LIMIT ?", (_int(limit, "limit", 0, 10**9),))


def delete_all_pairs(db: Database) -> int:
    with _write(db) as conn:
        return conn.execute("DELETE FROM pairs").rowcount


# ---------------------------------------------------------------- models

def _model_row(row: dict) -> dict:
    return {**row, "active": bool(row["active"]), "metrics": None if row["metrics"] is None else json.loads(row["metrics"])}


def add_model(db: Database, name: str, kind: str, path: str | Path, version: str | None = None,
              metrics: dict | None = None, activate: bool = False, now: float | None = None) -> int:
    name = _str(name, "model name", 200)
    if kind not in MODEL_KINDS:
        raise StoreError(f"model kind {kind!r} is unknown; use one of {', '.join(MODEL_KINDS)}")
    path = _str(str(path) if isinstance(path, Path) else path, "model path", 4096)
    if version is not None:
        version = _str(version, "model version", 200)
    if metrics is not None and not isinstance(metrics, dict):
        raise StoreError("model metrics must be a dict (or None)")
    encoded = None if metrics is None else _json(metrics, "model metrics")
    created = _num(now, "now")
    with _write(db) as conn:
        cur = conn.execute("INSERT INTO models(name, kind, path, version, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           (name, kind, path, version, encoded, created))
        model_id = int(cur.lastrowid)
        if activate:
            set_active_model(db, model_id)
        return model_id


def list_models(db: Database) -> list[dict]:
    return [_model_row(r) for r in _rows(db, "SELECT * FROM models ORDER BY created_at, id")]


def active_model(db: Database) -> dict | None:
    rows = _rows(db, "SELECT * FROM models WHERE active = 1 ORDER BY id DESC LIMIT 1")
    return _model_row(rows[0]) if rows else None


def set_active_model(db: Database, id: int) -> None:
    """Make model ``id`` the only active one (one transaction)."""
    id = _int(id, "id", 0, 2**63 - 1)
    with _write(db) as conn:
        if not conn.execute("SELECT 1 FROM models WHERE id = ?", (id,)).fetchone():
            raise StoreError(f"no model with id {id}; list models to find a valid id")
        conn.execute("UPDATE models SET active = (id = ?)", (id,))


def delete_model_record(db: Database, id: int) -> bool:
    """Forget a model record (the file on disk is left alone)."""
    with _write(db) as conn:
        return conn.execute("DELETE FROM models WHERE id = ?", (_int(id, "id", 0, 2**63 - 1),)).rowcount > 0


# ---------------------------------------------------------------- jobs

JOB_KINDS = ("pretrain",)
JOB_STATES = ("queued", "running", "pausing", "paused", "cancelling", "interrupted", "done", "failed", "cancelled")


def add_job(db: Database, kind: str, args: list[str], out_dir: str | Path, now: float | None = None) -> int:
    if kind not in JOB_KINDS:
        raise StoreError(f"job kind {kind!r} is unknown; use one of {', '.join(JOB_KINDS)}")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise StoreError("job args must be a list of strings")
    now = _num(now, "now")
    with _write(db) as conn:
        return int(conn.execute("INSERT INTO jobs(kind, state, args, out_dir, created_at, updated_at) "
                                "VALUES (?, 'queued', ?, ?, ?, ?)",
                                (kind, _json(args, "job args"), _str(str(out_dir), "out_dir", 4096, allow_empty=True), now,
                                 now)).lastrowid)


def _job_row(row: dict) -> dict:
    return {**row, "args": json.loads(row["args"])}


def get_job(db: Database, id: int) -> dict | None:
    rows = _rows(db, "SELECT * FROM jobs WHERE id = ?", (_int(id, "id", 0, 2**63 - 1),))
    return _job_row(rows[0]) if rows else None


def list_jobs(db: Database) -> list[dict]:
    return [_job_row(r) for r in _rows(db, "SELECT * FROM jobs ORDER BY id")]


def update_job(db: Database, id: int, *, state: str | None = None, pid: int | None | bool = False,
               message: str | None = None, out_dir: str | Path | None = None, expect: tuple[str, ...] | None = None,
               now: float | None = None) -> bool:
    """Change a job; with ``expect`` only if its state is one of those (returns whether it changed).
    ``pid=None`` clears the pid; leaving it out keeps it."""
    if state is not None and state not in JOB_STATES:
        raise StoreError(f"job state {state!r} is unknown; use one of {', '.join(JOB_STATES)}")
    sets, params = ["updated_at = ?"], [_num(now, "now")]
    if state is not None:
        sets.append("state = ?")
        params.append(state)
    if pid is not False:
        sets.append("pid = ?")
        params.append(pid)
    if message is not None:
        sets.append("message = ?")
        params.append(_str(message, "message", 2000, allow_empty=True))
    if out_dir is not None:
        sets.append("out_dir = ?")
        params.append(_str(str(out_dir), "out_dir", 4096))
    where, wparams = "id = ?", [_int(id, "id", 0, 2**63 - 1)]
    if expect:
        where += f" AND state IN ({', '.join('?' * len(expect))})"
        wparams += list(expect)
    with _write(db) as conn:
        return conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE {where}", params + wparams).rowcount > 0


def delete_job(db: Database, id: int) -> bool:
    with _write(db) as conn:
        return conn.execute("DELETE FROM jobs WHERE id = ?", (_int(id, "id", 0, 2**63 - 1),)).rowcount > 0


# ---------------------------------------------------------------- export / import

_COMMIT_COLS = ("text", "pinyin", "keys", "source", "created_at")
_PHRASE_COLS = ("text", "pinyin", "count", "last_used", "created_at", "pinned")


def export_data(db: Database) -> dict:
    """All commits and phrases as a JSON-serialisable dict (ids are not exported)."""
    commits = _rows(db, f"SELECT {', '.join(_COMMIT_COLS)} FROM commits ORDER BY created_at, id")
    phrases = [_phrase_row(r) for r in _rows(db, f"SELECT {', '.join(_PHRASE_COLS)} FROM phrases ORDER BY id")]
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "exported_at": time.time(),
            "commits": [{**c, "pinyin": c["pinyin"] or "", "keys": c["keys"] or ""} for c in commits],
            "phrases": phrases}


def _items(data: dict, name: str) -> list:
    items = data.get(name, [])
    if not isinstance(items, list):
        raise StoreError(f"import data: {name!r} must be a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise StoreError(f"import data: {name}[{i}] must be an object")
    return items


def import_data(db: Database, data: dict, max_items: int = 200_000) -> dict:
    """Validate everything, then add it in one transaction: commits are appended (exact duplicates
    skipped), phrases are merged (counts added). Bad data raises StoreError and writes nothing."""
    if not isinstance(data, dict):
        raise StoreError("import data must be a JSON object as produced by export_data")
    if data.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise StoreError(f"import data has format {data.get('format')!r}; expected {EXPORT_FORMAT!r}")
    version = data.get("version", EXPORT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version > EXPORT_VERSION:
        raise StoreError(f"import data version {version!r} is not supported; upgrade the app")
    commits, phrases = _items(data, "commits"), _items(data, "phrases")
    if len(commits) + len(phrases) > max_items:
        raise StoreError(f"import data has {len(commits) + len(phrases)} items; the limit is {max_items}, split the file")
    now, clean_c, clean_p = time.time(), [], []
    try:
        for i, c in enumerate(commits):
            where = f"commits[{i}]"
            fields = _commit_fields(c.get("text"), c.get("pinyin", ""), c.get("keys", ""), c.get("source", "import"))
            clean_c.append((*fields, _num(c.get("created_at", now), "created_at")))
        for i, p in enumerate(phrases):
            where = f"phrases[{i}]"
            text, pinyin = _phrase(p.get("text"), p.get("pinyin"))
            last = _num(p.get("last_used", now), "last_used")
            created = _num(p.get("created_at", last), "created_at")
            pinned = p.get("pinned", False)
            if not isinstance(pinned, (bool, int)) or pinned not in (0, 1):
                raise StoreError("pinned must be true or false")
            clean_p.append((text, pinyin, _int(p.get("count", 1), "count", 1, MAX_COUNT), last, created, int(pinned)))
    except StoreError as exc:
        raise StoreError(f"import data is invalid, nothing was imported: {where}: {exc}") from None
    added = 0
    with _write(db) as conn:
        for row in clean_c:
            if not conn.execute("SELECT 1 FROM commits WHERE created_at = ? AND text = ? AND pinyin = ? AND keys = ? "
                                "AND source = ?", (row[4], *row[:4])).fetchone():
                conn.execute("INSERT INTO commits(text, pinyin, keys, source, created_at) VALUES (?, ?, ?, ?, ?)", row)
                added += 1
        conn.executemany(
            """INSERT INTO phrases(text, pinyin, count, last_used, created_at, pinned) VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(text, pinyin) DO UPDATE SET count = min(count + excluded.count, %d),
               last_used = max(last_used, excluded.last_used), created_at = min(created_at, excluded.created_at),
               pinned = max(pinned, excluded.pinned)""" % MAX_COUNT, clean_p)
    return {"commits": added, "commits_skipped": len(clean_c) - added, "phrases": len(clean_p)}


def integrity_ok(db: Database) -> bool:
    rows = db.conn.execute("PRAGMA integrity_check").fetchall()
    return [tuple(r) for r in rows] == [("ok",)]
