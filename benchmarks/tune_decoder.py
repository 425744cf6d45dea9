"""Decoder settings measured on the dev set (never on test): beam width and, for raw keys, how much a
segmentation's parser cost counts against the model's score.

    python -m benchmarks.tune_decoder [--model DIR] [--every 5] [--beams 4 8 12] [--weights 0.5 1 2 4]

Uses every ``--every``-th line of dev.tsv (both its revisions), prints accuracy and latency per setting.
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks._common import EVAL_DIR, REPO, machine
from engine.ime.converter import Converter
from engine.lexicon import SHIPPED_MODEL_DIR
from trainer.evaluate import read_tsv, score


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(SHIPPED_MODEL_DIR))
    ap.add_argument("--file", default=str(EVAL_DIR / "dev.tsv"))
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--beams", type=int, nargs="+", default=[4, 8, 12])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    ap.add_argument("--gaps", type=float, nargs="+", default=[1.5, 3.0])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    pairs = read_tsv(args.file)[:: args.every]
    conv = Converter.load_with_lexicon(args.model)
    print(f"machine: {machine()}  dev lines: {len(pairs)}")

    def run(raw: bool) -> dict:
        def convert(keys: str) -> list[str]:
            cands = conv.convert_raw(keys, 5) if raw else conv.convert_segmented(keys, 5)
            return [c.text for c in cands]
        return score(pairs, convert, raw=raw)

    base = conv
    for beam in args.beams:
        conv = base.with_settings(beam=beam)
        r = run(False)
        print(json.dumps({"mode": "segmented", "beam": beam, **{k: round(v, 4) for k, v in r.items()
                                                                 if isinstance(v, float)}}))
    for gap in args.gaps:
        for w in args.weights:
            conv = base.with_settings(beam=8, max_cost_gap=gap, segmentation_weight=w)
            r = run(True)
            print(json.dumps({"mode": "raw", "max_cost_gap": gap, "segmentation_weight": w,
                              **{k: round(v, 4) for k, v in r.items() if isinstance(v, float)}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
