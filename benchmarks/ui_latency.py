"""Does the app's UI thread ever block while typing? Real window (offscreen), real Qt key events, shipped model.

Eval lines are typed as raw letters into the editor, one key every ``--interval`` ms, driven by a timer on the
UI thread's own event loop (so nothing here blocks it), then space commits the first candidate. Measured:
- ``ui_block``: the longest stretches the UI thread was busy, seen by a heartbeat timer firing every 2 ms
  (gap between beats minus the interval); this is what the user would feel as a frozen window.
- ``key_handler``: time spent in the editor's keyPressEvent (posting the key to the worker).
- ``apply``: time to draw a snapshot (preedit, popup) when the worker's result arrives.
- ``key_to_candidates``: from the key event to the candidates for it on screen (the model runs in between, on
  the worker thread).

    python -m benchmarks.ui_latency [--file test.tsv] [--lines 100] [--interval 40] [--max-syllables 20]

``--interval 0`` types as fast as the event loop allows (a burst: keys queue up and the worker converts
once per burst). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from benchmarks._common import EVAL_DIR, machine, percentiles, read_eval


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", default=str(EVAL_DIR / "test.tsv"))
    ap.add_argument("--lines", type=int, default=100)
    ap.add_argument("--max-syllables", type=int, default=20)
    ap.add_argument("--interval", type=float, default=40.0, help="ms between keys (0: as fast as possible)")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from ime_app.window import MainWindow

    lines = [(t, s) for t, s in read_eval(args.file) if not args.max_syllables or len(s) <= args.max_syllables]
    lines = lines[: args.lines] if args.lines else lines
    keys: list = []
    for _, syllables in lines:
        keys += list("".join(syllables)) + [Qt.Key_Space]
    print(json.dumps(machine()), file=sys.stderr)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as home:
        win = MainWindow(home=home)
        win.show()
        win.editor.setFocus()
        if not win.wait_idle(60):
            raise SystemExit("the model did not load")
        editor, composer = win.editor, win.composer
        handler, apply_ms, sent_at, to_screen, beats = [], [], {}, [], []
        original_apply = editor.apply

        def timed_apply(snap):
            t0 = time.perf_counter()
            original_apply(snap)
            now = time.perf_counter()
            apply_ms.append((now - t0) * 1000)
            for n in [n for n in sent_at if n <= snap.processed]:
                to_screen.append((now - sent_at.pop(n)) * 1000)

        composer.snapshot.disconnect(editor.apply)
        composer.snapshot.connect(timed_apply)
        heartbeat = QTimer()
        heartbeat.setInterval(2)
        heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
        position = [0]

        def type_next():
            if position[0] >= len(keys):
                return
            key = keys[position[0]]
            position[0] += 1
            t0 = time.perf_counter()
            before = composer.posted
            QTest.keyClick(editor, key)
            handler.append((time.perf_counter() - t0) * 1000)
            if composer.posted > before:
                sent_at[composer.posted] = t0

        typer = QTimer()
        typer.setInterval(int(args.interval))
        typer.timeout.connect(type_next)
        start = time.perf_counter()
        heartbeat.start()
        typer.start()
        while position[0] < len(keys) or composer.busy:
            QCoreApplication.processEvents()
            time.sleep(0.0005)
        typer.stop()
        heartbeat.stop()
        wall = time.perf_counter() - start
        gaps = [(b - a) * 1000 - 2 for a, b in zip(beats, beats[1:])]
        committed = editor.toPlainText()
        win.close()
        win.db.close()
    del app

    def stats(name, values):
        p50, p95 = percentiles(values, 50, 95)
        print(f"{name:<18} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   max {max(values):7.2f} ms   (n={len(values)})")
        return {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "max_ms": round(max(values), 3)}

    print(f"typed {len(keys)} keys of {len(lines)} lines in {wall:.1f} s, one key every {args.interval:g} ms; "
          f"{len(committed)} characters committed")
    result = {"keys": len(keys), "interval_ms": args.interval,
              "ui_block": stats("UI thread block", gaps), "key_handler": stats("key handler", handler),
              "apply": stats("draw snapshot", apply_ms), "key_to_candidates": stats("key → candidates", to_screen)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
