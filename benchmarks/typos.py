"""Typo benchmark (issue 22, item 1): the eval lines typed with one seeded slip each, ours beside the peers.

    python -m benchmarks.typos [--file ../shared/data/eval/test.tsv] [--seed 22] [--limit N]
                               [--engines ours libime libpinyin rime pinyin2hanzi] [--model DIR]
                               [--ours-args "--typos"] [--top 5] [--out benchmarks/results/typos_test.json]

Every line is scored twice per engine, in raw mode (keys as typed, no spaces), by the peers' own score.py:
once on its clean keys and once on its noisy keys, so the table shows clean vs noisy for each engine. The
peers (libime, libpinyin, rime, pinyin2hanzi; built by ../shared/peers/setup.sh, found by
``benchmarks._common.peers_dir``) run through their drivers' ``--raw --top K --timing``; ours through
``pinyin-ime convert --raw`` (``benchmarks.accuracy.score_ours``) with the extra arguments ``--ours-args``
(for instance the typo-tolerance option of ``convert``), recorded in the JSON. Ours with other arguments is
another row: entries for engines not rerun are kept when the JSON was made from the same lines, seed and
typo model, so ``--engines ours --ours-args "--typos"`` adds a row beside the earlier ones.

The typo model (``TYPO_MODEL``, recorded in the JSON)
----------------------------------------------------
* **Exactly one slip per line**, whatever its length (test.tsv: 4–29 syllables, 9 on average).
* **Where**: a letter inside one syllable of the reference pinyin, never a separator nor a whole syllable.
* **Which kind**: one of four, drawn uniformly:

  - ``swap``: two adjacent, different letters of one syllable typed in the wrong order (``zhong`` → ``zhogn``,
    ``hao`` → ``hoa``, ``me`` → ``em``);
  - ``double``: a letter of a syllable typed twice (``hao`` → ``haao``);
  - ``drop``: a letter of a syllable of two or more letters left out (``shen`` → ``shn``; a one-letter
    syllable such as ``e`` is never dropped: that would be a missing syllable, not a typo);
  - ``neighbour``: a letter replaced by a key that touches it on a QWERTY keyboard, same row or the rows above
    and below (``g`` → f h t y v b; see ``QWERTY_NEIGHBOURS``).

  Within a kind, the slip's letter is drawn uniformly among the line's letters where that kind applies (so
  longer syllables get more slips, as per keystroke), then, for ``neighbour``, the key uniformly among the
  letter's neighbours.
* **Rejected and redrawn**: a slip that leaves the keys unchanged, and one whose keys, as a whole, read as
  some other sequence of valid syllables of the *same count* as the reference (``xiang`` → ``xian`` in a
  line, or ``ni`` → ``mi``): that is another valid reading, which an IME must keep, not a typo to correct.
  Every syllable of ``engine.pinyin.SYLLABLE_SET`` counts (interjections like ``ng``/``m`` included, so the
  rule errs on the strict side), plus the spellings ``lue``/``nue``. Noisy keys that read as valid pinyin of
  another syllable count are kept (``hao`` → ``haoo`` = hao'o): that is the realistic case. When no slip of
  the drawn kind passes, the other kinds are tried in a seeded order; a line no slip can change fails loudly.
* **Seed**: each line's slip comes from ``random.Random(f"{seed}:{pinyin}")`` (a string seed is hashed with
  SHA-512, stable across runs and Python processes), so a line always gets the same slip whatever
  ``--limit``, the file or the order of lines; ``--seed`` (default 22) draws another set.

The noisy set is written as ``build/typos/<set>_noisy.tsv`` (``汉字<TAB>noisykeys``, raw keys, no spaces), the
clean keys of the same lines as ``build/typos/<set>_clean.tsv``, and each line's slip (clean, noisy, kind,
syllable) as ``build/typos/<set>_slips.tsv``. ``--limit N`` takes the first N lines, for a quick look, and
writes ``typos_<set>_limit<N>.json`` unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import sys
import time
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from benchmarks._common import EVAL_DIR, REPO, cpu_name, machine as repo_machine, peers_dir, peers_score_py

PEER_ENGINES = ["libime", "libpinyin", "rime", "pinyin2hanzi"]
ENGINES = ["ours", *PEER_ENGINES]
KINDS = ("swap", "double", "drop", "neighbour")
DEFAULT_SEED = 22
BUILD = REPO / "build" / "typos"
RESULTS = REPO / "benchmarks" / "results"

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _qwerty_neighbours() -> dict[str, str]:
    """Keys touching each letter: left and right on its row; the staggered rows put row r+1's key i below the
    keys i and i+1 of row r (``a`` under q w, ``z`` under a s)."""
    out = {}
    for r, row in enumerate(_ROWS):
        for i, ch in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            if r > 0:
                near += [_ROWS[r - 1][j] for j in (i, i + 1) if j < len(_ROWS[r - 1])]
            if r + 1 < len(_ROWS):
                near += [_ROWS[r + 1][j] for j in (i - 1, i) if 0 <= j < len(_ROWS[r + 1])]
            out[ch] = "".join(sorted(near))
    return out


QWERTY_NEIGHBOURS = _qwerty_neighbours()

TYPO_MODEL = {
    "slips_per_line": 1,
    "kinds": {
        "swap": "two adjacent different letters inside one syllable exchanged",
        "double": "one letter of a syllable typed twice",
        "drop": "one letter of a syllable of 2+ letters left out",
        "neighbour": "one letter replaced by a QWERTY key touching it (same row, row above or below)",
    },
    "kind_choice": "uniform over the four kinds; then uniform over the line's letters where the kind applies; "
                   "neighbour: then uniform over the letter's neighbour keys",
    "rejected": "slips leaving the keys unchanged, and noisy keys that split into valid syllables "
                "(engine.pinyin.SYLLABLE_SET + lue/nue) of the same count as the reference; "
                "then another slip is drawn (other kinds in a seeded order if none of the kind passes)",
    "rng": "random.Random(f'{seed}:{pinyin}') per line",
    "mode": "raw keys, no separators",
}


@lru_cache(maxsize=1)
def _spellings() -> frozenset[str]:
    from engine.pinyin import SYLLABLE_SET

    return frozenset(SYLLABLE_SET | {"lue", "nue"})


def reads_as(keys: str, count: int) -> bool:
    """Whether ``keys`` split into exactly ``count`` valid full syllables (any split, not just the reference's)."""
    spellings = _spellings()
    n = len(keys)
    counts: list[set[int]] = [set() for _ in range(n + 1)]
    counts[0].add(0)
    for i in range(n):
        if not counts[i]:
            continue
        for j in range(i + 1, min(n, i + 6) + 1):
            if keys[i:j] in spellings:
                counts[j].update(c + 1 for c in counts[i] if c < count)
    return count in counts[n]


def _edits(syllables: list[str], kind: str, rng: random.Random):
    """Candidate slips of one kind, in a seeded order: (syllable index, new spelling of that syllable)."""
    letters = [(k, i) for k, s in enumerate(syllables) for i in range(len(s))]
    rng.shuffle(letters)
    for k, i in letters:
        s = syllables[k]
        if kind == "swap":
            if i + 1 < len(s) and s[i] != s[i + 1]:
                yield k, s[:i] + s[i + 1] + s[i] + s[i + 2:]
        elif kind == "double":
            yield k, s[:i + 1] + s[i:]
        elif kind == "drop":
            if len(s) >= 2:
                yield k, s[:i] + s[i + 1:]
        elif kind == "neighbour":
            keys = list(QWERTY_NEIGHBOURS[s[i]])
            rng.shuffle(keys)
            for key in keys:
                yield k, s[:i] + key + s[i + 1:]
        else:
            raise ValueError(kind)


def make_slip(pinyin: str, seed: int = DEFAULT_SEED) -> dict:
    """One line's slip: ``{"clean", "noisy", "kind", "syllable", "from", "to"}`` (raw keys, no spaces)."""
    syllables = pinyin.split()
    clean = "".join(syllables)
    rng = random.Random(f"{seed}:{pinyin}")
    first = rng.choice(KINDS)
    rest = [k for k in KINDS if k != first]
    rng.shuffle(rest)
    for kind in [first, *rest]:
        for k, spelled in _edits(syllables, kind, rng):
            noisy = "".join(syllables[:k] + [spelled] + syllables[k + 1:])
            if noisy != clean and not reads_as(noisy, len(syllables)):
                return {"clean": clean, "noisy": noisy, "kind": kind, "syllable": k, "from": syllables[k],
                        "to": spelled}
    raise ValueError(f"no slip changes {pinyin!r} without making another valid reading")


def read_lines(path: Path, limit: int = 0) -> list[tuple[str, str]]:
    """``汉字<TAB>pinyin`` lines as score.py reads them (blank lines and lines without a tab skipped)."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or "\t" not in line:
            continue
        hz, py = line.split("\t", 1)
        pairs.append((hz, py.strip()))
    return pairs[:limit] if limit else pairs


def write_sets(pairs: list[tuple[str, str]], name: str, seed: int, folder: Path = BUILD) -> tuple[Path, Path, list[dict]]:
    slips = [make_slip(py, seed) for _, py in pairs]
    folder.mkdir(parents=True, exist_ok=True)
    clean, noisy, table = folder / f"{name}_clean.tsv", folder / f"{name}_noisy.tsv", folder / f"{name}_slips.tsv"
    clean.write_text("".join(f"{hz}\t{s['clean']}\n" for (hz, _), s in zip(pairs, slips)), encoding="utf-8")
    noisy.write_text("".join(f"{hz}\t{s['noisy']}\n" for (hz, _), s in zip(pairs, slips)), encoding="utf-8")
    table.write_text("汉字\tclean\tnoisy\tkind\tsyllable\tfrom\tto\n" + "".join(
        f"{hz}\t{s['clean']}\t{s['noisy']}\t{s['kind']}\t{s['syllable']}\t{s['from']}\t{s['to']}\n"
        for (hz, _), s in zip(pairs, slips)), encoding="utf-8")
    return clean, noisy, slips


def machine() -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "load_1min": load}


def score_peer(engine: str, tsv: Path, top: int) -> dict:
    import subprocess

    peers = peers_dir()
    cmd = [sys.executable, str(peers_score_py(peers)), str(tsv), "--raw",
           "--", str(peers / "bin" / engine), "--raw", "--top", str(top), "--timing"]
    proc = subprocess.run(cmd, cwd=peers, capture_output=True, text=True)
    try:
        score = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        score = {"error": f"score.py exited {proc.returncode}", "stderr_tail": proc.stderr[-500:]}
    return {"command": shlex.join(cmd), "cwd": str(peers), "score": score}


def score_ours(tsv: Path, model: Path | None, top: int, extra: list[str]) -> dict:
    from benchmarks import accuracy

    try:
        return accuracy.score_ours(tsv, "raw", model, top, extra=extra)
    except SystemExit as e:  # score_ours exits on a failed run: keep the message, go on with the others
        return {"command": None, "score": {"error": str(e)[-1000:]}}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _pct(s: dict, key: str) -> str:
    return f"{s[key]:.1%}" if key in s else "—"


def table(results: dict, top: int) -> list[str]:
    lines = [f"| engine | clean top-1 | clean top-{top} | clean char | noisy top-1 | noisy top-{top} | noisy char "
             f"| Δ top-1 |", "|---|---|---|---|---|---|---|---|"]
    for engine, entry in results.items():
        c, n = entry["clean"]["score"], entry["noisy"]["score"]
        if "error" in c or "error" in n:
            lines.append(f"| {engine} | error: {c.get('error') or n.get('error')} |")
            continue
        lines.append(f"| {engine} | {_pct(c, 'sent_acc1')} | {_pct(c, 'sent_accK')} | {_pct(c, 'char_acc')} | "
                     f"{_pct(n, 'sent_acc1')} | {_pct(n, 'sent_accK')} | {_pct(n, 'char_acc')} | "
                     f"{(n['sent_acc1'] - c['sent_acc1']) * 100:+.1f} |")
    return lines


def verdict(results: dict) -> list[str]:
    """Issue 22's bar: ours ≥ 10 points above every peer's noisy top-1, clean top-1 within 0.3 point of ours
    without extra arguments."""
    ok = lambda e: "error" not in e["clean"]["score"] and "error" not in e["noisy"]["score"]  # noqa: E731
    peers = {e: r for e, r in results.items() if not e.startswith("ours") and ok(r)}
    base = results.get("ours")
    out = []
    for engine, r in results.items():
        if not engine.startswith("ours") or not ok(r):
            continue
        line = f"{engine}:"
        if peers:
            best = max(peers, key=lambda e: peers[e]["noisy"]["score"]["sent_acc1"])
            margin = (r["noisy"]["score"]["sent_acc1"] - peers[best]["noisy"]["score"]["sent_acc1"]) * 100
            line += f" noisy top-1 {margin:+.1f} points vs the best peer ({best}; bar: +10)"
        if base and ok(base) and r is not base:
            drift = (r["clean"]["score"]["sent_acc1"] - base["clean"]["score"]["sent_acc1"]) * 100
            line += f"; clean top-1 {drift:+.1f} points vs ours without options (bar: within 0.3)"
        out.append(line)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", type=Path, default=EVAL_DIR / "test.tsv", help="汉字<TAB>pinyin file")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--limit", type=int, default=0, help="only the first N lines")
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=ENGINES)
    ap.add_argument("--model", type=Path, default=None, help="our model folder (default: the shipped one)")
    ap.add_argument("--ours-args", default="", help='extra arguments for our convert, e.g. "--typos"')
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None,
                    help="default: benchmarks/results/typos_<set>.json (typos_<set>_limit<N>.json with --limit)")
    args = ap.parse_args(argv)

    peers = peers_dir()
    missing = [e for e in args.engines if e != "ours" and not os.access(peers / "bin" / e, os.X_OK)]
    if missing:
        print(f"peers not built in {peers} (missing: {', '.join(missing)}).\n"
              f"Run ../shared/peers/setup.sh as root (it needs apt), point PINYIN_IME_PEERS at a build, "
              f"or leave them out with --engines.", file=sys.stderr)
        return 2

    src = args.file.resolve()
    name = src.stem + (f"_limit{args.limit}" if args.limit else "")
    pairs = read_lines(src, args.limit)
    clean_tsv, noisy_tsv, slips = write_sets(pairs, name, args.seed)
    kinds = {k: sum(s["kind"] == k for s in slips) for k in KINDS}
    print(f"{len(pairs)} lines of {src}, seed {args.seed}: one slip each {kinds}\n"
          f"  noisy {noisy_tsv}\n  clean {clean_tsv}", file=sys.stderr)

    out = args.out or RESULTS / f"typos_{name}.json"
    ours_extra = shlex.split(args.ours_args)
    data = {
        "command": shlex.join(["python", "-m", "benchmarks.typos", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": repo_machine()["commit"], "machine": machine(),
        "file": str(src), "lines": len(pairs), "limit": args.limit, "seed": args.seed, "top": args.top,
        "typo_model": TYPO_MODEL, "slip_kinds": kinds,
        "noisy_tsv": str(noisy_tsv), "noisy_sha256": _sha(noisy_tsv),
        "clean_tsv": str(clean_tsv), "clean_sha256": _sha(clean_tsv),
        "peers": str(peers), "results": {},
    }
    if out.is_file():  # keep other engines' rows made from the very same lines and slips
        try:
            old = json.loads(out.read_text(encoding="utf-8"))
            if old.get("noisy_sha256") == data["noisy_sha256"] and old.get("typo_model") == TYPO_MODEL \
                    and old.get("top") == args.top:
                data["results"] = old.get("results", {})
        except (OSError, json.JSONDecodeError):
            pass

    failed = 0
    for engine in args.engines:
        key = engine
        if engine == "ours":  # ours with other arguments or another model is another row
            key = shlex.join(["ours", *ours_extra] + (["--model", str(args.model)] if args.model else []))
        entry = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
        if engine == "ours":
            entry.update(model=str(args.model or "assets/model (shipped)"), ours_args=ours_extra)
        for which, tsv in (("clean", clean_tsv), ("noisy", noisy_tsv)):
            print(f"{key:22s} {which} ...", end=" ", flush=True, file=sys.stderr)
            t0 = time.time()
            r = score_ours(tsv, args.model, args.top, ours_extra) if engine == "ours" else score_peer(engine, tsv, args.top)
            r["run_s"] = round(time.time() - t0, 1)
            entry[which] = r
            failed += "error" in r["score"]
            print(json.dumps(r["score"], ensure_ascii=False), file=sys.stderr)
        data["results"][key] = entry
        out.parent.mkdir(parents=True, exist_ok=True)  # written after each engine: partial results survive
        out.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    print(f"typo benchmark: {len(pairs)} lines of {src.name}, raw keys, one seeded slip per line "
          f"(seed {args.seed}; {', '.join(f'{k} {v}' for k, v in kinds.items())}); commit {data['commit']}")
    print("\n".join(table(data["results"], args.top)))
    for line in verdict(data["results"]):
        print(line)
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
