"""The ``settings`` table: JSON values, one key each; and the "recording paused" switch kept there."""

from __future__ import annotations

import json
from typing import Any

from engine.store.database import Database, write
from engine.store.validate import check_json, check_str

PAUSED_KEY = "recording_paused"


def get_setting(db: Database, key: str, default: Any = None) -> Any:
    row = db.conn.execute("SELECT value FROM settings WHERE key = ?", (check_str(key, "setting key", 200),)).fetchone()
    return default if row is None or row[0] is None else json.loads(row[0])


def set_setting(db: Database, key: str, value: Any) -> None:
    key, encoded = check_str(key, "setting key", 200), check_json(value, "setting value")
    with write(db) as conn:
        conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, encoded))


def is_recording_paused(db: Database) -> bool:
    return bool(get_setting(db, PAUSED_KEY, False))


def set_recording_paused(db: Database, paused: bool) -> None:
    set_setting(db, PAUSED_KEY, bool(paused))
