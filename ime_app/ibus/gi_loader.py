"""Finding PyGObject for the IBus engine.

IBus's Python binding is GObject introspection (``gi.repository.IBus``). Distributions ship ``gi`` for their
own Python only (Debian: ``python3-gi`` in /usr/lib/python3/dist-packages), not for a virtual environment or
a PyInstaller bundle. When ``gi`` is not importable, this looks in the system's package folders for the same
Python minor version, imports it from there, and takes that folder off ``sys.path`` again, so nothing else is
shadowed by the system's packages.
"""

from __future__ import annotations

import sys
from pathlib import Path

SYSTEM_DIRS = ("/usr/lib/python3/dist-packages", f"/usr/lib/python3.{sys.version_info.minor}/site-packages",
               f"/usr/lib64/python3.{sys.version_info.minor}/site-packages")
INSTALL_HINT = ("install IBus and its Python binding: sudo apt-get install ibus python3-gi gir1.2-ibus-1.0 "
                "(Fedora: sudo dnf install ibus python3-gobject)")


class IbusUnavailable(RuntimeError):
    """IBus or its GObject binding is missing; the message says what to install."""


def import_gi():
    try:
        import gi  # noqa: F401
        return sys.modules["gi"]
    except ImportError:
        pass
    for folder in SYSTEM_DIRS:
        if not (Path(folder) / "gi" / "__init__.py").is_file():
            continue
        sys.path.append(folder)
        try:
            import gi
            return gi
        except ImportError:
            continue
        finally:
            sys.path.remove(folder)
    raise IbusUnavailable(f"PyGObject (gi) is not installed: {INSTALL_HINT}")


def load_ibus():
    """(GLib, GObject, IBus) from gi; raises IbusUnavailable with what to install."""
    gi = import_gi()
    try:
        gi.require_version("IBus", "1.0")
        from gi.repository import GLib, GObject, IBus
    except (ValueError, ImportError) as e:
        raise IbusUnavailable(f"IBus's introspection data is missing ({e}): {INSTALL_HINT}") from None
    return GLib, GObject, IBus


def available() -> str:
    """'' when the engine can run here, else why not."""
    try:
        load_ibus()
    except IbusUnavailable as e:
        return str(e)
    return ""
