"""Tune whole-line conversion's two passes on dev: width × keep × ranked × head weight, accuracy and latency.

    python -m benchmarks.two_pass_sweep [--file ../shared/data/eval/dev.tsv] [--lines 1000] [--raw]
                                        [--widths 16] [--keeps 40] [--ranked 8] [--head-weights 0.3]
                                        [--beam-search]

Whole-line conversion as ``pinyin-ime convert`` does it (int8 ONNX graphs, the model's corpus LM), one JSON
line per setting: top-1/top-5 sentence and character accuracy, p50/p95 ms. ``--beam-search`` adds the
decoder's beam search (what typing runs) as the baseline. Tune on dev only; report on test with
``benchmarks/accuracy.py``. ``engine/runtime/two_pass.py`` holds the chosen values.
"""

from __future__ import annotations

import itertools
import json

from benchmarks._common import dev_sweep_args, machine


def main(argv=None) -> int:
    from engine.runtime import two_pass
    from engine.ime.converter import Converter, ConverterSettings
    from engine.runtime.two_pass import TwoPassSettings
    from trainer.evaluate import read_tsv, score

    ap = dev_sweep_args(__doc__.split("\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[two_pass.WIDTH])
    ap.add_argument("--keeps", type=int, nargs="+", default=[two_pass.KEEP])
    ap.add_argument("--ranked", type=int, nargs="+", default=[two_pass.RANKED])
    ap.add_argument("--head-weights", type=float, nargs="+", default=[two_pass.HEAD_WEIGHT])
    ap.add_argument("--head-rank-weights", type=float, nargs="+", default=[two_pass.HEAD_RANK_WEIGHT],
                    help="the head's log-probability of each proposal in the rank pass")
    ap.add_argument("--beam-search", action="store_true", help="also score the decoder's beam search")
    args = ap.parse_args(argv)
    if "test" in args.file.name:
        print("note: tune on dev; test is for reporting", flush=True)
    pairs = read_tsv(args.file)[: args.lines or None]
    base = Converter.load(args.model, runtime="onnx", settings=ConverterSettings(int8=True))
    if not base.uses_two_pass:
        raise SystemExit(f"{args.model}: this model has no emission head, so it has no two-pass conversion")
    conv = base
    print(json.dumps({"machine": machine(), "lines": len(pairs), "file": str(args.file), "model": str(args.model)}))
    convert = (lambda k: [c.text for c in conv.convert_raw(k, 5)]) if args.raw else \
        (lambda k: [c.text for c in conv.convert_segmented(k, 5)])
    conv.convert_segmented("ni hao", 1)  # sessions created before the timings
    settings = [dict(width=w, keep=k, ranked=r, head_weight=h, head_rank_weight=hr)
                for w, k, r, h, hr in itertools.product(args.widths, args.keeps, args.ranked, args.head_weights,
                                                        args.head_rank_weights)]
    for setting in ([None] if args.beam_search else []) + settings:
        conv = base.with_settings(two_pass=None if setting is None else TwoPassSettings(**setting))
        r = score(pairs, convert, raw=args.raw, top=5)
        print(json.dumps({"search": "beam" if setting is None else "two-pass", **(setting or {"beam": conv.settings.beam}),
                          **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
