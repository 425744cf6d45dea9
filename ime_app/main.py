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
    """Start the real window offscreen and type through real Qt key events."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from ime_app.window import MainWindow

    from engine.store import open_memory_store

    QApplication.instance() or QApplication(sys.argv[:1])
    win = MainWindow(db=open_memory_store())  # the self-test leaves the user's data alone
    win.show()
    editor = win.editor
    script = [("nihao", Qt.Key_Space), ("zhongguo", Qt.Key_1), ("bjdx", Qt.Key_Space)]
    expected = "你好中国北京大学"
    for keys, finish in script:
        QTest.keyClicks(editor, keys)
        QTest.keyClick(editor, finish)
    QTest.keyClicks(editor, "women")
    shown = list(win.candidate_texts())
    if screenshot:
        win.grab().save(screenshot)
    QTest.keyClick(editor, Qt.Key_Escape)
    committed = editor.toPlainText()
    ok = committed == expected and bool(shown) and shown[0] == "我们"
    print(json.dumps({"ok": ok, "committed": committed, "expected": expected,
                      "candidates_for_women": shown[:5], "screenshot": screenshot}, ensure_ascii=False))
    win.close()
    return 0 if ok else 1


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

    from engine.store import StoreError, open_store

    try:
        db = open_store()
    except (StoreError, OSError) as e:
        print(f"pinyin-ime-app: the user data cannot be opened ({e}); typing works but nothing is kept or "
              "learned this time. Fix the folder's permissions or pass --home DIR.", file=sys.stderr)
        db = None
    app = QApplication(sys.argv[:1])
    win = MainWindow(db=db)
    win.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
