"""Lexicon size, load time and coverage of an eval set.

    python -m benchmarks.lexicon_report [--file ../shared/data/eval/test.tsv]

Coverage = share of the set's characters whose (character, syllable) pair the lexicon has, i.e. that the
engine can produce from the pinyin typed; also the share of lines fully producible, and of the set's
characters whose correct reading is the character's top-ranked one.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks._common import EVAL_DIR, machine, percentiles, read_eval
from engine.lexicon import Lexicon
from engine.pinyin import parse


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", default=str(EVAL_DIR / "test.tsv"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        lex = Lexicon.load()
        times.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    probes = [[set(t.syllables) for t in parse(keys).best().tokens] for keys in ("zg", "bjdx", "zhongguo", "zhongg")]
    for _ in range(100):
        for options in probes:
            lex.words_matching(options)
    query_ms = (time.perf_counter() - t0) * 1e3 / (100 * len(probes))
    lines = read_eval(args.file)
    chars = covered = lines_ok = 0
    missing: dict[str, int] = {}
    for text, syls in lines:
        ok = True
        for ch, syl in zip(text, syls):
            chars += 1
            if lex.has_reading(ch, syl):
                covered += 1
            else:
                ok = False
                missing[f"{ch}:{syl}"] = missing.get(f"{ch}:{syl}", 0) + 1
        lines_ok += ok and len(text) == len(syls)
    p50, = percentiles(times, 50)
    report = {
        "characters": len(lex.characters),
        "word_readings": len(lex),
        "load_ms_p50": round(p50, 1),
        "word_query_ms": round(query_ms, 3),
        "eval_file": args.file,
        "eval_chars": chars,
        "char_coverage": round(covered / chars, 5),
        "line_coverage": round(lines_ok / len(lines), 5),
        "missing_top": sorted(missing.items(), key=lambda kv: -kv[1])[:10],
    }
    print(f"machine: {machine()}")
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
