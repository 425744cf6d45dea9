"""Correction benchmark (issue 22, item 2): homophone slips injected into dev lines, found and fixed by
``engine.ime.correction``; precision and recall SIGHAN style, the false-alarm rate on clean lines, time per line.

    python -m benchmarks.correction [--file ../shared/data/eval/dev.tsv] [--lines 400] [--seed 22]
                                    [--target 0.85] [--model DIR] [--out benchmarks/results/correction_dev.json]

The two halves of the file
--------------------------
dev.tsv's lines at even positions (0, 2, 4 … in the file) are the **tuning half**, those at odd positions the
**report half**; ``--lines N`` takes the first N of each. The margin is chosen on the tuning half only and the
figures quoted are the report half's at that margin. test.tsv is never used for tuning (``--file`` pointing at
it reports it as a final figure, with the margin given by ``--margin``, by default the engine's).

The error model (``ERROR_MODEL``, recorded in the JSON)
--------------------------------------------------------
Every line is scored in three versions: **clean** (as it is: every proposal there is a false alarm), with
**one** slip and with **two** slips. A slip replaces one 汉字 by another character with the same toneless
reading: the reading is the line's reference pinyin at that position (dev.tsv's syllable, so polyphones read as
in context), and the replacement is drawn from the lexicon's characters for that syllable
(``Lexicon.chars_for``: ``assets/chars.tsv``'s readings the corpus uses, count > 0), the original excluded and
only characters the model can write, **with probability proportional to the count** of the character with
that reading (how often it is typed with it: an IME slip is more often 的 for 得 than a rare character).
Positions are drawn uniformly among the line's positions that have such a replacement, distinct for two
slips. Each version's draws come from ``random.Random(f"{seed}:{n_slips}:{line}")`` (stable across runs and
processes, whatever ``--lines``). A line with fewer eligible positions than slips skips that version.

The corrector reads the text it is given, as the app does: pypinyin reads the *erroneous* text, so a slip
to a polyphone pypinyin reads otherwise (行 xing for hang) changes the reading too; that is part of the test.

Scores (margin m: edits gaining more than m nats are proposed)
--------------------------------------------------------------
* character level, over all versions: **detection** precision = predicted positions that are slips / all
  predicted positions, recall = slips predicted / all slips; **correction** the same, counting a position only
  when it got back its original character.
* sentence level (SIGHAN): a version is detected when its predicted positions are exactly its slips, corrected
  when moreover the text equals the clean line; precision = such versions among those with any proposal (clean
  ones included), recall = among those with slips.
* false-alarm rate: clean lines that get any proposal.
* time: p50/p95 of ``engine.ime.correction.span_edits`` per line (the margin's test is free), with the model run
  as the app runs it (ONNX Runtime where available, int8 weights; ``--fp32`` for full precision).

Choosing the margin: every version's candidate edits are computed once with their strengths, then margins
0, 0.5, … 20 nats are swept on the tuning half; the chosen one is the margin with the highest sentence-level
correction precision (the strictest figure: a line counts only when exactly its slips were fixed) among those
whose character-level correction precision reaches ``--target`` (0.85: the bar is 0.8, with room for the
report half's sampling noise); the smaller margin on a tie. Sentence-level precision does not rise for ever
with the margin: a high one fixes only the surer of two slips, and a half-corrected line is a miss.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._common import EVAL_DIR, REPO, machine, percentiles, read_eval
from engine.lexicon import SHIPPED_MODEL_DIR

RESULTS = REPO / "benchmarks" / "results"
DEFAULT_SEED = 22
MARGINS = [x / 2 for x in range(41)]
ERROR_MODEL = ("per line: clean, 1 and 2 slips; slip = a 汉字 replaced by another character of the same toneless "
               "reference syllable, drawn from Lexicon.chars_for(syllable) (count > 0, in the model's vocabulary, "
               "original excluded) with probability proportional to its count; positions uniform among eligible, "
               "distinct; rng = random.Random(f'{seed}:{n_slips}:{line}')")


def replacements(lexicon, syllable: str, original: str, vocab) -> list[tuple[str, int]]:
    return [(ch, n) for ch, n in lexicon.chars_for(syllable) if ch != original and n > 0 and ch in vocab]


def inject(text: str, syllables: list[str], n_slips: int, seed: int, lexicon, vocab) -> tuple[str, list[int]] | None:
    """``text`` with ``n_slips`` homophone slips (see the module's docstring) and their positions, or None
    when the line has too few positions to slip."""
    rng = random.Random(f"{seed}:{n_slips}:{text}")
    options = {i: replacements(lexicon, s, text[i], vocab) for i, s in enumerate(syllables) if i < len(text)}
    eligible = [i for i, opts in options.items() if opts]
    if len(eligible) < n_slips:
        return None
    out = list(text)
    positions = sorted(rng.sample(eligible, n_slips))
    for i in positions:
        chars, weights = zip(*options[i])
        out[i] = rng.choices(chars, weights=weights)[0]
    return "".join(out), positions


def versions(lines: list[tuple[str, list[str]]], seed: int, lexicon, vocab) -> list[dict]:
    out = []
    for text, syls in lines:
        if len(syls) != len(text):
            continue  # a reference whose pinyin does not align with its characters
        out.append(dict(clean=text, text=text, slips=[]))
        for n in (1, 2):
            made = inject(text, syls, n, seed, lexicon, vocab)
            if made is not None:
                out.append(dict(clean=text, text=made[0], slips=made[1]))
    return out


def run(converter, items: list[dict], label: str) -> None:
    """Adds each version's candidate edits (all gains) and the time they took."""
    from engine.ime.correction import span_edits

    t_start = time.perf_counter()
    for n, item in enumerate(items, 1):
        t0 = time.perf_counter()
        edits = span_edits(converter, item["text"])
        item["ms"] = (time.perf_counter() - t0) * 1000
        item["edits"] = [(e.start, e.end, e.replacement, round(e.strength, 3)) for e in edits]
        if n % 200 == 0:
            print(f"  {label}: {n}/{len(items)} ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)


def decide(item: dict, margin: float) -> tuple[set[int], str]:
    """The positions changed and the text proposed at ``margin``."""
    out = list(item["text"])
    for start, end, rep, strength in item["edits"]:
        if strength > margin:
            out[start:end] = rep
    text = "".join(out)
    return {i for i, (a, b) in enumerate(zip(item["text"], text)) if a != b}, text


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def score(items: list[dict], margin: float) -> dict:
    pred = det = cor = gold = 0
    s_pred = s_err = s_det = s_cor = clean = alarms = 0
    for item in items:
        changed, text = decide(item, margin)
        slips = set(item["slips"])
        pred += len(changed)
        gold += len(slips)
        det += len(changed & slips)
        cor += sum(text[i] == item["clean"][i] for i in changed & slips)
        s_pred += bool(changed)
        s_err += bool(slips)
        hit = bool(slips) and changed == slips
        s_det += hit
        s_cor += hit and text == item["clean"]
        if not slips:
            clean += 1
            alarms += bool(changed)
    return {"margin": margin,
            "char": {"detect_p": _ratio(det, pred), "detect_r": _ratio(det, gold),
                     "correct_p": _ratio(cor, pred), "correct_r": _ratio(cor, gold)},
            "sentence": {"detect_p": _ratio(s_det, s_pred), "detect_r": _ratio(s_det, s_err),
                         "correct_p": _ratio(s_cor, s_pred), "correct_r": _ratio(s_cor, s_err)},
            "false_alarm_rate": _ratio(alarms, clean),
            "versions": len(items), "clean": clean, "slips": gold, "proposals": s_pred}


def choose_margin(items: list[dict], target: float) -> tuple[float, list[dict]]:
    """The swept margin with the best sentence-level correction precision where the character-level one
    reaches ``target`` (the largest margin when none does)."""
    sweep = [score(items, m) for m in MARGINS]
    ok = [row for row in sweep if (row["char"]["correct_p"] or 0) >= target]
    if not ok:
        return MARGINS[-1], sweep
    best = max(ok, key=lambda row: (row["sentence"]["correct_p"] or 0, -row["margin"]))
    return best["margin"], sweep


def timing(items: list[dict]) -> dict:
    p50, p95 = percentiles([i["ms"] for i in items], 50, 95)
    return {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}


def line(name: str, row: dict) -> str:
    c, s = row["char"], row["sentence"]
    return (f"{name:14s} m={row['margin']:<5} char det P/R {c['detect_p']}/{c['detect_r']}  corr P/R "
            f"{c['correct_p']}/{c['correct_r']}  sent det P/R {s['detect_p']}/{s['detect_r']}  corr P/R "
            f"{s['correct_p']}/{s['correct_r']}  false alarms {row['false_alarm_rate']}")


def main(argv=None) -> int:
    from engine.ime import correction
    from engine.ime.converter import Converter, ConverterSettings
    from engine.lexicon import default_lexicon

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=EVAL_DIR / "dev.tsv")
    ap.add_argument("--lines", type=int, default=400, help="lines per half")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--target", type=float, default=0.85)
    ap.add_argument("--margin", type=float, default=None,
                    help="report at this margin instead of tuning one (a file other than dev: the engine's)")
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR)
    ap.add_argument("--fp32", action="store_true", help="full-precision weights (the app types with int8)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if "sighan2015_test" in str(args.file):
        ap.error("sighan2015_test is held out")
    tuning_file = args.file.name == "dev.tsv" and args.margin is None
    converter = Converter.load(args.model, runtime="auto",  # as the app's pipeline loads it
                               settings=ConverterSettings(int8=not args.fp32))
    lexicon = default_lexicon()
    lines = read_eval(args.file)
    halves = {"tuning": lines[0::2][: args.lines], "report": lines[1::2][: args.lines]}
    if not tuning_file:
        halves = {"report": lines[: args.lines]}
    info = machine()
    print(f"correction benchmark: {args.file.name}, {args.lines} lines per half, seed {args.seed}; "
          f"commit {info['commit']}, {info['cpu']} ({info['cores']} cores), {converter.runtime}"
          f"{' int8' if converter.settings.int8 else ''}")
    data = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": info,
            "file": args.file.name, "seed": args.seed, "error_model": ERROR_MODEL, "lines_per_half": args.lines,
            "settings": {"top": correction.TOP, "context": correction.CONTEXT, "piece": correction.PIECE,
                         "engine_margin": correction.MARGIN, "runtime": converter.runtime,
                         "int8": converter.settings.int8}}
    items = {}
    for name, half in halves.items():
        items[name] = versions(half, args.seed, lexicon, converter.char_index)
        run(converter, items[name], name)
    if tuning_file:
        margin, sweep = choose_margin(items["tuning"], args.target)
        data["margin_rule"] = (f"of {MARGINS[0]}..{MARGINS[-1]} nats (step 0.5), the margin with the tuning half's "
                               f"best sentence-level correction precision among those whose char-level "
                               f"correction precision reaches {args.target}")
        data["chosen_margin"] = margin
        data["tuning"] = {"sweep": sweep, "at_margin": score(items["tuning"], margin), **timing(items["tuning"])}
        for row in sweep[::4]:
            print(line("tuning", row))
        print(line("tuning chosen", data["tuning"]["at_margin"]))
    else:
        margin = correction.MARGIN if args.margin is None else args.margin
    report = score(items["report"], margin)
    data["report"] = {"at_margin": report, **timing(items["report"])}
    if margin != correction.MARGIN:
        data["report"]["at_engine_margin"] = score(items["report"], correction.MARGIN)
    print(line("report", report))
    print(f"report: {report['versions']} versions ({report['clean']} clean, {report['slips']} slips), "
          f"{report['proposals']} with proposals; time per line p50 {data['report']['p50_ms']} ms, "
          f"p95 {data['report']['p95_ms']} ms")
    out = args.out or RESULTS / (f"correction_{args.file.stem}.json" if args.lines >= 100 else
                                 f"correction_{args.file.stem}_limit{args.lines}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
