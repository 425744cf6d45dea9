"""The personal model versions and the active model: the registry in the store's ``models`` table, install,
switch, revert, prune, and the fall back to the factory model (no torch).

``install`` renames a finished staging folder into place as ``<home>/models/<version>/`` and registers it in
the store, active in the same transaction; a crash or kill at any moment leaves either the old state or the
new one (a staging folder or an unregistered folder at worst, which ``prune`` removes later). The last
``KEEP`` personal versions are kept (and always the active one); a version name is never reused.

The factory model (``assets/model``) is always there: ``use_factory`` switches to it, ``revert_to_previous``
goes back one version. ``resolve_active`` says which folder to load; when the active record points at a
folder that is missing or damaged it moves that folder aside to ``<home>/models/broken/`` (never deletes it),
switches to the factory model and says so in ``note``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from engine import store
from engine.lexicon import factory_model_dir
from engine.personal.files import check_model_dir, fsync_dir, fsync_tree, is_stale_staging, models_dir

BROKEN = "broken"
KEEP = 3  # personal versions kept on disk
_VERSION = re.compile(r"v(\d{1,9})")


@dataclass
class ActiveModel:
    path: Path
    kind: str  # "factory" or "personal"
    version: str | None
    id: int | None  # the store's model id (None: factory without a record yet)
    note: str = ""  # why this is not what the store said was active, when it is not

    @property
    def label(self) -> str:
        return "factory model" if self.kind == "factory" else f"personal model {self.version}"


def _personal(db) -> list[dict]:
    return [m for m in store.list_models(db) if m["kind"] == "personal"]


def _version_number(version: str | None) -> int:
    m = _VERSION.fullmatch(version or "")
    return int(m.group(1)) if m else 0


def next_version(db, home: str | Path) -> str:
    """``v<n>`` one above every version recorded or lying in the models folder."""
    used = [_version_number(m["version"]) for m in _personal(db)]
    used += [_version_number(p.name) for p in models_dir(home).iterdir()]
    used += [_version_number(p.name.split("-")[0]) for p in (models_dir(home) / BROKEN).glob("v*")]
    return f"v{max(used, default=0) + 1}"


def factory_record(db) -> int:
    """The id of the factory model's record, created the first time."""
    for m in store.list_models(db):
        if m["kind"] == "factory":
            return m["id"]
    return store.add_model(db, "factory model", "factory", str(factory_model_dir()), version="factory")


def install(db, home: str | Path, staged: Path, version: str, metrics: dict, activate: bool = True) -> int:
    """Move a finished, fsynced staging folder into place as ``version`` and register it (active when
    ``activate``) in one store transaction; prune old versions. Returns the new record's id."""
    final = models_dir(home) / version
    if final.exists():
        raise ValueError(f"{final} already exists; personal model versions are never overwritten")
    fsync_tree(staged)
    os.replace(staged, final)
    fsync_dir(final.parent)
    model_id = store.add_model(db, f"personal model {version}", "personal", str(final), version=version,
                               metrics=metrics, activate=activate)
    prune(db, home)
    return model_id


def _resolve(db, home: str | Path, record: dict | None) -> ActiveModel:
    if record is None or record["kind"] == "factory":
        return ActiveModel(factory_model_dir(), "factory", None, None if record is None else record["id"])
    path = Path(record["path"])
    if not path.is_absolute():
        path = Path(home) / path
    return ActiveModel(path, record["kind"], record["version"], record["id"])


def recorded_active(db, home: str | Path) -> ActiveModel:
    """The model the store says is active (the factory model when none is), its files unchecked."""
    return _resolve(db, home, store.active_model(db))


def older_versions(db, record: dict) -> list[dict]:
    """The personal models installed before ``record``, oldest first: where a revert from it goes."""
    return [m for m in _personal(db) if (m["created_at"], m["id"]) < (record["created_at"], record["id"])]


def resolve_active(db, home: str | Path) -> ActiveModel:
    """The model to load: the store's active record, or the factory model when there is none. A personal
    model that is missing or damaged is moved aside to ``<home>/models/broken/`` and the factory model is made
    active instead; ``note`` says so."""
    active = recorded_active(db, home)
    if active.kind == "factory":
        return active
    try:
        check_model_dir(active.path)
    except (OSError, ValueError) as e:
        return fall_back_to_factory(db, home, active, str(e))
    return active


def fall_back_to_factory(db, home: str | Path, bad: ActiveModel, reason: str) -> ActiveModel:
    """Put a personal model that cannot be used aside (``<home>/models/broken/``), forget its record and make
    the factory model active; the returned ``note`` says what happened and where the files went."""
    where = ""
    if bad.path.exists():
        broken = models_dir(home) / BROKEN
        broken.mkdir(exist_ok=True, mode=0o700)
        target = broken / f"{bad.path.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(bad.path, target)
        where = f"; its files were moved to {target}"
    if bad.id is not None:
        store.delete_model_record(db, bad.id)
    store.set_active_model(db, factory_record(db))
    note = f"{bad.label} could not be used ({reason}): using the factory model{where}"
    return ActiveModel(factory_model_dir(), "factory", None, factory_record(db), note)


def active_model_dir(db, home: str | Path) -> Path:
    """The folder of the model to load (see ``resolve_active``)."""
    return resolve_active(db, home).path


def list_versions(db, home: str | Path) -> list[dict]:
    """The factory model and the personal versions, oldest first, with their metrics and whether their files
    are there: {id, version, kind, label, active, created_at, metrics, path, exists}."""
    factory_record(db)
    active = store.active_model(db)
    out = []
    for m in sorted(store.list_models(db), key=lambda m: m["kind"] != "factory"):  # the factory model first
        if m["kind"] not in ("factory", "personal"):
            continue
        model = _resolve(db, home, m)
        out.append({"id": m["id"], "version": m["version"], "kind": m["kind"], "label": model.label,
                    "active": m["active"] or (active is None and m["kind"] == "factory"),
                    "created_at": m["created_at"], "metrics": m["metrics"], "path": str(model.path),
                    "exists": (model.path / "model.safetensors").is_file()})
    return out


def use_factory(db) -> ActiveModel:
    """Make the factory model active (the personal versions stay on disk)."""
    model_id = factory_record(db)
    store.set_active_model(db, model_id)
    return ActiveModel(factory_model_dir(), "factory", None, model_id)


def use_version(db, home: str | Path, version: str) -> ActiveModel:
    """Make personal model ``version`` (``v3``; or ``factory``) active after checking its files."""
    if version == "factory":
        return use_factory(db)
    record = next((m for m in _personal(db) if m["version"] == version), None)
    if record is None:
        known = ", ".join(m["version"] for m in _personal(db)) or "none yet"
        raise ValueError(f"no personal model {version!r}; the versions are: {known} (or 'factory')")
    model = _resolve(db, home, record)
    check_model_dir(model.path)
    store.set_active_model(db, record["id"])
    return model


def revert_to_previous(db, home: str | Path) -> ActiveModel:
    """Go back one version: from personal model vN to the newest older personal version whose files are
    usable, or to the factory model when there is none. Already on the factory model: nothing changes."""
    active = store.active_model(db)
    if active is None or active["kind"] != "personal":
        return use_factory(db)
    for record in reversed(older_versions(db, active)):
        model = _resolve(db, home, record)
        try:
            check_model_dir(model.path)
        except (OSError, ValueError):
            continue
        store.set_active_model(db, record["id"])
        return model
    return use_factory(db)


def prune(db, home: str | Path, keep: int = KEEP) -> list[str]:
    """Delete personal versions beyond the newest ``keep`` (never the active one) with their records, and
    leftovers of interrupted runs (staging folders of dead processes, folders no record names). Returns what
    was removed."""
    root = models_dir(home)
    removed = []
    personal = _personal(db)
    for record in personal[:-keep] if keep else personal:
        if record["active"]:
            continue
        path = _resolve(db, home, record).path
        if path.parent == root:
            shutil.rmtree(path, ignore_errors=True)
        store.delete_model_record(db, record["id"])
        removed.append(record["version"])
    named = {_resolve(db, home, m).path.name for m in _personal(db)}
    for path in root.iterdir():
        orphan = _VERSION.fullmatch(path.name) and path.name not in named
        if path.is_dir() and (is_stale_staging(path) or orphan):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed
