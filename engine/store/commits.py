"""The ``commits`` table: the text the user committed (with its pinyin and keys), nothing while paused."""

from __future__ import annotations

from engine.store.database import Database, delete_row, delete_rows, query_all, write
from engine.store.settings import is_recording_paused
from engine.store.validate import check_commit_fields, check_int, check_num, search_clause


def record_commit(db: Database, text: str, pinyin: str = "", keys: str = "",
                  source: str = "editor", now: float | None = None) -> int | None:
    """Store one committed text; returns its id, or None (nothing written) while recording is paused."""
    fields = check_commit_fields(text, pinyin, keys, source)
    created = check_num(now, "now")
    with write(db) as conn:
        if is_recording_paused(db):
            return None
        cur = conn.execute("INSERT INTO commits(text, pinyin, keys, source, created_at) VALUES (?, ?, ?, ?, ?)",
                           (*fields, created))
        return int(cur.lastrowid)


def list_commits(db: Database, search: str | None = None, limit: int = 100, offset: int = 0,
                 newest_first: bool = True) -> list[dict]:
    where, params = search_clause(search)
    order = "DESC" if newest_first else "ASC"
    return query_all(db, f"SELECT * FROM commits {where} ORDER BY created_at {order}, id {order} LIMIT ? OFFSET ?",
                     [*params, check_int(limit, "limit", 0, 10**9), check_int(offset, "offset", 0, 10**12)])


def latest_text_by_keys(db: Database, limit: int = 20_000) -> dict[str, str]:
    """For each key sequence among the newest ``limit`` converted commits (raw letters excluded), the text
    last committed for it."""
    out: dict[str, str] = {}
    for keys, text in db.conn.execute("SELECT keys, text FROM commits WHERE keys != '' AND pinyin != '' "
                                      "ORDER BY id DESC LIMIT ?", (check_int(limit, "limit", 0, 10**9),)):
        out.setdefault(keys, text)
    return out


def newest_commits(db: Database, limit: int) -> list[dict]:
    """The last ``limit`` commits written (id, text, pinyin), newest first: what personalization trains on."""
    return query_all(db, "SELECT id, text, pinyin FROM commits ORDER BY id DESC LIMIT ?",
                     (check_int(limit, "limit", 0, 10**9),))


def commits_after(db: Database, commit_id: int) -> tuple[int, int]:
    """(how many commits, how many characters in them) were written after commit ``commit_id``."""
    n, chars = db.conn.execute("SELECT count(*), coalesce(sum(length(text)), 0) FROM commits WHERE id > ?",
                               (check_int(commit_id, "commit_id", 0, 2**63 - 1),)).fetchone()
    return int(n), int(chars)


def count_commits(db: Database, since: float | None = None) -> int:
    if since is None:
        return db.conn.execute("SELECT count(*) FROM commits").fetchone()[0]
    return db.conn.execute("SELECT count(*) FROM commits WHERE created_at >= ?",
                           (check_num(since, "since"),)).fetchone()[0]


def delete_commit(db: Database, id: int) -> bool:
    return delete_row(db, "commits", check_int(id, "id", 0, 2**63 - 1))


def delete_all_commits(db: Database) -> int:
    return delete_rows(db, "commits")
