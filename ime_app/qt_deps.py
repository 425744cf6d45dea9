"""Which system libraries Qt's platform plugins need and this machine lacks, and the command that installs them.

    python -m ime_app.qt_deps            print what is missing (exit 1 if anything is) and the install command
    python -m ime_app.qt_deps --install  install it with apt-get when run as root on Debian/Ubuntu

PySide6's wheels bundle Qt but not the X11/xcb, EGL and font libraries its xcb plugin loads: on a bare
Debian 12 the window fails with "could not load the Qt platform plugin xcb". Rather than keep a list that goes
stale with each Qt release, this asks the dynamic linker (``ldd``) what the plugins and Qt's own libraries
leave unresolved, and names the Debian package of each missing library. Nothing here imports Qt, so it works
exactly when Qt cannot start. Linux only; elsewhere there is nothing to check.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

# soname → Debian/Ubuntu package (Debian 12 names; the same on Ubuntu 22.04+)
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
    "libICE.so.6": "libice6",
    "libSM.so.6": "libsm6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
}
# what the xcb plugin dlopens at run time (ldd cannot see these): always checked
DLOPENED = ["libxcb-cursor.so.0"]
PLUGINS = ["platforms/libqxcb.so", "platforms/libqoffscreen.so"]
QT_LIBS = ["libQt6XcbQpa.so.6", "libQt6Gui.so.6", "libQt6Widgets.so.6", "libQt6Core.so.6", "libQt6DBus.so.6"]


def qt_dir() -> Path | None:
    """PySide6's folder, found without importing it (importing is what fails when libraries are missing)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _resolvable(soname: str) -> bool:
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    if f"{soname} " in out:
        return True
    return any(Path(d, soname).exists() for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                                  "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu"))


def missing_libraries(base: Path | None = None) -> list[str]:
    """The sonames Qt's platform plugins and libraries need that the dynamic linker cannot find here."""
    if not sys.platform.startswith("linux") or shutil.which("ldd") is None:
        return []
    base = base or qt_dir()
    if base is None:
        return []
    qt = base / "Qt"
    files = [qt / "plugins" / p for p in PLUGINS] + [qt / "lib" / name for name in QT_LIBS]
    missing: list[str] = []
    env = {**os.environ, "LD_LIBRARY_PATH": str(qt / "lib")}
    for f in files:
        if not f.exists():
            continue
        try:
            out = subprocess.run(["ldd", str(f)], capture_output=True, text=True, env=env, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in out.splitlines():
            if "=> not found" in line:
                name = line.split("=>")[0].strip()
                if name not in missing:
                    missing.append(name)
    for name in DLOPENED:
        if name not in missing and not _resolvable(name):
            missing.append(name)
    return missing


def packages_for(sonames: list[str]) -> tuple[list[str], list[str]]:
    """(Debian packages that provide ``sonames``, the sonames no package is known for)."""
    pkgs, unknown = [], []
    for s in sonames:
        p = DEBIAN_PACKAGES.get(s)
        if p is None:
            unknown.append(s)
        elif p not in pkgs:
            pkgs.append(p)
    return pkgs, unknown


def install_command(pkgs: list[str]) -> str:
    return "sudo apt-get install -y " + " ".join(pkgs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ime_app.qt_deps", description=__doc__.split("\n\n")[0])
    ap.add_argument("--install", action="store_true", help="install what is missing with apt-get (root only)")
    args = ap.parse_args(argv)
    missing = missing_libraries()
    if not missing:
        return 0
    pkgs, unknown = packages_for(missing)
    can_apt = shutil.which("apt-get") is not None and hasattr(os, "geteuid") and os.geteuid() == 0
    if args.install and pkgs and can_apt:
        print(f"==> installing the libraries Qt's window needs: {' '.join(pkgs)}", file=sys.stderr)
        cmd = ["apt-get", "install", "-y", "-qq", *pkgs]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        ok = subprocess.run(cmd, env=env, capture_output=True).returncode == 0
        if not ok:  # a bare machine's package lists may be empty or stale
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            ok = subprocess.run(cmd, env=env, capture_output=True).returncode == 0
        missing = missing_libraries()
        if not missing:
            return 0
        pkgs, unknown = packages_for(missing)
        if not ok:
            print("warning: apt-get could not install them", file=sys.stderr)
    print(f"Qt's window needs system libraries this machine lacks: {', '.join(missing)}", file=sys.stderr)
    if pkgs:
        print(f"install them with:  {install_command(pkgs)}", file=sys.stderr)
        print("(Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image "
              "xcb-util-renderutil libxkbcommon-x11)", file=sys.stderr)
    if unknown:
        print(f"no package known for {', '.join(unknown)}: install the package that provides each", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
