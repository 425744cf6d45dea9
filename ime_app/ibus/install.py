"""Registering the engine with IBus: the component file that tells ibus-daemon what to start.

ibus-daemon reads component files from ``/usr/share/ibus/component`` — or, when ``IBUS_COMPONENT_PATH`` is set
in its environment, from the folders listed there instead. So there are two ways in:

- **per user, no root** (default): the file goes to ``~/.local/share/ibus/component/pinyin-ime.xml`` and
  ``~/.config/environment.d/60-pinyin-ime.conf`` sets ``IBUS_COMPONENT_PATH`` to that folder plus the
  system's, for the next login (systemd user sessions: GNOME, KDE, most desktops read environment.d);
- **system-wide** (``--system``, as root): the file goes to ``/usr/share/ibus/component``.

Either way ibus-daemon must be restarted with a fresh cache to see it (``ibus-daemon -drx --cache=refresh``,
or log out and in), then the engine is chosen in the desktop's input-source settings (Chinese → 拼音 IME)
or with ``ibus engine pinyin-ime``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from xml.sax.saxutils import escape

ENGINE_NAME = "pinyin-ime"
BUS_NAME = "org.freedesktop.IBus.PinyinIme"
FILE_NAME = "pinyin-ime.xml"
SYSTEM_DIR = Path("/usr/share/ibus/component")
ENV_FILE = "60-pinyin-ime.conf"


def component_xml_fields() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("pinyin-ime")
    except PackageNotFoundError:
        v = "0"
    return {"description": "拼音 IME: pinyin to 汉字 with an on-device Transformer that learns from you",
            "version": v, "license": "MIT", "author": "拼音 IME", "homepage": "https://example.invalid/pinyin-ime",
            "longname": "拼音 IME", "language": "zh_CN", "icon": "", "layout": "us", "symbol": "拼"}


def engine_command(home: str | Path | None = None) -> list[str]:
    """How ibus-daemon starts the engine: this Python (a checkout's venv) or this bundle's executable."""
    if getattr(sys, "frozen", False):
        cmd = [sys.executable, "ibus", "run", "--ibus"]
    else:
        cmd = [sys.executable, "-m", "ime_app.cli", "ibus", "run", "--ibus"]
    if home is not None:
        cmd += ["--home", str(Path(home).resolve())]
    return cmd


def component_xml(command: list[str]) -> str:
    f = {k: escape(v) for k, v in component_xml_fields().items()}
    return f"""<?xml version="1.0" encoding="utf-8"?>
<component>
    <name>{BUS_NAME}</name>
    <description>{f['description']}</description>
    <exec>{escape(shlex.join(command))}</exec>
    <version>{f['version']}</version>
    <author>{f['author']}</author>
    <license>{f['license']}</license>
    <homepage>{f['homepage']}</homepage>
    <textdomain>pinyin-ime</textdomain>
    <engines>
        <engine>
            <name>{ENGINE_NAME}</name>
            <language>{f['language']}</language>
            <license>{f['license']}</license>
            <author>{f['author']}</author>
            <icon>{f['icon']}</icon>
            <layout>{f['layout']}</layout>
            <longname>{f['longname']}</longname>
            <description>{f['description']}</description>
            <symbol>{f['symbol']}</symbol>
            <rank>0</rank>
        </engine>
    </engines>
</component>
"""


def user_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "ibus" / "component"


def env_file() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "environment.d" / ENV_FILE


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def install(system: bool = False, home: str | Path | None = None, folder: Path | None = None) -> list[Path]:
    """Write the component file (and, per user, the environment line); returns the files written.
    ``folder``: an explicit component folder (tests; the caller sets IBUS_COMPONENT_PATH itself)."""
    text = component_xml(engine_command(home))
    if folder is not None:
        _write(Path(folder) / FILE_NAME, text)
        return [Path(folder) / FILE_NAME]
    if system:
        try:
            _write(SYSTEM_DIR / FILE_NAME, text)
        except PermissionError:
            raise PermissionError(f"writing {SYSTEM_DIR} needs root: run `sudo {shlex.join(sys.argv)}`, or "
                                  "install per user without --system") from None
        return [SYSTEM_DIR / FILE_NAME]
    _write(user_dir() / FILE_NAME, text)
    _write(env_file(), f"IBUS_COMPONENT_PATH={user_dir()}:{SYSTEM_DIR}\n")
    return [user_dir() / FILE_NAME, env_file()]


def uninstall() -> list[Path]:
    removed = []
    for path in (user_dir() / FILE_NAME, env_file(), SYSTEM_DIR / FILE_NAME):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except PermissionError:
            print(f"{path} needs root to remove: sudo rm {path}", file=sys.stderr)
    return removed


def next_steps(system: bool) -> str:
    restart = "ibus-daemon -drx --cache=refresh"
    if system:
        first = f"restart IBus so it reads the new component: {restart}"
    else:
        first = (f"log out and in (so IBus starts with IBUS_COMPONENT_PATH), or now: "
                 f"IBUS_COMPONENT_PATH={user_dir()}:{SYSTEM_DIR} {restart}")
    return (f"next: {first}\n"
            "then add 拼音 IME in your desktop's input sources (Chinese → 拼音 IME), or: ibus engine pinyin-ime")
