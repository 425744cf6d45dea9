"""The schema and its versions: ``meta.schema_version`` and ``MIGRATIONS`` (index i migrates version
i -> i+1, run in one transaction with the version bump).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from engine.store.database import Database, StoreError, write


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
        with write(db) as conn:  # re-read under the write lock: concurrent openers migrate once
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
