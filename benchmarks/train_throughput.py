"""Training throughput per model size on the device at hand: tokens/s and model FLOPs utilisation (MFU).

The real training step of ``trainer.pretrain`` (autocast bf16 on CUDA and on CPUs where it is fast, else fp32; AdamW — fused on CUDA — gradient
clipping, the output restricted to each syllable's characters) on real batches from the test corpus
(``tests/data/tiny_corpus.txt``, ``--tokens`` characters a batch). FLOPs per trained token are counted from the
model's shapes (forward + backward = 3 × forward; matmuls only, attention included); the peak is measured here
with a large matmul in the same dtype (CPU), or taken from the GPU's datasheet (CUDA, bf16 dense), so
MFU = achieved FLOP/s ÷ peak.

    python -m benchmarks.train_throughput [--sizes tiny small base] [--device auto] [--steps 20] [--compile]

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from benchmarks._common import REPO, machine
from trainer.throughput import flops_per_token, peak_flops

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=4096, help="characters per batch")
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args(argv)

    from engine.lexicon import default_lexicon
    from engine.runtime.model import SIZES, ModelConfig, PinyinModel, allowed_matrix, char_vocab, input_tokens
    from trainer.batches import BatchConfig, BatchMaker
    from trainer.corpus import build_corpus
    from trainer.pretrain import autocast, pick_device

    device = pick_device(args.device)
    print(json.dumps({**machine(), "device": str(device), "torch": torch.__version__}), file=sys.stderr)
    lexicon = default_lexicon()
    chars = char_vocab(lexicon.characters)
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        corpus = build_corpus(REPO / "tests" / "data" / "tiny_corpus.txt", Path(cache), log=lambda m: None)
    batches = BatchMaker(corpus, chars, BatchConfig(tokens=args.tokens), seed=0)
    peak, peak_note = peak_flops(device)
    results = []
    for size in args.sizes:
        cfg = ModelConfig(n_inputs=len(input_tokens()), n_chars=len(chars), max_len=64, **SIZES[size])
        model = PinyinModel(cfg)
        model.set_allowed(allowed_matrix(chars, lexicon.readings))
        model.to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
        step_model = torch.compile(model, dynamic=True) if args.compile else model
        tokens, flops = 0, 0.0
        for i in range(args.warmup + args.steps):
            if i == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0, tokens, flops = time.perf_counter(), 0, 0.0
            x, y = batches.batch(i)
            n = int((y > 0).sum()) if i >= args.warmup else 0  # on the host copy: no device sync
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device):
                logits = step_model(x, y)
                loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1),
                                                         ignore_index=0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            tokens += n
            flops += n * flops_per_token(cfg, x.shape[1], y.shape[1])
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        tps, achieved = tokens / dt, flops / dt
        row = {"size": size, "params_m": round(model.num_params() / 1e6, 2), "tokens_per_s": round(tps),
               "achieved_tflops": round(achieved / 1e12, 4), "mfu": round(achieved / peak, 4)}
        results.append(row)
        print(f"{size:<6} {row['params_m']:6.2f} M params   {tps:10,.0f} tokens/s   "
              f"{achieved / 1e12:8.4f} TFLOP/s   MFU {achieved / peak:6.1%}")
    print(f"peak {peak / 1e12:.2f} TFLOP/s ({peak_note}); device {device}; {args.tokens} characters a batch; "
          f"{args.steps} timed steps")
    print(json.dumps({"device": str(device), "peak_tflops": round(peak / 1e12, 3), "peak": peak_note,
                      "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
