"""Keystroke latency through IBus: key event sent by a program → its lookup table update back, per key.

A private IBus session (``ime_app.ibus.sandbox``: its own D-Bus, ibus-daemon starting our engine from the
component file, a fresh data folder) and a scripted input context (``ime_app.ibus.client``) standing in for
a program's text field. Lines of an eval file are typed as in ``benchmarks/latency.py`` (raw letters, a
seeded wrong letter taken back with backspace about one key in 15, escape after each line, so nothing is
learned); each key's time runs from ``process_key_event`` to the last preedit/lookup-table update it caused
arriving in the client, so it includes both D-Bus hops through ibus-daemon. The engine's own time per key
(arrival → updates sent) is printed beside it, from ``PINYIN_IME_IBUS_TIMINGS``.

    python -m benchmarks.ibus_latency [--file test.tsv] [--lines 300] [--max-syllables 20]

Needs ibus-daemon and python3-gi (``./dev.sh test`` installs them as root). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import EVAL_DIR, keys_with_typos, machine, percentiles, read_eval


def engine_peak_rss_mb(data_home: Path) -> float:
    """VmHWM of the engine process ibus-daemon started for ``data_home``."""
    out = subprocess.run(["pgrep", "-f", "--", f"--home {data_home}"], capture_output=True, text=True).stdout.split()
    for pid in out:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            continue
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", default=str(EVAL_DIR / "test.tsv"))
    ap.add_argument("--lines", type=int, default=300, help="lines to type (0: all)")
    ap.add_argument("--max-syllables", type=int, default=20)
    ap.add_argument("--typo-rate", type=float, default=1 / 15)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    from ime_app.ibus.sandbox import IbusSandbox, missing_tools

    if missing_tools():
        print(f"needs {', '.join(missing_tools())} (sudo apt-get install ibus python3-gi gir1.2-ibus-1.0)",
              file=sys.stderr)
        return 2
    lines = [(t, s) for t, s in read_eval(Path(args.file)) if not args.max_syllables or len(s) <= args.max_syllables]
    if args.lines:
        lines = lines[: args.lines]
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ibus-latency-"))
    timings = work / "engine.tsv"
    with IbusSandbox(work / "data", engine_env={"PINYIN_IME_IBUS_TIMINGS": str(timings)}) as sb:
        os.environ.update(sb.env)
        from ime_app.ibus.client import IbusClient

        t0 = time.perf_counter()
        client = IbusClient()
        start_s = time.perf_counter() - t0
        client.type("a")
        client.key("escape")  # warm-up
        warm = len(timings.read_text().splitlines())  # the engine keeps the file open: skip, don't delete
        ms: list[float] = []
        right = 0
        for text, syllables in lines:
            keys = "".join(syllables)
            for key in keys_with_typos(keys, rng, args.typo_rate):
                ms.append(client.key(key)[1])
            right += bool(client.table) and client.table[0] == text
            client.key("escape")
        rss = engine_peak_rss_mb(work / "data")
        client.close()
    engine_ms = [float(line.split("\t")[1]) for line in timings.read_text().splitlines()[warm:]
                 if line.split("\t")[0] != "escape"]
    p50, p95 = percentiles(ms, 50, 95)
    e50, e95 = percentiles(engine_ms, 50, 95)
    print(json.dumps(machine(), ensure_ascii=False))
    print(f"engine up (ibus-daemon started it, model loaded) in {start_s:.2f} s")
    print(f"{len(lines)} lines of {args.file} (≤ {args.max_syllables or '∞'} syllables), {len(ms)} keystrokes")
    print(f"key event → lookup table update, through ibus-daemon: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
          f"max {max(ms):.2f} ms")
    print(f"inside the engine (event arrival → updates sent): p50 {e50:.2f} ms, p95 {e95:.2f} ms")
    print(f"typed top-1 (first candidate after the last key = the line): {right / max(1, len(lines)):.1%}")
    print(f"engine peak RSS {rss:.0f} MB")
    print(json.dumps({"p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "engine_p50_ms": round(e50, 3),
                      "engine_p95_ms": round(e95, 3), "keys": len(ms), "typed_top1": round(right / max(1, len(lines)), 4),
                      "engine_rss_mb": round(rss, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
