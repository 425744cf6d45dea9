"""Prediction benchmark (issue 22, item 3): after each commit, is what the user types next among the predictions?

    python -m benchmarks.prediction [--file ../shared/data/eval/dev.tsv] [--lines 1000] [--page 5]
                                    [--bonus 1.5 ...] [--model assets/model] [--out benchmarks/results/prediction_dev.json]

Tuned on dev.tsv only (test.tsv is never read here). Each line is cut into the words a user would commit one
at a time: greedily, the longest lexicon word (2–4 汉字) at each point, else one character. After every word
boundary but the line's start (nothing committed yet: no prediction), ``engine.ime.prediction.Predictor`` gets
the text so far (no user history: the factory predictor) and:

* **hit@1 / hit@5**: its first / one of its first five predictions is what comes next — the prediction is a
  prefix of the rest of the line (so 中 counts after 我爱 when 中国 follows, and so does 中国);
* **keystroke saving**: the line typed word by word, picking a prediction whenever one on the first page
  (``--page``, 5) is what comes next (the longest such), then predicting again after it: the fraction of the
  line's characters that were picked instead of typed (each picked character is a syllable not typed, and the
  pick itself is one key);
* **p50 / p95 ms**: the time of every predictor call made.

Several ``--bonus`` values (the ranking's length bonus, ``engine.ime.prediction.LENGTH_BONUS``) give a sweep; the
JSON keeps each.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._common import EVAL_DIR, REPO, machine, percentiles
from engine.lexicon import SHIPPED_MODEL_DIR

RESULTS = REPO / "benchmarks" / "results"


def read_lines(path: Path, limit: int) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("\t")[0].strip()
        if text:
            out.append(text)
        if len(out) >= limit:
            break
    return out


def words_of(text: str, words: frozenset[str], start: int = 0) -> list[int]:
    """Word boundaries from ``start`` on: greedy longest lexicon word (2–4 characters), else one character."""
    cuts, i = [], start
    while i < len(text):
        n = next((n for n in (4, 3, 2) if text[i:i + n] in words), 1)
        i += n
        cuts.append(i)
    return cuts


def evaluate(predictor, lines: list[str], page: int) -> dict:
    from engine.ime.prediction import word_index

    words = word_index(predictor.lexicon)[2]
    times: list[float] = []

    def predict(context: str) -> list[str]:
        t0 = time.perf_counter()
        out = predictor(context)
        times.append((time.perf_counter() - t0) * 1000)
        return out

    positions = hit1 = hit5 = 0
    saved = total = 0
    for text in lines:
        for cut in words_of(text, words)[:-1]:  # after each committed word but the last
            preds, rest = predict(text[:cut]), text[cut:]
            positions += 1
            hit1 += bool(preds) and rest.startswith(preds[0])
            hit5 += any(rest.startswith(p) for p in preds[:5])
        total += len(text)
        i = words_of(text, words)[0]  # the first word is typed
        while i < len(text):
            match = [p for p in predict(text[:i])[:page] if text.startswith(p, i)]
            if match:
                pick = max(match, key=len)
                saved += len(pick)
                i += len(pick)
            else:
                i = words_of(text, words, i)[0]
    p50, p95 = percentiles(times, 50, 95)
    return {"positions": positions, "hit@1": round(hit1 / positions, 4), "hit@5": round(hit5 / positions, 4),
            "keystroke_saving": round(saved / total, 4), "chars": total, "calls": len(times),
            "p50_ms": round(p50, 3), "p95_ms": round(p95, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", type=Path, default=EVAL_DIR / "dev.tsv")
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--page", type=int, default=5, help="predictions the keystroke-saving user looks at")
    ap.add_argument("--bonus", type=float, nargs="*", default=None, help="length bonuses to sweep")
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR)
    ap.add_argument("--out", type=Path, default=RESULTS / "prediction_dev.json")
    args = ap.parse_args(argv)
    if "test" in args.file.name:
        ap.error("tune on dev only: test.tsv is for the final accuracy numbers, never for prediction tuning")

    from engine.lm import char_lm
    from engine.lexicon import lexicon_for
    from engine.ime.prediction import LENGTH_BONUS, Predictor

    info = machine()
    print(f"machine: {info['cpu']} ({info['cores']} cores), Python {info['python']}, commit {info['commit']}")
    chars = json.loads((args.model / "config.json").read_text(encoding="utf-8"))["chars"]
    lm_path = char_lm.find(args.model)
    if lm_path is None:
        ap.error(f"{args.model} has no character LM to predict with")
    lm = char_lm.CharLM.load(lm_path, chars)
    lexicon = lexicon_for(args.model)
    lines = read_lines(args.file, args.lines)
    runs = []
    for bonus in args.bonus or [LENGTH_BONUS]:
        predictor = Predictor(lm, chars, lexicon, length_bonus=bonus)
        predictor("我们")  # first-call allocations
        r = {"length_bonus": bonus, **evaluate(predictor, lines, args.page)}
        runs.append(r)
        print(f"bonus {bonus:4.2f}: hit@1 {r['hit@1']:.1%}  hit@5 {r['hit@5']:.1%}  keystroke saving "
              f"{r['keystroke_saving']:.1%}  ({r['positions']} positions, {len(lines)} lines)  "
              f"p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f} ms over {r['calls']} calls")
    out = {"benchmark": "prediction", "file": str(args.file.name), "lines": len(lines), "page": args.page,
           "machine": info, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "default_length_bonus": LENGTH_BONUS, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
