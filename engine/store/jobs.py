"""The ``jobs`` table: the background training jobs (trainer.jobs), seen alike by the app and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from engine.store.database import Database, StoreError, delete_row, query_all, write
from engine.store.validate import check_int, check_json, check_num, check_str

JOB_KINDS = ("pretrain",)
JOB_STATES = ("queued", "running", "pausing", "paused", "cancelling", "interrupted", "done", "failed", "cancelled")


def add_job(db: Database, kind: str, args: list[str], out_dir: str | Path, now: float | None = None) -> int:
    if kind not in JOB_KINDS:
        raise StoreError(f"job kind {kind!r} is unknown; use one of {', '.join(JOB_KINDS)}")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise StoreError("job args must be a list of strings")
    now = check_num(now, "now")
    with write(db) as conn:
        return int(conn.execute("INSERT INTO jobs(kind, state, args, out_dir, created_at, updated_at) "
                                "VALUES (?, 'queued', ?, ?, ?, ?)",
                                (kind, check_json(args, "job args"),
                                 check_str(str(out_dir), "out_dir", 4096, allow_empty=True), now, now)).lastrowid)


def _job_row(row: dict) -> dict:
    return {**row, "args": json.loads(row["args"])}


def get_job(db: Database, id: int) -> dict | None:
    rows = query_all(db, "SELECT * FROM jobs WHERE id = ?", (check_int(id, "id", 0, 2**63 - 1),))
    return _job_row(rows[0]) if rows else None


def list_jobs(db: Database) -> list[dict]:
    return [_job_row(r) for r in query_all(db, "SELECT * FROM jobs ORDER BY id")]


def update_job(db: Database, id: int, *, state: str | None = None, pid: int | None | bool = False,
               message: str | None = None, out_dir: str | Path | None = None, expect: tuple[str, ...] | None = None,
               now: float | None = None) -> bool:
    """Change a job; with ``expect`` only if its state is one of those (returns whether it changed).
    ``pid=None`` clears the pid; leaving it out keeps it."""
    if state is not None and state not in JOB_STATES:
        raise StoreError(f"job state {state!r} is unknown; use one of {', '.join(JOB_STATES)}")
    sets, params = ["updated_at = ?"], [check_num(now, "now")]
    if state is not None:
        sets.append("state = ?")
        params.append(state)
    if pid is not False:
        sets.append("pid = ?")
        params.append(pid)
    if message is not None:
        sets.append("message = ?")
        params.append(check_str(message, "message", 2000, allow_empty=True))
    if out_dir is not None:
        sets.append("out_dir = ?")
        params.append(check_str(str(out_dir), "out_dir", 4096))
    where, wparams = "id = ?", [check_int(id, "id", 0, 2**63 - 1)]
    if expect:
        where += f" AND state IN ({', '.join('?' * len(expect))})"
        wparams += list(expect)
    with write(db) as conn:
        return conn.execute(f"UPDATE jobs SET {', '.join(sets)} WHERE {where}", params + wparams).rowcount > 0


def delete_job(db: Database, id: int) -> bool:
    return delete_row(db, "jobs", check_int(id, "id", 0, 2**63 - 1))
