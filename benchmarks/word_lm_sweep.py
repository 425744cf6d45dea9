"""Tune the word LM's weight in ranking: accuracy and latency per weight, on dev or on held-out shards.

    python -m benchmarks.word_lm_sweep [--file ../shared/data/eval/dev.tsv] [--lines 1000] [--raw]
                                       [--model DIR] [--word-lm FILE] [--weights 0 0.2 0.3 0.5]
                                       [--penalties 0 2 4] [--char-weights 0.8]

Whole-line conversion as ``pinyin-ime convert`` does it (int8 ONNX, the model's character LM, no reuse), one
JSON line per weight and per-word penalty (weight 0: without the word LM). ``--model`` may be a ``trainer.held_out`` folder (counts
without a shard, e.g. ``build/out_of_domain/factory-without-SHARD`` with its held-out ``SHARD.tsv`` as
``--file``): tune on shards other than those ``benchmarks/out_of_domain.py`` reports. ``engine/lm/word_lm.py``
holds the chosen ``WEIGHT`` and ``PENALTY``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks._common import dev_sweep_args, machine


def main(argv=None) -> int:
    from engine.ime.converter import Converter, ConverterSettings
    from engine.lm.word_lm import FILE_NAME, PENALTY, WordLM, find
    from trainer.evaluate import read_tsv, score

    ap = dev_sweep_args(__doc__.split("\n")[0])
    ap.add_argument("--word-lm", type=Path, default=None, help=f"default: the model's {FILE_NAME}")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.2, 0.3, 0.5])
    ap.add_argument("--penalties", type=float, nargs="+", default=[PENALTY],
                    help=f"nats charged per word of a segmentation (default: the shipped {PENALTY})")
    ap.add_argument("--char-weights", type=float, nargs="+", default=None,
                    help="character LM fusion weights to try (default: the model's own, engine.lm.char_lm.WEIGHT)")
    ap.add_argument("--proposals", choices=["on", "off", "both"], default="both",
                    help="the word lattice's proposals (engine.runtime.word_proposals) beside the first pass's")
    args = ap.parse_args(argv)
    if "test" in args.file.name:
        print("note: tune on dev; test is for reporting", flush=True)
    pairs = read_tsv(args.file)[: args.lines or None]
    base = Converter.load(args.model, runtime="onnx", settings=ConverterSettings(int8=True))
    t0 = time.perf_counter()
    path = args.word_lm or find(args.model)
    lm = WordLM.load(path)
    print(json.dumps({"machine": machine(), "word_lm": str(path), "load_s": round(time.perf_counter() - t0, 3),
                      "mb_in_memory": round(lm.nbytes / 1e6, 1), "lines": len(pairs), "file": str(args.file)}))
    lexicon = base.word_lexicon
    settings = [(w, p) for w in args.weights for p in {"on": [True], "off": [False], "both": [False, True]}[args.proposals]
                if w or not p]
    char_lm = base.char_lm
    for cw in args.char_weights or [char_lm.weight]:
        char_lm.weight = cw
        for w, proposals in settings:
            for penalty in args.penalties if w else [0.0]:
                lm.weight, lm.penalty = w, penalty
                lm.clear_cache()  # each setting starts from no kept segmentation states, as a fresh process would
                conv = base.with_lms(word_lm=lm if w else None, word_lexicon=lexicon if proposals else None)
                convert = (lambda k: [c.text for c in conv.convert_raw(k, 5)]) if args.raw else \
                    (lambda k: [c.text for c in conv.convert_segmented(k, 5)])
                r = score(pairs, convert, raw=args.raw, top=5)
                print(json.dumps({"char_weight": cw, "weight": w, "penalty": penalty, "proposals": proposals,
                                  **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}}),
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
