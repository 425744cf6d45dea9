"""What the last personalization run saw, kept in the store's settings: what to train on next, and how much
was typed since (for the button's label)."""

from __future__ import annotations

import time

from engine import store
LAST_RUN_KEY = "personalize.last_run"


def new_text_since_last_run(db) -> dict:
    """What was typed since the last personalization run finished (accepted or not): {"commits": n,
    "chars": m, "last_run": unix time or None}. For the button's label ("Personalize (1,234 new lines)")."""
    last = store.get_setting(db, LAST_RUN_KEY, None) or {}
    after = int(last.get("commit_id", 0))
    n, chars = store.commits_after(db, after)
    return {"commits": n, "chars": chars, "last_run": last.get("time")}


def mark_run(db, last_commit_id: int, accepted: bool, version: str | None) -> None:
    store.set_setting(db, LAST_RUN_KEY, {"commit_id": int(last_commit_id), "time": time.time(),
                                         "accepted": bool(accepted), "version": version})
