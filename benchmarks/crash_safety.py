"""Kill it at any moment and nothing acknowledged is lost: SIGKILL loop over a process that is typing.

Each trial starts a child process on one data folder (kept across trials) that types like a user through the
real session and pipeline: random pinyin, random candidate picks, commits that go to the SQLite store and
teach phrases and pairs (``engine.ime.learning``). After each commit returns, the child prints ``ACK <text>``.
The parent SIGKILLs it after a random delay (seeded), then checks, with a fresh connection:
- the store opens and ``PRAGMA integrity_check`` says ok;
- every acknowledged commit is there (per text, at least as many rows as acknowledgements);
- the learned phrases are readable and the store still takes a write.

    python -m benchmarks.crash_safety [--trials 100] [--seed 1] [--max-delay 2.5] [--finetune [--long-every 5]]

With ``--finetune`` the child also runs personalization back to back (a tiny model standing in for the
factory model) — training, exporting, installing new personal models into the store — and each check also
loads the active model and converts with it. A kill within the first seconds mostly lands before the first
run has finished, so every ``--long-every``-th trial first waits for the child to finish one run (its ``FT``
line: a personal model installed or refused) and is killed after that, at a random point of the next: those
trials check the store and the active model with personal models installed and being installed.

Prints one line per failed trial and a summary, ending with one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import REPO, machine

SYLLABLES = ["ni", "hao", "zhong", "guo", "ren", "shi", "jie", "xue", "xi", "wo", "men", "da", "jia", "de", "yi",
             "ge", "bei", "jing", "shang", "hai", "dian", "nao", "peng", "you", "gong", "zuo"]


def child(home: str, seed: int, finetune: bool) -> int:
    """Type forever (until killed): commits and learning through the real session, pipeline and store; with
    ``finetune``, personalization runs back to back on the main thread meanwhile (the typing on another)."""
    import threading

    rng = random.Random(seed)
    if finetune:
        from trainer import finetune as ft

        threading.Thread(target=type_forever, args=(home, rng), daemon=True).start()
        print("READY", flush=True)
        while True:  # each run installs a new personal model when it is accepted (tiny model, short runs)
            code = ft.main(["--home", home, "--quiet", "--lr", "1e-2", "--max-epochs", "3", "--replay-ratio", "0.2",
                            "--min-lines", "30", "--max-seconds", "40", "--threads", "1"])
            print("FT", code, flush=True)
    print("READY", flush=True)
    type_forever(home, rng)
    return 0


def type_forever(home: str, rng: random.Random) -> None:
    from engine.ime.pipeline import build_pipeline
    from engine.ime.session import Session
    from engine.store import open_store

    db = open_store(home)
    pipeline = build_pipeline(model_dir=None, db=db)  # the lexicon translator: the store is what is tested
    session = Session(pipeline, on_commit=pipeline.commit)
    while True:
        for k in "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 6))):
            session.press(k)
        while session.composing:
            if session.all_candidates:
                session.press(str(rng.randint(1, min(3, len(session.candidates)))))
            else:
                session.press("enter")
        while session.committed:  # on_commit has returned: the store has it (synchronous=FULL, WAL)
            # sys.__stdout__: fine-tuning redirects sys.stdout to stderr while it exports, on another thread
            print("ACK", session.committed.pop(0), file=sys.__stdout__, flush=True)


def check(home: str, acked: collections.Counter, models: bool) -> list[str]:
    from engine import store
    problems = []
    try:
        db = store.open_store(home)
    except Exception as e:  # noqa: BLE001 - any failure to open is the finding
        return [f"store does not open: {type(e).__name__}: {e}"]
    try:
        if db.recovered_from is not None:
            problems.append(f"store was found damaged and set aside: {db.recovery_reason}")
        if not store.integrity_ok(db):
            problems.append("integrity_check failed")
        have = collections.Counter(r["text"] for r in store.list_commits(db, limit=10**9))
        missing = {t: n - have[t] for t, n in acked.items() if have[t] < n}
        if missing:
            problems.append(f"acknowledged commits missing: {dict(list(missing.items())[:5])}")
        store.list_phrases(db, limit=10)
        store.set_setting(db, "crash_check", time.time())
        if models:  # the active model (personal or factory) loads and converts, without anything set aside
            from engine.personal import versions
            from engine.ime.converter import Converter

            active = versions.resolve_active(db, home)
            if active.note:
                problems.append(f"active model unusable: {active.note}")
            try:
                Converter.load(active.path, runtime="onnx").convert_raw("nihao", 1)
            except Exception as e:  # noqa: BLE001
                problems.append(f"active model {active.label} does not load: {type(e).__name__}: {e}")
    finally:
        db.close()
    return problems


def kill_after_finetune(proc: subprocess.Popen, limit: float, delay: float) -> list[str]:
    """Let the child run until it reports a finished personalization run (``FT …``; at most ``limit``
    seconds), then ``delay`` seconds more, then SIGKILL it. Returns its complete output lines (a reader thread
    takes them as they come, so the pipe never fills while the run trains)."""
    import threading

    raw, finished = [], threading.Event()

    def pump() -> None:
        for line in proc.stdout:
            raw.append(line)
            if line.startswith(b"FT "):
                finished.set()
        finished.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    finished.wait(limit)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    # a line cut short by the kill acknowledges nothing
    return [line.decode("utf-8", errors="replace")[:-1] for line in raw if line.endswith(b"\n")]


def tiny_factory(where: Path) -> Path:
    """A tiny model (with its ONNX graphs) standing in for the factory model, so fine-tuning takes seconds."""
    import torch

    from engine.lexicon import default_lexicon
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, char_vocab, input_tokens, save_model
    from engine.runtime.onnx_export import export

    out = where / "tiny-factory"
    if not (out / "onnx").exists():
        torch.manual_seed(0)
        chars = char_vocab(default_lexicon().characters)
        model = PinyinModel(ModelConfig(n_inputs=len(input_tokens()), n_chars=len(chars), max_len=64,
                                        **SIZES["tiny"]))
        save_model(model, out, chars)
        export(model, out)
    return out


def seed_history(home: str, lines: int = 300) -> None:
    """Sentences already typed (general text shipped for personalization), so fine-tuning has something to
    learn from from the first trial and installs personal models along the way."""
    from engine import store
    from engine.lexicon import ASSETS_DIR
    from trainer.evaluate import read_tsv

    db = store.open_store(home)
    if store.count_commits(db) < lines:
        for text, pinyin in read_tsv(ASSETS_DIR / "personalize" / "replay.tsv")[:lines]:
            store.record_commit(db, text, pinyin, pinyin.replace(" ", ""))
    db.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-delay", type=float, default=2.5, help="seconds after the child is ready (uniform)")
    ap.add_argument("--home", default=None, help="data folder (default: a temporary one)")
    ap.add_argument("--finetune", action="store_true",
                    help="the child also fine-tunes (a tiny factory model) and installs personal models")
    ap.add_argument("--long-every", type=int, default=5,
                    help="with --finetune: every Nth trial waits for a personalization run to finish before its kill")
    ap.add_argument("--long-wait", type=float, default=180.0, help="the longest such a wait (seconds)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.seed, args.finetune)
    print(json.dumps(machine()), file=sys.stderr)
    rng = random.Random(args.seed)
    home = args.home or tempfile.mkdtemp(prefix="pinyin-ime-crash-")
    acked: collections.Counter = collections.Counter()
    failures, start, installed, finished_runs = 0, time.time(), set(), 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if args.finetune:
        env["PINYIN_IME_FACTORY_MODEL"] = os.environ["PINYIN_IME_FACTORY_MODEL"] = str(tiny_factory(Path(home)))
        seed_history(home)
    for trial in range(args.trials):
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.crash_safety", "--child", home,
                                 "--seed", str(rng.randrange(1 << 30))] + (["--finetune"] if args.finetune else []),
                                stdout=subprocess.PIPE, env=env, cwd=REPO)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"READY":
            print(f"trial {trial}: the child did not start", file=sys.stderr)
            failures += 1
            continue
        if args.finetune and args.long_every > 0 and trial % args.long_every == args.long_every - 1:
            lines = kill_after_finetune(proc, args.long_wait, rng.uniform(0, args.max_delay))
        else:
            os.set_blocking(proc.stdout.fileno(), False)
            time.sleep(rng.uniform(0, args.max_delay))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            os.set_blocking(proc.stdout.fileno(), True)
            lines = proc.stdout.read().decode("utf-8", errors="replace").split("\n")[:-1]  # cut short: nothing
        for line in lines:
            if line.startswith("ACK "):
                acked[line[4:]] += 1
            elif line.startswith("FT "):
                finished_runs += 1
        problems = check(home, acked, args.finetune)
        if args.finetune:
            installed |= {p.name for p in (Path(home) / "models").glob("v*")}
        if problems:
            failures += 1
            print(f"trial {trial}: " + "; ".join(problems))
    total = sum(acked.values())
    elapsed = time.time() - start
    print(f"{args.trials} SIGKILL trials in {elapsed:.0f} s: {total} acknowledged commits, "
          + (f"personalization runs finished: {finished_runs}, personal models installed along the way: "
             f"{len(installed)}, " if args.finetune else "")
          + f"{failures} trials with a problem (store not opening, integrity, a lost commit"
          + (", the active model not loading)" if args.finetune else ")"))
    print(json.dumps({"trials": args.trials, "acknowledged_commits": total, "failed_trials": failures,
                      "finetune": args.finetune, "personal_models_seen": len(installed),
                      "finetune_runs_finished": finished_runs,
                      "seconds": round(elapsed, 1), "home": home}))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
