"""The ``phrases`` table: learned phrases (text, pinyin) with their counts, edited, merged and pinned."""

from __future__ import annotations

from engine.store.database import Database, StoreError, delete_row, delete_rows, query_all, write
from engine.store.validate import MAX_COUNT, check_int, check_num, check_phrase, check_pinyin, search_clause


def phrase_row(row: dict | None) -> dict | None:
    return None if row is None else {**row, "pinned": bool(row["pinned"])}


def get_phrase(db: Database, text: str, pinyin: str) -> dict | None:
    rows = query_all(db, "SELECT * FROM phrases WHERE text = ? AND pinyin = ?", (text, " ".join(str(pinyin).split())))
    return phrase_row(rows[0]) if rows else None


def _phrase_by_id(db: Database, id: int) -> dict | None:
    rows = query_all(db, "SELECT * FROM phrases WHERE id = ?", (id,))
    return phrase_row(rows[0]) if rows else None


def learn_phrase(db: Database, text: str, pinyin: str, now: float | None = None,
                 increment: int = 1) -> dict:
    """Insert the phrase, or add ``increment`` to its count; ``last_used`` becomes ``now``."""
    text, pinyin = check_phrase(text, pinyin)
    increment, t = check_int(increment, "increment", 1, 10**6), check_num(now, "now")
    with write(db) as conn:
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
    where, params = search_clause(search)
    if pinyin_prefix:
        prefix = check_pinyin(pinyin_prefix, allow_empty=True)
        where += (" AND " if where else "WHERE ") + "substr(pinyin, 1, length(?)) = ?"
        params += [prefix, prefix]
    rows = query_all(db, f"SELECT * FROM phrases {where} ORDER BY {_PHRASE_ORDER[order]} LIMIT ? OFFSET ?",
                     [*params, check_int(limit, "limit", 0, 10**9), check_int(offset, "offset", 0, 10**12)])
    return [phrase_row(r) for r in rows]  # type: ignore[misc]


def phrases_for_pinyin(db: Database, pinyin: str) -> list[dict]:
    """Phrases whose pinyin is exactly ``pinyin`` (whitespace-normalised), highest count first."""
    rows = query_all(db, "SELECT * FROM phrases WHERE pinyin = ? ORDER BY count DESC, last_used DESC, id",
                     (" ".join(str(pinyin).split()),))
    return [phrase_row(r) for r in rows]  # type: ignore[misc]


def update_phrase(db: Database, id: int, text: str | None = None, pinyin: str | None = None,
                  count: int | None = None, pinned: bool | None = None) -> dict:
    """Edit a phrase; if the new (text, pinyin) already exists, merge into that row and delete this one."""
    with write(db) as conn:
        row = _phrase_by_id(db, check_int(id, "id", 0, 2**63 - 1))
        if row is None:
            raise StoreError(f"no phrase with id {id}; list phrases to find a valid id")
        new_text, new_pinyin = check_phrase(row["text"] if text is None else text,
                                            row["pinyin"] if pinyin is None else pinyin)
        new_count = row["count"] if count is None else check_int(count, "count", 1, MAX_COUNT)
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
    return delete_row(db, "phrases", check_int(id, "id", 0, 2**63 - 1))


def delete_all_phrases(db: Database) -> int:
    return delete_rows(db, "phrases")
