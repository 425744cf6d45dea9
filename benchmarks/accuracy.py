"""Our accuracy beside the peers', scored by the peers' own score.py through the same CLI interface.

    python -m benchmarks.accuracy [--file ../shared/data/eval/test.tsv] [--model DIR] [--modes segmented raw]
                                  [--runtime auto|onnx|torch] [--fp32] [--no-lm] [--beam-search] [--peers]

Runs ``score.py FILE [--raw] -- pinyin-ime convert --segmented|--raw --top 5 --timing --model DIR`` (the
interface the peer drivers implement), prints a table with the peers' numbers from
``benchmarks/results/peers_<set>.json`` (made by ``benchmarks/peers.py``), and writes ours to
``benchmarks/results/ours_<set>.json`` with the machine and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from benchmarks._common import EVAL_DIR, REPO, machine

SCORE_PY = REPO.parent / "shared" / "peers" / "score.py"
RESULTS = REPO / "benchmarks" / "results"


def score_ours(tsv: Path, mode: str, model: Path | None, top: int, extra: list[str] = (), env: dict | None = None) -> dict:
    """score.py on ``pinyin-ime convert``; ``env``: variables set for it (the ablation switches
    ``PINYIN_IME_WORD_LM=0``, ``PINYIN_IME_ALL_READINGS=1``)."""
    cmd = [sys.executable, str(SCORE_PY), str(tsv)] + (["--raw"] if mode == "raw" else []) + [
        "--", sys.executable, "-m", "ime_app.cli", "convert", f"--{mode}", "--top", str(top), "--timing", *extra]
    if model:
        cmd += ["--model", str(model)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False,
                       env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise SystemExit(f"score.py failed ({r.returncode}): {r.stderr[-2000:]}")
    return {"command": " ".join(cmd), "score": json.loads(r.stdout.strip().splitlines()[-1])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", type=Path, default=EVAL_DIR / "test.tsv")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--modes", nargs="+", default=["segmented", "raw"], choices=["segmented", "raw"])
    ap.add_argument("--top", type=int, default=5)
    ap.add_argument("--runtime", default="auto", choices=["auto", "onnx", "torch"])
    ap.add_argument("--fp32", action="store_true", help="full-precision weights (default: int8, as the app types)")
    ap.add_argument("--no-lm", action="store_true", help="the model alone, without the corpus character LM")
    ap.add_argument("--beam-search", action="store_true",
                    help="whole lines by the decoder's beam search, not the two passes (engine/runtime/two_pass.py)")
    ap.add_argument("--peers", nargs="*", default=None, metavar="ENGINE",
                    help="score these peers (default all four) in this same run first (benchmarks/peers.py)")
    args = ap.parse_args(argv)
    if args.peers is not None:
        from benchmarks import peers as peers_bench

        peers_bench.main(["--file", str(args.file), "--modes", *args.modes, "--top", str(args.top),
                          "--out", str(RESULTS / f"peers_{args.file.stem}.json")]
                         + (["--engines", *args.peers] if args.peers else []))
    extra = ["--runtime", args.runtime] + (["--fp32"] if args.fp32 else []) + (["--no-lm"] if args.no_lm else []) \
        + (["--beam-search"] if args.beam_search else [])
    if not SCORE_PY.exists():
        print(f"{SCORE_PY} not found: this benchmark needs ../shared/peers beside the repo", file=sys.stderr)
        return 2
    name = args.file.stem
    ours = {"file": str(args.file), "machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": str(args.model or "assets/model"), "results": {}}
    for mode in args.modes:
        ours["results"][mode] = score_ours(args.file, mode, args.model, args.top, extra)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"ours_{name}{'_fp32' if args.fp32 else ''}{'_no_lm' if args.no_lm else ''}"
               f"{'_beam' if args.beam_search else ''}.json").write_text(json.dumps(ours, indent=1, ensure_ascii=False) + "\n")
    peers_path = RESULTS / f"peers_{name}.json"
    peers = json.loads(peers_path.read_text())["results"] if peers_path.exists() else {}
    print(f"machine: {ours['machine']}   set: {args.file}")
    print(f"| engine | mode | top-1 sentence | top-{args.top} sentence | char acc | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|")
    label = (f"pinyin-ime (ours, {args.runtime}, {'fp32' if args.fp32 else 'int8'}{', no LM' if args.no_lm else ', + char LM'}"
             f"{', beam search' if args.beam_search else ''})")
    rows = [(label, mode, ours["results"][mode]["score"]) for mode in args.modes]
    rows += [(engine, mode, by_mode[mode]["score"]) for engine, by_mode in peers.items() for mode in args.modes
             if mode in by_mode]
    for engine, mode, s in rows:
        print(f"| {engine} | {mode} | {s['sent_acc1']:.1%} | {s['sent_accK']:.1%} | {s['char_acc']:.1%} | "
              f"{s['lat_p50_ms']:.1f} | {s['lat_p95_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
