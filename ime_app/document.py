"""The editor's text on disk: read and write a UTF-8 file, safely.

Saving writes a temporary file beside the target, flushes it to disk and renames it into place, so a crash,
kill or full disk midway leaves the old file whole (and the text still in the window). Errors come back as
``DocumentError`` with a message that says what happened and what to do next.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

MAX_BYTES = 64 << 20  # a text file bigger than this is not something to type into


class DocumentError(Exception):
    pass


def save_text(path: Path | str, text: str) -> None:
    path = Path(path)
    if path.is_dir():
        raise DocumentError(f"{path} is a folder: choose a file name")
    data = text.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise DocumentError(f"cannot write in {path.parent} ({e.strerror or e}); your text is still in the window: "
                            "save it in another folder") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise DocumentError(f"could not save {path.name} ({e.strerror or e}); the file on disk is unchanged and "
                            "your text is still in the window: free some space or save elsewhere") from None


def load_text(path: Path | str) -> str:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise DocumentError(f"{path.name} is {size / 1e6:.0f} MB: too big to open here (at most {MAX_BYTES >> 20} MB)")
        data = path.read_bytes()
    except OSError as e:
        raise DocumentError(f"could not open {path.name} ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # the other encoding Chinese text files are commonly in
    except UnicodeDecodeError:
        raise DocumentError(f"{path.name} is neither UTF-8 nor GB18030 text") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
