"""Kill it at any moment and nothing acknowledged is lost: SIGKILL loop over a process that is typing.

Each trial starts a child process on one data folder (kept across trials) that types like a user through the
real session and pipeline: random pinyin, random candidate picks, commits that go to the SQLite store and
teach phrases and pairs (``engine.learning``). After each commit returns, the child prints ``ACK <text>``.
The parent SIGKILLs it after a random delay (seeded), then checks, with a fresh connection:
- the store opens and ``PRAGMA integrity_check`` says ok;
- every acknowledged commit is there (per text, at least as many rows as acknowledgements);
- the learned phrases are readable and the store still takes a write.

    python -m benchmarks.crash_safety [--trials 100] [--seed 1] [--max-delay 2.5]

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


def child(home: str, seed: int) -> int:
    """Type forever (until killed): commits and learning through the real session, pipeline and store."""
    from engine.pipeline import build_pipeline
    from engine.session import Session
    from engine.store import open_store

    rng = random.Random(seed)
    db = open_store(home)
    pipeline = build_pipeline(model_dir=None, db=db)  # the lexicon translator: the store is what is tested
    session = Session(pipeline, on_commit=pipeline.commit)
    print("READY", flush=True)
    while True:
        for k in "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))):
            session.press(k)
        while session.composing:
            if session.all_candidates:
                session.press(str(rng.randint(1, min(3, len(session.candidates)))))
            else:
                session.press("enter")
        while session.committed:  # on_commit has returned: the store has it (synchronous=FULL, WAL)
            print("ACK", session.committed.pop(0), flush=True)


def check(home: str, acked: collections.Counter) -> list[str]:
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
    finally:
        db.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-delay", type=float, default=2.5, help="seconds after the child is ready (uniform)")
    ap.add_argument("--home", default=None, help="data folder (default: a temporary one)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child, args.seed)
    print(json.dumps(machine()), file=sys.stderr)
    rng = random.Random(args.seed)
    home = args.home or tempfile.mkdtemp(prefix="pinyin-ime-crash-")
    acked: collections.Counter = collections.Counter()
    failures, start = 0, time.time()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for trial in range(args.trials):
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.crash_safety", "--child", home,
                                 "--seed", str(rng.randrange(1 << 30))], stdout=subprocess.PIPE, env=env, cwd=REPO)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"READY":
            print(f"trial {trial}: the child did not start", file=sys.stderr)
            failures += 1
            continue
        os.set_blocking(proc.stdout.fileno(), False)
        time.sleep(rng.uniform(0, args.max_delay))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        os.set_blocking(proc.stdout.fileno(), True)
        out = proc.stdout.read().decode("utf-8", errors="replace")
        for line in out.split("\n")[:-1]:  # a line cut short by the kill acknowledges nothing
            if line.startswith("ACK "):
                acked[line[4:]] += 1
        problems = check(home, acked)
        if problems:
            failures += 1
            print(f"trial {trial}: " + "; ".join(problems))
    total = sum(acked.values())
    elapsed = time.time() - start
    print(f"{args.trials} SIGKILL trials in {elapsed:.0f} s: {total} acknowledged commits, "
          f"{failures} trials with a problem (store not opening, integrity, a lost commit)")
    print(json.dumps({"trials": args.trials, "acknowledged_commits": total, "failed_trials": failures,
                      "seconds": round(elapsed, 1), "home": home}))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
