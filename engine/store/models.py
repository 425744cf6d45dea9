"""The ``models`` table: the model versions on disk (factory, personal, pretrained), one of them active."""

from __future__ import annotations

import json
from pathlib import Path

from engine.store.database import Database, StoreError, delete_row, query_all, write
from engine.store.validate import check_int, check_json, check_num, check_str

MODEL_KINDS = ("factory", "personal", "pretrained")


def _model_row(row: dict) -> dict:
    return {**row, "active": bool(row["active"]),
            "metrics": None if row["metrics"] is None else json.loads(row["metrics"])}


def add_model(db: Database, name: str, kind: str, path: str | Path, version: str | None = None,
              metrics: dict | None = None, activate: bool = False, now: float | None = None) -> int:
    name = check_str(name, "model name", 200)
    if kind not in MODEL_KINDS:
        raise StoreError(f"model kind {kind!r} is unknown; use one of {', '.join(MODEL_KINDS)}")
    path = check_str(str(path) if isinstance(path, Path) else path, "model path", 4096)
    if version is not None:
        version = check_str(version, "model version", 200)
    if metrics is not None and not isinstance(metrics, dict):
        raise StoreError("model metrics must be a dict (or None)")
    encoded = None if metrics is None else check_json(metrics, "model metrics")
    created = check_num(now, "now")
    with write(db) as conn:
        cur = conn.execute("INSERT INTO models(name, kind, path, version, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           (name, kind, path, version, encoded, created))
        model_id = int(cur.lastrowid)
        if activate:
            set_active_model(db, model_id)
        return model_id


def list_models(db: Database) -> list[dict]:
    return [_model_row(r) for r in query_all(db, "SELECT * FROM models ORDER BY created_at, id")]


def active_model(db: Database) -> dict | None:
    rows = query_all(db, "SELECT * FROM models WHERE active = 1 ORDER BY id DESC LIMIT 1")
    return _model_row(rows[0]) if rows else None


def set_active_model(db: Database, id: int) -> None:
    """Make model ``id`` the only active one (one transaction)."""
    id = check_int(id, "id", 0, 2**63 - 1)
    with write(db) as conn:
        if not conn.execute("SELECT 1 FROM models WHERE id = ?", (id,)).fetchone():
            raise StoreError(f"no model with id {id}; list models to find a valid id")
        conn.execute("UPDATE models SET active = (id = ?)", (id,))


def delete_model_record(db: Database, id: int) -> bool:
    """Forget a model record (the file on disk is left alone)."""
    return delete_row(db, "models", check_int(id, "id", 0, 2**63 - 1))
