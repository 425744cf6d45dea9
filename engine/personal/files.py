"""The personal models' folder on disk: ``<home>/models/``, staging folders, fsync, ``meta.json``, and the
check that a folder holds a model the typing path can load (no torch).

New versions are written into a staging folder next to the versions (same file system, so the final rename
is atomic), every file fsynced before the rename. A staging folder is named after the process writing it, so
one left by a dead process can be told apart from one still being written (``is_stale_staging``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from engine.runtime.model_spec import META

MODELS = "models"
STAGING_PREFIX = ".staging-"


def models_dir(home: str | Path) -> Path:
    path = Path(home) / MODELS
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def new_staging_dir(home: str | Path) -> Path:
    """An empty private folder next to the versions (same file system, so the final rename is atomic)."""
    path = models_dir(home) / f"{STAGING_PREFIX}{os.getpid()}-{time.time_ns()}"
    path.mkdir(mode=0o700)
    return path


def is_stale_staging(path: Path) -> bool:
    """Whether ``path`` is a staging folder whose process is gone (an interrupted run's leftover)."""
    owner = path.name[len(STAGING_PREFIX):].split("-")[0]
    return path.name.startswith(STAGING_PREFIX) and not _alive(owner)


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


def fsync_tree(path: Path) -> None:
    """fsync every file under ``path`` and every folder (so renames and new entries are on disk)."""
    for root, dirs, files in os.walk(path):
        for name in files:
            with open(Path(root) / name, "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(Path(root))


def fsync_dir(path: Path) -> None:
    """fsync a folder, so the entries just created or renamed in it are on disk."""
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
    from engine.runtime.model_spec import read_config
    from engine.runtime.onnx_manifest import is_current

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
