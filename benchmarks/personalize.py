"""Personalization on one user's stream of text: ours (instant learning, fine-tuning, both) beside the peers' learning.

    python -m benchmarks.personalize [--streams tech_weekly tech_javaguide chat_kdconv] [--first 1500] [--later 500]
                                     [--engines libime libpinyin] [--max-seconds 120] [--out FILE.json]

A stream is what one user types: consecutive clauses (4–30 汉字, like the eval sets; pinyin from pypinyin in
phrase context, ``trainer.corpus.annotate``) of one corpus shard, read from the middle of the shard on; no eval
line and no line of the shipped general text (``assets/personalize``). The first ``--first`` lines are typed,
the next ``--later`` are to come. The default streams are the shards written by one author or one site, or one
conversational setting (a tech newsletter, a programming guide, knowledge-grounded chat); they were picked for
that before any number was measured on them (``--streams`` takes any shard name).

A real user's text is not in our corpus, but these shards are: so each stream runs on a factory model whose
corpus character LM (``engine.lm.char_lm``) is rebuilt without the stream's whole shard (``factory_without``:
the shipped weights, that LM beside them; cached under ``--work``). The Transformer itself did see the
shards in pretraining (it cannot be retrained per stream here), which flatters our starting point.

For each stream, top-1 whole-line conversion of the later lines, segmented (the keys are the syllables joined
with apostrophes, run through the engine pipeline as ``pinyin-ime convert`` converts a line: no reuse across
keys, int8 ONNX, the two passes of ``engine.runtime.two_pass`` when the model has an emission head), in four settings:

* base: the factory model;
* instant: the first lines typed into a fresh store through the app's session over the pipeline, picking the
  reference candidate by candidate as a user would (``engine.ime.replay``, which ``pinyin-ime convert --learn``
  types with too; ``engine.ime.learning.UserRanker`` learns the phrases and pairs);
* finetuned: ``python -m trainer.finetune --home H --progress-json`` on that store (the app's button), timed;
* combined: the fine-tuned model with the instant learning (the product).

The lift (combined against base) comes with a 95% interval over the per-line differences (``paired_lift``).
Peers: ``score.py`` on the later lines, without and with ``--learn`` on the first lines. Also the change on
``../shared/data/eval/test.tsv`` (sentence/char, factory vs fine-tuned model) and the fine-tune's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._common import EVAL_DIR, REPO, machine, peers_dir, peers_score_py
from engine.ime.replay import Typist, keys_for, type_line, whole_line  # noqa: F401 (type_line: imported from here too)
from trainer.held_out import STREAMS, make_stream  # noqa: F401 (the streams replayed; also imported from here)

PEERS = peers_dir()
RESULTS = REPO / "benchmarks" / "results" / "personalize.json"


def factory_without(shard: str, work: Path) -> Path:
    """The shipped model with every count-built asset rebuilt without shard ``shard`` (``trainer.held_out``)."""
    from trainer.held_out import factory_without as build

    return build(shard, work)


def write_tsv(path: Path, lines) -> None:
    path.write_text("".join(f"{t}\t{' '.join(s)}\n" for t, s in lines), encoding="utf-8")


def accuracy(pipe, lines) -> dict:
    """Top-1 whole-line sentence and character accuracy of a pipeline (with its learning, if it has a store)."""
    from trainer.evaluate import char_accuracy

    whole_line(pipe)
    if pipe.ranker is not None:
        pipe.ranker.forget_context()
    guesses = []
    for text, syllables in lines:
        keys = keys_for(syllables)
        cands = pipe(keys)
        guesses.append(cands[0].text if cands and cands[0].consumed == len(keys) else "")
    texts = [text for text, _ in lines]
    right = ["1" if g == t else "0" for g, t in zip(guesses, texts)]
    return {"sent_acc": right.count("1") / len(lines), "char_acc": char_accuracy(guesses, texts), "right": "".join(right)}


def paired_lift(before: str, after: str) -> tuple[float, float]:
    """The change in sentence accuracy between two runs over the same lines (their ``right`` strings: one
    0/1 a line) and the half-width of its 95% interval (normal approximation over the per-line differences,
    which is much tighter than the two accuracies' own intervals since most lines agree)."""
    if len(before) != len(after) or not before:
        raise ValueError("need two runs over the same lines")
    d = [int(a) - int(b) for a, b in zip(after, before)]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / max(1, n - 1)
    return mean, 1.96 * (var / n) ** 0.5


def run_finetune(home: Path, factory: Path, max_seconds: float, extra: list[str]) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "trainer.finetune", "--home", str(home), "--progress-json",
           "--max-seconds", str(max_seconds), *extra]
    t0 = time.time()
    env = {**os.environ, "PINYIN_IME_FACTORY_MODEL": str(factory)}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = next((e for e in reversed(events) if e["event"] == "done"), None)
    if done is None:
        raise SystemExit(f"finetune gave no result (exit {proc.returncode}): {proc.stderr[-2000:]}")
    done["evals"] = [e for e in events if e["event"] == "eval"]
    return done, wall


def peer(engine: str, later: Path, learn: Path | None) -> dict:
    cmd = [sys.executable, str(peers_score_py(PEERS)), str(later), "--", str(PEERS / "bin" / engine), "--segmented",
           "--top", "5"] + (["--learn", str(learn)] if learn else [])
    proc = subprocess.run(cmd, cwd=PEERS, capture_output=True, text=True)
    try:
        s = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"score.py exited {proc.returncode}: {proc.stderr[-300:]}"}
    return {"sent_acc": s["sent_acc1"], "char_acc": s["char_acc"]}


def test_accuracy(model_dir: Path, cache: dict) -> dict:
    from trainer.finetune import line_accuracy
    from trainer.user_text import read_lines

    key = str(model_dir)
    if key not in cache:
        cache[key] = line_accuracy(model_dir, read_lines(EVAL_DIR / "test.tsv"))
    return cache[key]


def run_stream(name: str, args, work: Path, test_cache: dict) -> dict:
    from engine import store
    from engine.personal import loading
    from engine.ime.pipeline import build_pipeline

    lines = make_stream(name, args.first + args.later)
    first, later = lines[:args.first], lines[args.first:]
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    write_tsv(d / "first.tsv", first)
    write_tsv(d / "later.tsv", later)
    row: dict = {"stream": name, "first_lines": len(first), "later_lines": len(later),
                 "first_chars": sum(len(t) for t, _ in first), "start_line_fraction": 0.5}
    log = lambda m: print(f"[{name}] {m}", file=sys.stderr, flush=True)  # noqa: E731

    factory = factory_without(name, work)
    row["factory"] = str(factory)
    base = build_pipeline(factory, reuse=None)
    row["base"] = accuracy(base, later)
    log(f"base {row['base']}")

    home = Path(tempfile.mkdtemp(prefix=f"personalize-{name}-", dir=work))
    db = store.open_store(home)
    pipe = build_pipeline(factory, reuse=None, db=db)
    whole_line(pipe)
    t0 = time.time()
    row["typed_lines"] = Typist(pipe).type_all(first)
    row["typing_seconds"] = round(time.time() - t0, 1)
    row["instant"] = accuracy(pipe, later)
    log(f"instant {row['instant']} (typed {row['typed_lines']} lines in {row['typing_seconds']} s)")

    load_before = os.getloadavg()[0]
    done, wall = run_finetune(home, factory, args.max_seconds, args.finetune_args)
    row["finetune"] = {"accepted": done["accepted"], "reason": done["reason"], "seconds": done["seconds"],
                       "wall_seconds": round(wall, 1), "load_1min_before": round(load_before, 2),
                       "load_1min_after": round(os.getloadavg()[0], 2), "held_out_before": done.get("before"),
                       "held_out_after": done.get("after"), "general_base": done.get("general_base"),
                       "general_after": done.get("general_after"), "train": done.get("train"),
                       "method": done.get("method"), "device": done.get("device"), "alpha": done.get("alpha"),
                       "checks": [e for e in done["evals"] if e.get("phase") == "new"]}
    log(f"finetune {json.dumps(row['finetune'], ensure_ascii=False)}")
    if done["accepted"]:
        tuned = loading.build_user_pipeline(db, home, reuse=None)
        row["combined"] = accuracy(tuned, later)
        tuned.use_ranker(None)
        row["finetuned"] = accuracy(tuned, later)
        row["test_base"] = test_accuracy(factory, test_cache)
        row["test_finetuned"] = test_accuracy(Path(done["model_dir"]), test_cache)
    else:
        row["finetuned"], row["combined"] = row["base"], row["instant"]
    log(f"finetuned {row['finetuned']} combined {row['combined']}")
    db.close()
    for engine in args.engines:
        row[engine] = {"before": peer(engine, d / "later.tsv", None),
                       "after": peer(engine, d / "later.tsv", d / "first.tsv")}
        log(f"{engine} {row[engine]}")
    return row


def table(rows: list[dict], engines: list[str]) -> str:
    pct = lambda r: f"{r['sent_acc']:.1%} / {r['char_acc']:.1%}" if r and "sent_acc" in r else "–"  # noqa: E731
    head = ("| stream | ours base | + instant | fine-tuned | fine-tuned + instant | lift (95% interval) | "
            + " | ".join(f"{e} → --learn" for e in engines) + " | test.tsv sentence (char) | fine-tune s |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ft = r["finetune"]
        test = (f"{r['test_base']['sent_acc']:.1%} → {r['test_finetuned']['sent_acc']:.1%} "
                f"({r['test_base']['char_acc']:.1%} → {r['test_finetuned']['char_acc']:.1%})"
                if "test_finetuned" in r else "not accepted")
        peers = " | ".join(f"{pct(r[e]['before'])} → {pct(r[e]['after'])}" for e in engines)
        mean, half = paired_lift(r["base"]["right"], r["combined"]["right"])
        out.append(f"| {r['stream']} | {pct(r['base'])} | {pct(r['instant'])} | {pct(r['finetuned'])} | "
                   f"{pct(r['combined'])} | {mean * 100:+.1f} ± {half * 100:.1f} | {peers} | {test} | "
                   f"{ft['seconds']} ({ft['wall_seconds']} wall, "
                   f"load {ft['load_1min_before']}) |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", nargs="+", default=STREAMS, help="corpus shard names (e.g. tech_weekly)")
    ap.add_argument("--first", type=int, default=1500, help="lines the user typed (trained/learned on)")
    ap.add_argument("--later", type=int, default=500, help="lines to come (measured)")
    ap.add_argument("--engines", nargs="*", default=["libime", "libpinyin"])
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--finetune-args", nargs=argparse.REMAINDER, default=[],
                    help="passed on to trainer.finetune (last on the line)")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "personalize")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    missing = [e for e in args.engines if not os.access(PEERS / "bin" / e, os.X_OK)]
    if missing:
        print(f"peers {missing} not built in {PEERS}: see benchmarks/peers.py, or pass --engines with fewer",
              file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    info = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m benchmarks.personalize " + " ".join(argv if argv is not None else sys.argv[1:])}
    test_cache: dict = {}
    rows = [run_stream(name, args, args.work, test_cache) for name in args.streams]
    print(f"machine: {info['machine']}")
    print(table(rows, args.engines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**info, "streams": rows}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
