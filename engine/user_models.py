"""The user's personal models on disk and in the store: versions, the active one, revert, factory (no torch).

A personal model is a folder ``<home>/models/<version>/`` (``v1``, ``v2`` …) holding ``model.safetensors``,
``config.json``, ``onnx/`` (the graphs the typing path runs, so no torch is needed to use it) and ``meta.json``
(base model, metrics before/after, time, device, lines used). It is written elsewhere first (a staging folder
under ``<home>/models/``, every file fsynced), then renamed into place in one step and registered in the
store's ``models`` table, where it becomes active in the same transaction. A crash or kill at any moment
leaves either the old state or the new one: a staging folder or an unregistered folder is left over at worst,
and ``prune`` removes it later. The last ``KEEP`` personal versions are kept (and always the active one).

The factory model (``assets/model``) is always there: ``use_factory`` switches to it, ``revert_to_previous``
goes back one version. ``resolve_active`` says which folder to load; when the active record points at a
folder that is missing or damaged it moves that folder aside to ``<home>/models/broken/`` (never deletes it),
switches to the factory model and says so in ``note``.

The app: ``pipe = build_user_pipeline(db, home)`` at start; after a personalization run, or after
``revert_to_previous``/``use_factory``/``use_version``, ``reload_active(pipe, db, home)`` hot-swaps the model
in the running pipeline (``Pipeline.swap_model``). ``new_text_since_last_run`` counts what was typed since
the last run (for the button's label).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from engine import store
from engine.lexicon import ENV_FACTORY, factory_model_dir  # noqa: F401 (ENV_FACTORY: also from here)
from engine.model_spec import META, read_meta  # noqa: F401 (also from here)

MODELS = "models"
BROKEN = "broken"
STAGING_PREFIX = ".staging-"
KEEP = 3  # personal versions kept on disk
LAST_RUN_KEY = "personalize.last_run"
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


# ---------------------------------------------------------------- folders

def models_dir(home: str | Path) -> Path:
    path = Path(home) / MODELS
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def new_staging_dir(home: str | Path) -> Path:
    """An empty private folder next to the versions (same file system, so the final rename is atomic)."""
    path = models_dir(home) / f"{STAGING_PREFIX}{os.getpid()}-{time.time_ns()}"
    path.mkdir(mode=0o700)
    return path


def fsync_tree(path: Path) -> None:
    """fsync every file under ``path`` and every folder (so renames and new entries are on disk)."""
    for root, dirs, files in os.walk(path):
        for name in files:
            with open(Path(root) / name, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(root))


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open folders; NTFS journals the rename itself
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_meta(model_dir: str | Path, meta: dict) -> None:
    path = Path(model_dir) / META
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def check_model_dir(model_dir: str | Path) -> None:
    """Raise ValueError/FileNotFoundError (saying what is wrong) unless ``model_dir`` holds a model the typing
    path can load without torch: a valid config, the weights, and ONNX graphs exported from those weights."""
    from engine.model_spec import read_config
    from engine.onnx_manifest import is_current

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} is missing")
    read_config(model_dir)
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"model weights {model_dir / 'model.safetensors'} are missing")
    if not is_current(model_dir):
        raise ValueError(f"the ONNX graphs in {model_dir / 'onnx'} are missing or do not match the weights")
    for name in ("encoder", "step"):
        for suffix in (".onnx", ".int8.onnx"):
            if not (model_dir / "onnx" / (name + suffix)).is_file():
                raise FileNotFoundError(f"{model_dir / 'onnx' / (name + suffix)} is missing")


# ---------------------------------------------------------------- records

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
    _fsync_dir(final.parent)
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
        owner = path.name[len(STAGING_PREFIX):].split("-")[0]
        stale_staging = path.name.startswith(STAGING_PREFIX) and not _alive(owner)
        orphan = _VERSION.fullmatch(path.name) and path.name not in named
        if path.is_dir() and (stale_staging or orphan):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _alive(pid: str) -> bool:
    try:
        pid_n = int(pid)
    except ValueError:
        return False
    if pid_n == os.getpid():
        return True
    try:
        os.kill(pid_n, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# ---------------------------------------------------------------- what to train on next

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


# ---------------------------------------------------------------- lock: one run at a time per home

@contextlib.contextmanager
def run_lock(home: str | Path):
    """Held while a personalization runs; raises RuntimeError when another run holds it. The OS drops the
    lock when the process dies, so a killed run never blocks the next one."""
    path = models_dir(home) / ".lock"
    f = open(path, "a+")
    try:
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"another personalization is running for {home}; wait for it to finish") from None
        yield
    finally:
        f.close()


# ---------------------------------------------------------------- the running app

def build_user_pipeline(db, home: str | Path, **kw):
    """``engine.pipeline.build_pipeline`` with the user's active model and store; when that model loads
    but fails to run, it is put aside and the factory model is used (the status says so)."""
    from engine.pipeline import build_pipeline

    active = resolve_active(db, home)
    pipe = build_pipeline(active.path, db=db, **kw)
    if active.kind == "personal" and pipe.model_dir is None:  # it could not be loaded
        active = fall_back_to_factory(db, home, active, pipe.status)
        pipe = build_pipeline(active.path, db=db, **kw)
    if active.note:
        pipe.status = f"{pipe.status}; {active.note}"
    return pipe


def reload_active(pipe, db, home: str | Path) -> str:
    """Hot-swap the store's active model into a running pipeline (after a personalization run, a revert or a
    switch to the factory model); returns the new status. A personal model that fails to load is put aside
    and the factory model is swapped in instead."""
    active = resolve_active(db, home)
    try:
        status = pipe.swap_model(active.path)
    except (OSError, ValueError) as e:
        if active.kind != "personal":
            raise
        active = fall_back_to_factory(db, home, active, str(e))
        status = pipe.swap_model(active.path)
    if active.note:
        pipe.status = status = f"{status}; {active.note}"
    return status
