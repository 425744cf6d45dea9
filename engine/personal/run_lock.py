"""One personalization run at a time per user data folder (a lock file in ``<home>/models/``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from engine.personal.files import models_dir


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
