"""Delete all my data: the user store, personal models, training jobs and caches, in one call.

Only what this app creates is removed, by name (so a data folder pointed somewhere odd with ``--home`` or
``$PINYIN_IME_HOME`` never loses anything else): in the data folder ``user.db`` with its WAL files and any
copies set aside as damaged, ``models/`` (personal models), ``jobs/`` (training jobs) and ``tmp/``; in the
cache folder the annotated corpora (``corpus/corpus-*.npz``). The data folder itself stays, empty and private.
Callers close their store connections first (the app does it on its worker thread).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.store import cache_dir, home_dir

DATA_FILES = ("user.db", "user.db-wal", "user.db-shm", "user.db.damaged-*")
DATA_DIRS = ("models", "jobs", "tmp")
CACHE_FILES = ("corpus/corpus-*.npz", "corpus/*.tmp.npz")


def data_paths(home: str | Path | None = None) -> list[Path]:
    """Everything ``delete_all_data`` would remove, as it is now."""
    home = home_dir(home)
    paths = [p for pattern in DATA_FILES for p in sorted(home.glob(pattern))]
    paths += [home / d for d in DATA_DIRS if (home / d).exists()]
    cache = cache_dir()
    paths += [p for pattern in CACHE_FILES for p in sorted(cache.glob(pattern))]
    return paths


def delete_all_data(home: str | Path | None = None) -> list[Path]:
    """Remove the user's data (see the module docstring); returns what was removed."""
    removed = []
    for path in data_paths(home):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
