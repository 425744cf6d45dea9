"""The ``pairs`` table: which word the user picked right after which."""

from __future__ import annotations

from engine.store.database import Database, delete_rows, query_all, write
from engine.store.validate import MAX_COUNT, MAX_PHRASE, check_int, check_num, check_str


def learn_pair(db: Database, prev: str, text: str, now: float | None = None) -> None:
    prev = check_str(prev, "prev", MAX_PHRASE)
    text = check_str(text, "text", MAX_PHRASE)
    with write(db) as conn:
        conn.execute("""INSERT INTO pairs(prev, text, count, last_used) VALUES (?, ?, 1, ?)
                        ON CONFLICT(prev, text) DO UPDATE SET count = min(count + 1, ?), last_used = excluded.last_used""",
                     (prev, text, check_num(now, "now"), MAX_COUNT))


def list_pairs(db: Database, limit: int = 100_000) -> list[dict]:
    return query_all(db, "SELECT * FROM pairs ORDER BY count DESC, last_used DESC LIMIT ?",
                     (check_int(limit, "limit", 0, 10**9),))


def delete_all_pairs(db: Database) -> int:
    return delete_rows(db, "pairs")
