"""``pinyin-ime-app``: the desktop app. Without a display it says so and offers the headless self-test.

    pinyin-ime-app                  open the editor window
    pinyin-ime-app --self-test      run the window offscreen, type a scripted sequence, print JSON, exit 0 if right
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def self_test(screenshot: str | None = None) -> int:
    """Start the real window offscreen and type a scripted sequence through real Qt key events."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from engine import store
    from ime_app.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="pinyin-ime-selftest-") as home:  # the user's data is left alone
        win = MainWindow(home=home)
        win.show()
        win.activateWindow()
        win.editor.setFocus()
        editor, steps, expected = win.editor, [], ""
        if not win.wait_idle(60):
            print(json.dumps({"ok": False, "error": "the model did not load within 60 s"}))
            return 1

        def typed(keys: str, *finish, note: str = "") -> list[str]:
            QTest.keyClicks(editor, keys)
            for key in finish:
                QTest.keyClick(editor, key)
            win.wait_idle()
            steps.append({"keys": keys, "then": [_key_name(k) for k in finish], "note": note,
                          "text": editor.toPlainText()})
            return win.candidate_texts()

        typed("nihao", Qt.Key_Space, note="full pinyin, space picks the first")
        typed(",", note="Chinese punctuation")
        typed("zhongguo", Qt.Key_1, note="digit picks")
        typed("bjdx", Qt.Key_Space, note="abbreviation (initials)")
        expected += "你好，中国北京大学"
        shown = typed("womenzou", note="a sentence; the word 我们 is further down the list")
        moves = shown.index("我们") if "我们" in shown else -1
        for _ in range(max(moves, 0)):
            QTest.keyClick(editor, Qt.Key_Down)
        rest = typed("", Qt.Key_Space, note=f"down ×{moves}, space: prefix commit, 'zou' keeps composing")
        prefix_ok = moves >= 0 and editor.preedit_text.startswith("我们")
        typed("", Qt.Key_Space, note="space commits the rest")
        expected += "我们" + (rest[0] if rest else "")
        page1 = typed("shi", note="a syllable with many candidates")
        page2 = typed("", Qt.Key_Equal, note="= pages down")
        page3 = typed("", Qt.Key_PageDown, note="PageDown pages down")
        back = typed("", Qt.Key_Minus, note="- pages back up")
        paging_ok = len({page1, page2, page3}) == 3 and back == page2 and win.composer.last.page == 1
        typed("", Qt.Key_1, note="1: the first candidate of page 2")
        expected += page2[0] if page2 else ""
        typed(".", note="。")
        expected += "。"
        QTest.keyClick(editor, Qt.Key_Shift)
        typed("ok", note="Shift tap: English, letters go straight in")
        QTest.keyClick(editor, Qt.Key_Shift)
        typed("nihaoo", Qt.Key_Backspace, Qt.Key_Space, note="Shift tap back to Chinese; backspace edits")
        typed("abc", Qt.Key_Return, note="Enter types the letters")
        typed("zhe", Qt.Key_Escape, note="Esc cancels")
        expected += "ok你好abc"
        shown = typed("women", note="left open for the screenshot")
        popup_ok = editor.popup.isVisible() and bool(shown) and shown[0] == "我们"
        if screenshot:
            win.screenshot().save(screenshot)
        typed("", Qt.Key_Escape)
        committed = editor.toPlainText()
        kept = [c["text"] for c in store.list_commits(win.db, newest_first=False, limit=100)]
        store_ok = "北京大学" in kept and "abc" in kept and store.integrity_ok(win.db)
        ok = committed == expected and prefix_ok and paging_ok and popup_ok and store_ok
        print(json.dumps({"ok": ok, "committed": committed, "expected": expected, "prefix_commit": prefix_ok,
                          "paging": paging_ok, "popup": popup_ok, "store": store_ok, "store_commits": kept,
                          "candidates_for_women": shown[:5], "model": win.model_status, "screenshot": screenshot,
                          "torch_imported": "torch" in sys.modules,  # typing runs on ONNX Runtime
                          "steps": steps}, ensure_ascii=False))
        win.close()
        win.db.close()
    return 0 if ok else 1


def _key_name(key) -> str:
    return getattr(key, "name", str(key)).replace("Key_", "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pinyin-ime-app", description="Pinyin IME desktop app.")
    ap.add_argument("--self-test", action="store_true", help="run offscreen, type a scripted sequence, check it")
    ap.add_argument("--screenshot", default=None, help="with --self-test: save a PNG of the window")
    ap.add_argument("--home", default=None, help="user data folder (default: $PINYIN_IME_HOME or the platform's)")
    args = ap.parse_args(argv)
    if args.home:
        os.environ["PINYIN_IME_HOME"] = args.home
    if args.self_test:
        return self_test(args.screenshot)
    if not has_display():
        print("pinyin-ime-app: no display found (DISPLAY / WAYLAND_DISPLAY are not set), so the window cannot open.\n"
              "  Headless check:  ./dev.sh app --self-test   (runs the real window offscreen and types into it)\n"
              "  Engine only:     .venv/bin/pinyin-ime lookup nihao", file=sys.stderr)
        if sys.stdin.isatty():
            answer = input("Run the headless self-test now? [Y/n] ").strip().lower()
            if answer in ("", "y", "yes"):
                return self_test()
        return 2
    from PySide6.QtWidgets import QApplication

    from ime_app.window import MainWindow

    app = QApplication(sys.argv[:1])
    # a store that cannot be opened is said in the window, typing still works; the model's accuracy with its
    # LMs is measured once in the background when not known yet (ime_app.model_quality)
    win = MainWindow(ask_unsaved=True, measure_accuracy=True)
    if win.store_error:
        print(f"pinyin-ime-app: {win.store_error}", file=sys.stderr)
    win.show()
    _report_first_paint(win)
    return app.exec()


def _report_first_paint(win) -> None:
    """PINYIN_IME_STARTUP_T0=<epoch seconds when the launcher started the app>: print the seconds to the
    window's first paint to stderr (scripts/smoke_installed measures start-up with it)."""
    t0 = os.environ.get("PINYIN_IME_STARTUP_T0")
    if not t0:
        return
    import time

    from PySide6.QtCore import QEvent, QObject

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Paint:
                print(f"startup: window painted after {time.time() - float(t0):.3f} s", file=sys.stderr, flush=True)
                obj.removeEventFilter(self)
            return False

    win.first_paint_probe = FirstPaint(win)  # kept on the window: the filter lives as long as it
    win.installEventFilter(win.first_paint_probe)


if __name__ == "__main__":
    raise SystemExit(main())
