"""The store's connection and its write transactions: ``Database``, ``StoreError``, ``transaction``/``write``.

Every write runs in one ``BEGIN IMMEDIATE`` transaction (``write``), so a failure mid-write leaves the db as
it was before; nested use becomes a savepoint. ``query_all`` runs a query into a list of dicts.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Database:
    """The store's connection, with the little of sqlite-utils' ``Database`` these functions use (``conn``,
    ``query`` → dicts, ``atomic`` → a savepoint, ``close``); importing sqlite-utils cost the window 0.3 s."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.isolation_level = None  # autocommit: a statement outside ``write``'s explicit BEGIN commits at once
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


def transaction(db: Database):
    """Several writes as one: all of them are kept or none (``with store.transaction(db): ...``); the store's
    functions called inside join it instead of committing each on its own."""
    return write(db)


@contextlib.contextmanager
def write(db: Database) -> Iterator[sqlite3.Connection]:
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


def delete_row(db: Database, table: str, id: int) -> bool:
    """Delete row ``id`` (checked by the caller) of one of the store's tables; whether there was one."""
    with write(db) as conn:
        return conn.execute(f"DELETE FROM {table} WHERE id = ?", (id,)).rowcount > 0


def delete_rows(db: Database, table: str) -> int:
    """Delete every row of one of the store's tables; how many there were."""
    with write(db) as conn:
        return conn.execute(f"DELETE FROM {table}").rowcount


def query_all(db: Database, sql: str, params: Any = ()) -> list[dict]:
    return list(db.query(sql, params))


def integrity_ok(db: Database) -> bool:
    rows = db.conn.execute("PRAGMA integrity_check").fetchall()
    return [tuple(r) for r in rows] == [("ok",)]
