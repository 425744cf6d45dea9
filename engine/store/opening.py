"""Where the store lives and how it is opened: the data dir, ``open_store`` (WAL, ``synchronous=FULL``,
migrated), a damaged file moved aside, and the in-memory store for tests.

One file, ``<home>/user.db`` (home: explicit arg > ``$PINYIN_IME_HOME`` > platformdirs), private to the
user (dir 0700, file 0600 on POSIX).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import platformdirs

from engine.store.database import Database, StoreError
from engine.store.migrations import migrate

APP_NAME = "pinyin-ime"
ENV_HOME = "PINYIN_IME_HOME"


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
