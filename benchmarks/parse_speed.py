"""Parse time of the pinyin parser on real input: the test set's lines typed as raw keys (no spaces).

    python -m benchmarks.parse_speed [--file ../shared/data/eval/test.tsv] [--syllables 30]

Prints, per input length, p50/p95 of parse() (building the lattice, with the exact cost-to-end table) and of
parse() + the 8 best segmentations, and a JSON line at the end. Target: < 1 ms for 30 syllables.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks._common import EVAL_DIR, machine, percentiles, read_eval
from engine.pinyin import parse


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", default=str(EVAL_DIR / "test.tsv"))
    ap.add_argument("--syllables", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    lines = read_eval(args.file)
    # Build inputs of exactly N syllables by joining consecutive lines' syllables.
    stream = [s for _, syls in lines for s in syls]
    n = args.syllables
    inputs = ["".join(stream[i:i + n]) for i in range(0, len(stream) - n, n)][:500]
    lattice_ms, nbest_ms = [], []
    for _ in range(args.repeat):
        for keys in inputs:
            t0 = time.perf_counter()
            r = parse(keys)
            t1 = time.perf_counter()
            list(r.segmentations(8))
            t2 = time.perf_counter()
            lattice_ms.append((t1 - t0) * 1e3)
            nbest_ms.append((t2 - t0) * 1e3)
    p50, p95 = percentiles(lattice_ms, 50, 95)
    q50, q95 = percentiles(nbest_ms, 50, 95)
    print(f"machine: {machine()}")
    print(f"{len(inputs)} inputs of {n} syllables (avg {sum(map(len, inputs)) / len(inputs):.0f} keys), x{args.repeat}")
    print(f"parse (lattice):          p50 {p50:.3f} ms   p95 {p95:.3f} ms")
    print(f"parse + 8-best segments:  p50 {q50:.3f} ms   p95 {q95:.3f} ms")
    print(json.dumps({"syllables": n, "parse_p50_ms": round(p50, 4), "parse_p95_ms": round(p95, 4),
                      "nbest8_p50_ms": round(q50, 4), "nbest8_p95_ms": round(q95, 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
