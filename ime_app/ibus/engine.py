"""The IBus engine: the backend's composition drawn as IBus's preedit (inline, underlined) and lookup table.

Run by ibus-daemon from the component file (``pinyin-ime ibus run --ibus``); started by hand without
``--ibus`` it registers its component itself, which is how the tests run it. One process serves every input
field: each gets an ``ImeBackend`` (its own session) over one shared pipeline and store.

Keys: what the app's editor takes (letters, ``'``, space and 1–9 to pick, -/= and Page Up/Down to page,
arrows, Enter for the raw letters, Escape to cancel, Chinese punctuation), and a lone Shift tap switches
中/En (also the panel's 中/En property). Shortcuts (Ctrl/Alt/Super) always go to the program.

``PINYIN_IME_IBUS_TIMINGS=FILE`` appends, per key event, the milliseconds from the event's arrival to the
preedit and lookup table being sent (``benchmarks/ibus_latency.py`` measures the whole round trip instead).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ime_app.ibus.backend import ImeBackend, Shared
from ime_app.ibus.gi_loader import IbusUnavailable, load_ibus
from ime_app.ibus.install import BUS_NAME, ENGINE_NAME, component_xml_fields
from ime_app.ibus.keys import RELEASE, SHORTCUT_MASK, ShiftToggle, key_name

GLib, GObject, IBus = load_ibus()

MODE_PROP = "mode"


class PinyinEngine(IBus.Engine):
    __gtype_name__ = "PinyinImeEngine"

    def __init__(self, bus, object_path: str, shared: Shared) -> None:
        super().__init__(connection=bus.get_connection(), object_path=object_path)
        self.backend = ImeBackend(shared)
        self.shared = shared
        self.table = IBus.LookupTable.new(self.backend.session.page_size, 0, True, False)
        self.shift = ShiftToggle()
        self.mode_prop = IBus.Property.new(MODE_PROP, IBus.PropType.NORMAL, IBus.Text.new_from_string("中"),
                                           None, IBus.Text.new_from_string("Switch 中/En (Shift)"), True, True,
                                           IBus.PropState.UNCHECKED, None)
        self.mode_prop.set_symbol(IBus.Text.new_from_string("中"))
        self.props = IBus.PropList()
        self.props.append(self.mode_prop)
        timings = os.environ.get("PINYIN_IME_IBUS_TIMINGS")
        self.timings = open(timings, "a", encoding="utf-8", buffering=1) if timings else None  # line-buffered

    # -- keys ----------------------------------------------------------------------------------------------
    def do_process_key_event(self, keyval: int, keycode: int, state: int) -> bool:
        t0 = time.perf_counter()
        if self.shift.feed(keyval, state):
            self._set_chinese(not self.backend.chinese)
            return False
        name = key_name(keyval, state)
        if name is None:  # releases, shortcuts, function keys: the program's (a composition swallows presses)
            return self.backend.session.composing and not state & (RELEASE | SHORTCUT_MASK)
        used = self.backend.press(name)
        self._draw()
        if self.timings is not None:
            self.timings.write(f"{name}\t{(time.perf_counter() - t0) * 1000:.3f}\n")
        return used

    def do_candidate_clicked(self, index: int, button: int, state: int) -> None:
        self.backend.pick(index)
        self._draw()

    # the panel's page and cursor buttons are the keys that do the same
    def do_page_up(self) -> None:
        self._press("pageup")

    def do_page_down(self) -> None:
        self._press("pagedown")

    def do_cursor_up(self) -> None:
        self._press("up")

    def do_cursor_down(self) -> None:
        self._press("down")

    def _press(self, name: str) -> None:
        self.backend.press(name)
        self._draw()

    # -- the field's life ----------------------------------------------------------------------------------
    def do_focus_in(self) -> None:
        self.register_properties(self.props)
        self.shared.sync()  # the app may have personalized the model, changed settings or deleted data meanwhile
        self.backend.refresh()
        self._draw()

    def do_focus_out(self) -> None:
        self.backend.cancel()
        self._draw()

    def do_reset(self) -> None:
        self.backend.cancel()
        self._draw()

    def do_disable(self) -> None:
        self.backend.cancel()
        self._draw()

    def do_set_content_type(self, purpose: int, hints: int) -> None:
        self.backend.set_password(purpose in (IBus.InputPurpose.PASSWORD, IBus.InputPurpose.PIN))
        self._draw()

    def do_property_activate(self, name: str, state: int) -> None:
        if name == MODE_PROP:
            self._set_chinese(not self.backend.chinese)

    # -- drawing -------------------------------------------------------------------------------------------
    def _set_chinese(self, chinese: bool) -> None:
        self.backend.set_chinese(chinese)
        label = "中" if chinese else "En"
        self.mode_prop.set_label(IBus.Text.new_from_string(label))
        self.mode_prop.set_symbol(IBus.Text.new_from_string(label))
        self.update_property(self.mode_prop)
        self._draw()

    def _draw(self) -> None:
        for text in self.backend.take_commits():
            self.commit_text(IBus.Text.new_from_string(text))
        view = self.backend.view()
        if view.composing:
            text = IBus.Text.new_from_string(view.preedit)
            text.append_attribute(IBus.AttrType.UNDERLINE, IBus.AttrUnderline.SINGLE, 0, len(view.preedit))
            self.update_preedit_text_with_mode(text, view.caret, True, IBus.PreeditFocusMode.CLEAR)
        else:
            self.update_preedit_text_with_mode(IBus.Text.new_from_string(""), 0, False,
                                               IBus.PreeditFocusMode.CLEAR)
        if view.candidates:
            if self.table.get_page_size() != view.page_size:
                self.table.set_page_size(view.page_size)
            self.table.clear()
            for candidate in view.candidates:
                self.table.append_candidate(IBus.Text.new_from_string(candidate))
            self.table.set_cursor_pos(max(0, view.highlight))
            self.update_lookup_table(self.table, True)
        else:
            self.hide_lookup_table()
        aux = self.shared.warning or (f"{view.page + 1}/{view.page_count}" if view.page_count > 1 else "")
        if view.predicting and not self.shared.warning:
            aux = "联想"  # as the app's candidate window labels the next words
        if (view.composing or view.predicting) and aux:
            self.update_auxiliary_text(IBus.Text.new_from_string(aux), True)
        else:
            self.hide_auxiliary_text()


class EngineFactory(IBus.Factory):
    """Makes one engine per input context, all over the same shared pipeline."""

    __gtype_name__ = "PinyinImeFactory"

    def __init__(self, bus, shared: Shared) -> None:
        self.bus, self.shared, self.count = bus, shared, 0
        super().__init__(connection=bus.get_connection(), object_path=IBus.PATH_FACTORY)

    def do_create_engine(self, engine_name: str):
        if engine_name != ENGINE_NAME:
            return None
        self.count += 1
        return PinyinEngine(self.bus, f"/org/freedesktop/IBus/Engine/PinyinIme/{self.count}", self.shared)


def _component():
    fields = component_xml_fields()
    component = IBus.Component.new(BUS_NAME, fields["description"], fields["version"], fields["license"],
                                   fields["author"], fields["homepage"], "", "pinyin-ime")
    engine = IBus.EngineDesc.new(ENGINE_NAME, fields["longname"], fields["description"], fields["language"],
                                 fields["license"], fields["author"], fields["icon"], fields["layout"])
    component.add_engine(engine)
    return component


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pinyin-ime ibus run", description="the IBus engine process")
    ap.add_argument("--ibus", action="store_true", help="started by ibus-daemon (from the component file)")
    ap.add_argument("--home", default=None, help="the data folder (default: the app's)")
    args = ap.parse_args(argv)
    IBus.init()
    bus = IBus.Bus()
    if not bus.is_connected():
        print("pinyin-ime: ibus-daemon is not running; start it (ibus-daemon -drx) or log in with IBus as your "
              "input method", file=sys.stderr)
        return 1
    shared = Shared(args.home)
    factory = EngineFactory(bus, shared)
    loop = GLib.MainLoop()
    bus.connect("disconnected", lambda *_: loop.quit())
    if args.ibus:
        bus.request_name(BUS_NAME, 0)
    else:
        bus.register_component(_component())
    try:
        loop.run()
    finally:
        del factory
        shared.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(run())
    except IbusUnavailable as e:
        print(f"pinyin-ime: {e}", file=sys.stderr)
        sys.exit(1)
