"""Score the peer pinyin engines (libime, RIME, libpinyin, Pinyin2Hanzi) with the peers' own score.py.

    python -m benchmarks.peers [--file TSV] [--modes segmented raw]
                               [--engines libime rime libpinyin pinyin2hanzi]
                               [--out benchmarks/results/peers_test.json] [--top 5]

The peers are built by ../shared/peers/setup.sh (as root; it needs apt), into ../shared/peers/bin (or
/tmp/peers/bin when that folder is read-only), found by ``benchmarks._common.peers_dir``; set
PINYIN_IME_PEERS to use another build. Runs are sequential, so they do not compete for cores. Every entry of
the JSON records score.py's output with the exact command, the date and the machine. Entries
for engines/modes not rerun are kept when the file was made from the same TSV.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._common import EVAL_DIR, REPO, cpu_name, peers_dir, peers_score_py

ENGINES = ["libime", "rime", "libpinyin", "pinyin2hanzi"]
MODES = ["segmented", "raw"]
PEERS = peers_dir()


def machine() -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "load_1min": load}


def score(engine: str, mode: str, tsv: str, top: int) -> dict:
    cmd = [sys.executable, str(peers_score_py(PEERS)), tsv] + (["--raw"] if mode == "raw" else [])
    cmd += ["--", str(PEERS / "bin" / engine), f"--{mode}", "--top", str(top), "--timing"]
    entry = {"command": shlex.join(cmd), "cwd": str(PEERS),
             "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    proc = subprocess.run(cmd, cwd=PEERS, capture_output=True, text=True)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": f"score.py exited {proc.returncode}", "stderr_tail": proc.stderr[-500:]}
    entry["score"] = result
    return entry


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--file", default=str(EVAL_DIR / "test.tsv"), help="汉字<TAB>pinyin file to score on")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=MODES)
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=ENGINES)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "peers_test.json"))
    ap.add_argument("--top", type=int, default=5)
    args = ap.parse_args(argv)

    missing = [e for e in args.engines if not os.access(PEERS / "bin" / e, os.X_OK)]
    if missing:
        print(f"peers not built in {PEERS} (missing: {', '.join(missing)}).\n"
              f"Run ../shared/peers/setup.sh as root (it needs apt), or point PINYIN_IME_PEERS at a build.",
              file=sys.stderr)
        return 2
    tsv = str(Path(args.file).resolve())

    out = Path(args.out)
    data = {"tsv": tsv, "peers": str(PEERS), "results": {}}
    if out.is_file():
        try:
            old = json.loads(out.read_text(encoding="utf-8"))
            if old.get("tsv") == tsv:
                data["results"] = old.get("results", {})
        except (OSError, json.JSONDecodeError):
            pass

    failed = 0
    for engine in args.engines:
        for mode in args.modes:
            print(f"{engine:13s} {mode:9s} ...", end=" ", flush=True, file=sys.stderr)
            entry = score(engine, mode, tsv, args.top)
            data["results"].setdefault(engine, {})[mode] = entry
            s = entry["score"]
            failed += "error" in s
            print(json.dumps(s, ensure_ascii=False), file=sys.stderr)
            out.parent.mkdir(parents=True, exist_ok=True)  # written after each run: partial results survive
            out.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    print(f"\n{'engine':13s} {'mode':9s} {'acc1':>6s} {'acc' + str(args.top):>6s} {'char':>6s} "
          f"{'p50 ms':>8s} {'p95 ms':>8s}")
    for engine, modes in data["results"].items():
        for mode, entry in modes.items():
            s = entry["score"]
            if "error" in s:
                print(f"{engine:13s} {mode:9s} error: {s['error']}")
                continue
            print(f"{engine:13s} {mode:9s} {s['sent_acc1']:6.3f} {s['sent_accK']:6.3f} {s['char_acc']:6.3f} "
                  f"{s.get('lat_p50_ms', float('nan')):8.2f} {s.get('lat_p95_ms', float('nan')):8.2f}")
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
