"""Export and import of the user's data: all commits and phrases as one JSON-serialisable dict, and back."""

from __future__ import annotations

import time

from engine.store.database import Database, StoreError, query_all, write
from engine.store.phrases import phrase_row
from engine.store.validate import MAX_COUNT, check_commit_fields, check_int, check_num, check_phrase

EXPORT_FORMAT = "pinyin-ime-user-data"
EXPORT_VERSION = 1
_COMMIT_COLS = ("text", "pinyin", "keys", "source", "created_at")
_PHRASE_COLS = ("text", "pinyin", "count", "last_used", "created_at", "pinned")


def export_data(db: Database) -> dict:
    """All commits and phrases as a JSON-serialisable dict (ids are not exported)."""
    commits = query_all(db, f"SELECT {', '.join(_COMMIT_COLS)} FROM commits ORDER BY created_at, id")
    phrases = [phrase_row(r) for r in query_all(db, f"SELECT {', '.join(_PHRASE_COLS)} FROM phrases ORDER BY id")]
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
            fields = check_commit_fields(c.get("text"), c.get("pinyin", ""), c.get("keys", ""),
                                         c.get("source", "import"))
            clean_c.append((*fields, check_num(c.get("created_at", now), "created_at")))
        for i, p in enumerate(phrases):
            where = f"phrases[{i}]"
            text, pinyin = check_phrase(p.get("text"), p.get("pinyin"))
            last = check_num(p.get("last_used", now), "last_used")
            created = check_num(p.get("created_at", last), "created_at")
            pinned = p.get("pinned", False)
            if not isinstance(pinned, (bool, int)) or pinned not in (0, 1):
                raise StoreError("pinned must be true or false")
            clean_p.append((text, pinyin, check_int(p.get("count", 1), "count", 1, MAX_COUNT), last, created,
                            int(pinned)))
    except StoreError as exc:
        raise StoreError(f"import data is invalid, nothing was imported: {where}: {exc}") from None
    added = 0
    with write(db) as conn:
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
