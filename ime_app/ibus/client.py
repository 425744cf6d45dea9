"""A scripted IBus input context, as a program's text field would be: it sends key events to whatever engine
is set and collects what comes back (commits, preedit, lookup tables), with the time each took.

Used by ``benchmarks/ibus_latency.py`` (key event → lookup table update through ibus-daemon) and by the tests
(password fields, pause). Create it with the environment of the IBus session in ``os.environ``.
"""

from __future__ import annotations

import time

from ime_app.ibus.gi_loader import load_ibus
from ime_app.ibus.install import BUS_NAME, ENGINE_NAME
from ime_app.ibus.keys import SPECIAL

KEYSYM = {name: keyval for keyval, name in SPECIAL.items() if keyval not in (0xFF8D, 0xFF80)}


class IbusClient:
    def __init__(self, engine: str = ENGINE_NAME, timeout: float = 60) -> None:
        self.GLib, _, self.IBus = load_ibus()
        IBus = self.IBus
        IBus.init()
        self.bus = IBus.Bus()
        if not self.bus.is_connected():
            raise RuntimeError("cannot connect to ibus-daemon (is IBUS_ADDRESS set?)")
        self.wait_for_engine(timeout)
        self.ctx = self.bus.create_input_context("pinyin-ime-client")
        self.ctx.set_capabilities(IBus.Capabilite.PREEDIT_TEXT | IBus.Capabilite.LOOKUP_TABLE
                                  | IBus.Capabilite.FOCUS)
        self.commits: list[str] = []
        self.table: list[str] = []
        self.preedit = ""
        self._events = 0
        self.ctx.connect("commit-text", self._on_commit)
        self.ctx.connect("update-lookup-table", self._on_table)
        self.ctx.connect("hide-lookup-table", self._on_hide_table)
        self.ctx.connect("update-preedit-text", self._on_preedit)
        self.ctx.connect("hide-preedit-text", lambda *_: self._preedit(""))
        self.ctx.focus_in()
        self.ctx.set_engine(engine)
        self.spin(0.2)

    def wait_for_engine(self, timeout: float) -> None:
        """Our engine process loads the model before it takes its bus name; wait for that."""
        deadline = time.monotonic() + timeout
        while not self.bus.name_has_owner(BUS_NAME):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the engine did not come up within {timeout:.0f} s")
            # asking for the engine makes ibus-daemon start its component (as a real first use does)
            self.bus.set_global_engine(ENGINE_NAME)
            time.sleep(0.1)

    # -- signals -------------------------------------------------------------------------------------------
    def _on_commit(self, ctx, text) -> None:
        self.commits.append(text.get_text())
        self._events += 1

    def _on_table(self, ctx, table, visible) -> None:
        self.table = [table.get_candidate(i).get_text() for i in range(table.get_number_of_candidates())]
        self._events += 1

    def _on_hide_table(self, ctx) -> None:
        self.table = []
        self._events += 1

    def _on_preedit(self, ctx, text, cursor, visible) -> None:
        self._preedit(text.get_text() if visible else "")

    def _preedit(self, text: str) -> None:
        self.preedit = text
        self._events += 1

    # -- driving -------------------------------------------------------------------------------------------
    def spin(self, seconds: float = 0.0) -> None:
        context = self.GLib.MainContext.default()
        end = time.monotonic() + seconds
        while True:
            while context.iteration(False):
                pass
            if time.monotonic() >= end:
                return
            time.sleep(0.001)

    def key(self, name: str, timeout: float = 5.0) -> tuple[bool, float]:
        """Press and release one key (a character or a session key name); returns (the engine used it, ms
        from sending the press to the last update it caused arriving here)."""
        keyval = KEYSYM.get(name, ord(name) if len(name) == 1 else None)
        if keyval is None:
            raise ValueError(f"no keysym for {name!r}")
        before = self._events
        expired = []
        timer = self.GLib.timeout_add(int(timeout * 1000), lambda: expired.append(1) and False)
        context = self.GLib.MainContext.default()
        t0 = time.perf_counter()
        used = self.ctx.process_key_event(keyval, 0, 0)
        while used and self._events == before and not expired:
            context.iteration(True)  # the updates follow the reply: sleep until the first (or the timer)
        while context.iteration(False):  # and take every one already here
            pass
        ms = (time.perf_counter() - t0) * 1000
        if not expired:
            self.GLib.source_remove(timer)
        self.ctx.process_key_event(keyval, 0, self.IBus.ModifierType.RELEASE_MASK)
        return bool(used), ms

    def type(self, keys: str) -> list[float]:
        return [self.key(k)[1] for k in keys]

    def set_password(self, password: bool) -> None:
        IBus = self.IBus
        purpose = IBus.InputPurpose.PASSWORD if password else IBus.InputPurpose.FREE_FORM
        self.ctx.set_content_type(purpose, 0)
        self.spin(0.05)

    def close(self) -> None:
        self.ctx.focus_out()
        self.spin(0.05)
        self.ctx.destroy()
