"""Tune the corpus character LM's fusion on dev: weight × normalisation × beam, accuracy and latency.

    python -m benchmarks.fusion_sweep [--file ../shared/data/eval/dev.tsv] [--lines 1000] [--raw]
                                      [--lm assets/model/char_lm.safetensors] [--weights 0 0.5 0.8 1.0 1.2 1.5]
                                      [--normalize both|on|off] [--beams 5 8]

Whole-line conversion as ``pinyin-ime convert`` does it (int8 ONNX graphs, no reuse across keys), one JSON line
per setting: top-1/top-5 sentence and character accuracy, p50/p95 ms. Tune on dev only; report on test with
``benchmarks/accuracy.py``. ``engine/lm/char_lm.py`` holds the chosen ``WEIGHT`` and ``NORMALIZE``.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from benchmarks._common import dev_sweep_args, machine


def main(argv=None) -> int:
    from engine.lm.char_lm import FILE_NAME, CharLM
    from engine.ime.converter import Converter, ConverterSettings
    from trainer.evaluate import read_tsv, score

    ap = dev_sweep_args(__doc__.split("\n")[0])
    ap.add_argument("--lm", type=Path, default=None, help=f"default: the model's {FILE_NAME}")
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.5, 0.8, 1.0, 1.2, 1.5])
    ap.add_argument("--normalize", choices=["both", "on", "off"], default="off")
    ap.add_argument("--beams", type=int, nargs="+", default=[8])
    ap.add_argument("--gaps", type=float, nargs="+", default=[-1.0],
                    help="beam pruning: nats behind the best (negative: off)")
    args = ap.parse_args(argv)
    if "test" in args.file.name:
        print("note: tune on dev; test is for reporting", flush=True)
    pairs = read_tsv(args.file)[: args.lines or None]
    base = Converter.load(args.model, runtime="onnx", char_lm=False, settings=ConverterSettings(int8=True))
    t0 = time.perf_counter()
    lm = CharLM.load(args.lm or args.model / FILE_NAME, base.chars)
    print(json.dumps({"machine": machine(), "lm_load_s": round(time.perf_counter() - t0, 3),
                      "lm_mb_in_memory": round(lm.nbytes / 1e6, 1), "lines": len(pairs), "file": str(args.file)}))
    norms = {"both": [False, True], "on": [True], "off": [False]}[args.normalize]
    for w, norm, beam, gap in itertools.product(args.weights, norms, args.beams, args.gaps):
        if w == 0 and norm:
            continue
        lm.weight, lm.normalize = w, norm
        conv = base.with_settings(beam=beam, gap=gap if gap >= 0 else None).with_lms(char_lm=lm if w else None)
        convert = (lambda k: [c.text for c in conv.convert_raw(k, 5)]) if args.raw else \
            (lambda k: [c.text for c in conv.convert_segmented(k, 5)])
        r = score(pairs, convert, raw=args.raw, top=5)
        print(json.dumps({"weight": w, "normalize": norm, "beam": beam, "gap": conv.settings.gap,
                          **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
