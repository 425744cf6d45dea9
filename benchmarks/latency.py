"""Per-keystroke latency, as a user types: replay eval lines key by key through the real session.

Each line's pinyin is typed as raw letters (no separators), the way people type; now and then (seeded, about
one key in 15) a wrong letter goes in and is taken back with backspace. Every key goes through
``Session.press`` with the app's translator (the shipped model, reusing work across keystrokes, plus the
lexicon), and the time of each press is recorded. After the last key the first candidate is compared with the
line's text ("typed top-1"), then space commits the first candidate, the predictions that follow a commit are
computed (``engine.ime.prediction``, as the app's worker does right after delivering the commit) and escape
dismisses them; nothing is learned, so lines stay independent. The commit key's time includes its predictions
(``--no-predict`` leaves them out, as the setting does).

    python -m benchmarks.latency [--file test.tsv] [--lines 300] [--max-syllables 20]

Prints the machine and commit, p50/p95/max per keystroke, the typed accuracy, peak RSS, and ends with one
JSON line ``{"p50_ms": …, "p95_ms": …, "max_ms": …, "rss_mb": …, "keys": …}``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

from benchmarks._common import EVAL_DIR, keys_with_typos, machine, percentiles, read_eval


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", default=str(EVAL_DIR / "test.tsv"))
    ap.add_argument("--lines", type=int, default=300, help="lines to type (0: all)")
    ap.add_argument("--max-syllables", type=int, default=20, help="skip longer lines (0: no limit)")
    ap.add_argument("--typo-rate", type=float, default=1 / 15)
    ap.add_argument("--reuse", type=int, default=None,
                    help="positions re-decoded before the first changed token (default: the app's, "
                         "engine.ime.pipeline.TYPING_REUSE; -1: decode every key from scratch)")
    ap.add_argument("--beam", type=int, default=0, help="beam width while typing (0: the pipeline's default)")
    ap.add_argument("--fp32", action="store_true", help="torch runtime: full-precision weights, not int8")
    ap.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"])
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    ap.add_argument("--learned", type=int, default=0,
                    help="first fill an in-memory user store with this many learned phrases (lag must not grow)")
    ap.add_argument("--history", type=int, default=0,
                    help="first fill the user store's history with this many committed lines (general text from "
                         "assets/personalize/replay.tsv, repeated as needed): the user n-gram cache then runs "
                         "at every decoder step")
    ap.add_argument("--no-predict", action="store_true", help="prediction off: escape instead of a commit")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    from engine.ime.pipeline import TYPING_REUSE, build_pipeline
    from engine.ime.session import Session

    if args.reuse is None:
        args.reuse = TYPING_REUSE

    t0 = time.perf_counter()
    db = None
    if args.learned or args.history:
        from engine import store
        from engine.lexicon import ASSETS_DIR

        db = store.open_memory_store()
    if args.history:
        from trainer.user_text import REPLAY_FILE

        texts = [line.split("\t")[0] for line in REPLAY_FILE.read_text(encoding="utf-8").splitlines() if line]
        for i in range(args.history):
            store.record_commit(db, texts[i % len(texts)], now=float(i))
    if args.learned:
        words = (ASSETS_DIR / "words.tsv").read_text(encoding="utf-8").splitlines()
        random.Random(args.seed).shuffle(words)
        store.import_data(db, {"phrases": [{"text": w.split("\t")[2], "pinyin": w.split("\t")[1]}
                                           for w in words[: args.learned]]})
    t0 = time.perf_counter()  # what a start costs: the model, and the cache read from the history
    translator = build_pipeline(*([args.model] if args.model else []), reuse=None if args.reuse < 0 else args.reuse,
                                beam=args.beam or None, int8=not args.fp32, runtime=args.runtime, db=db)
    status = translator.status
    from engine.ime.pipeline import settle_memory

    settle_memory()  # as the app and the IBus engine do after loading
    load_s = time.perf_counter() - t0
    predictor = None
    if not args.no_predict:
        from engine.ime.prediction import Predictor

        predictor = Predictor.for_pipeline(translator)
    session = Session(translator, predictor=predictor, prediction=predictor is not None)
    rng = random.Random(args.seed)
    lines = [(t, s) for t, s in read_eval(args.file) if not args.max_syllables or len(s) <= args.max_syllables]
    if args.lines:
        lines = lines[: args.lines]
    session.press("a"); session.press("escape")  # warm-up: first-call allocations are not typing
    times: list[float] = []
    commits: list[float] = []  # the commit keys (with the predictions after them)
    right = predicted = 0
    for text, syllables in lines:
        keys = "".join(syllables)
        for key in keys_with_typos(keys, rng, args.typo_rate):
            t = time.perf_counter()
            session.press(key)
            times.append(time.perf_counter() - t)
        cands = session.candidates
        right += bool(cands) and cands[0].text == text
        if predictor is None:
            session.press("escape")
            continue
        t = time.perf_counter()
        while session.composing and session.candidates:  # the commit (a prefix pick keeps composing)
            session.press("space")
        times.append(time.perf_counter() - t)
        commits.append(times[-1])
        predicted += session.predicting
        session.press("escape")
        session.cancel()
    ms = [x * 1000 for x in times]
    p50, p95 = percentiles(ms, 50, 95)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(machine(), ensure_ascii=False))
    print(f"translator: {status}; loaded in {load_s:.2f} s (torch imported: {'torch' in sys.modules}); reuse {args.reuse}, beam {args.beam or 'default'}"
          + ("" if "onnx" in status else f", {'fp32' if args.fp32 else 'int8'}"))
    print(f"{len(lines)} lines of {args.file} (≤ {args.max_syllables or '∞'} syllables), {len(ms)} keystrokes"
          + (f", {args.learned} learned phrases in the store" if args.learned else "")
          + (f", {args.history} committed lines in the history (user n-gram cache)" if args.history else ""))
    print(f"per keystroke: p50 {p50:.2f} ms, p95 {p95:.2f} ms, max {max(ms):.2f} ms"
          + ("" if predictor is None else " (commit keys with their predictions included)"))
    if commits:
        c50, c95 = percentiles([x * 1000 for x in commits], 50, 95)
        print(f"commit + prediction: p50 {c50:.2f} ms, p95 {c95:.2f} ms; predictions shown after "
              f"{predicted / len(commits):.0%} of the commits")
    print(f"typed top-1 (first candidate after the last key = the line): {right / max(1, len(lines)):.1%}")
    print(f"peak RSS {rss_mb:.0f} MB")
    print(json.dumps({"p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "max_ms": round(max(ms), 3),
                      "rss_mb": round(rss_mb, 1), "keys": len(ms)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
