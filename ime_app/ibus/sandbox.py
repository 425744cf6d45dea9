"""A private IBus session with our engine: for the end-to-end test, the latency benchmark, and trying the
engine without touching the desktop's own input method.

It starts, under a temporary HOME, a D-Bus session bus, optionally an X server (Xvfb), and ``ibus-daemon``
whose component folders (``IBUS_COMPONENT_PATH``) are a temporary one with our component file and the
system's (ibus-daemon needs its config component), so ibus-daemon itself starts
our engine process exactly as it would after ``pinyin-ime ibus install``. ``env`` is what a program started
inside needs (``DBUS_SESSION_BUS_ADDRESS``, ``IBUS_ADDRESS``, ``DISPLAY``, ``QT_IM_MODULE`` …).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ime_app.ibus.install import SYSTEM_DIR, install

NEEDED = ("dbus-daemon", "ibus-daemon", "ibus")


def missing_tools(x11: bool = False) -> list[str]:
    return [t for t in NEEDED + (("Xvfb", "xdotool") if x11 else ()) if shutil.which(t) is None]


class IbusSandbox:
    def __init__(self, data_home: str | Path, x11: bool = False, engine_env: dict | None = None) -> None:
        self.data_home = Path(data_home)
        self.x11 = x11
        self.engine_env = engine_env or {}
        self.root = Path(tempfile.mkdtemp(prefix="pinyin-ime-ibus-"))
        self.procs: list[subprocess.Popen] = []
        self.env: dict = {}

    # -- start/stop ----------------------------------------------------------------------------------------
    def __enter__(self) -> "IbusSandbox":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        home = self.root / "home"
        components = self.root / "component"
        for d in (home, components):
            d.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "IBUS_", "XDG_", "DISPLAY"))}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
                   XDG_DATA_HOME=str(home / ".local/share"), XDG_RUNTIME_DIR=str(self.root),
                   IBUS_COMPONENT_PATH=f"{components}:{SYSTEM_DIR}", PINYIN_IME_HOME=str(self.data_home),
                   GTK_IM_MODULE="ibus", QT_IM_MODULE="ibus", XMODIFIERS="@im=ibus", NO_AT_BRIDGE="1")
        env.update(self.engine_env)
        install(home=self.data_home, folder=components)
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1", "--nopidfile"],
                               stdout=subprocess.PIPE, env=env, text=True,
                               stderr=open(self.root / "dbus-daemon.log", "w"))
        self.procs.append(bus)
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        if self.x11:
            read, write = os.pipe()
            xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten",
                                     "tcp"], pass_fds=(write,), env=env, stderr=subprocess.DEVNULL)
            os.close(write)
            self.procs.append(xvfb)
            with os.fdopen(read) as f:
                env["DISPLAY"] = ":" + f.readline().strip()
        self.env = env
        daemon = subprocess.Popen(["ibus-daemon", "--panel=disable", "--cache=none", "--replace", "--verbose"]
                                  + (["--xim"] if self.x11 else []), env=env, stdout=subprocess.DEVNULL,
                                  stderr=open(self.root / "ibus-daemon.log", "w"))
        self.procs.append(daemon)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = subprocess.run(["ibus", "address"], env=env, capture_output=True, text=True)
            address = out.stdout.strip()
            if out.returncode == 0 and address and address != "(null)":
                env["IBUS_ADDRESS"] = address
                return
            if daemon.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"ibus-daemon did not start: {self.engine_log()[-2000:]}")

    def stop(self) -> None:
        if self.env.get("IBUS_ADDRESS"):
            subprocess.run(["ibus", "exit"], env=self.env, capture_output=True, timeout=10)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check, timeout=timeout)

    def engine_log(self) -> str:
        path = self.root / "ibus-daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

