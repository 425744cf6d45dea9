"""``pinyin-ime pretrain``'s options, without torch: the app and the job registry check them up front
(a bad option fails at once with argparse's message, not later in a background process)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.runtime.model_spec import SIZES
from trainer.corpus import DEFAULT_CORPUS, DEFAULT_EVAL_DIR


def build_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="pinyin-ime pretrain", description="Pretrain the pinyin → 汉字 model.")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--max-steps", type=int, default=20000)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (and save) after this long; 0: no limit")
    ap.add_argument("--anneal-by-time", action="store_true",
                    help="the learning-rate schedule ends at --max-minutes or --max-steps, whichever comes first "
                         "(a run with a time budget ends annealed, however fast the machine is)")
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="start from the weights of a saved model (e.g. assets/model) with a fresh optimizer")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    ap.add_argument("--tokens", type=int, default=4096, help="target characters per batch (per process)")
    ap.add_argument("--accum", type=int, default=1, help="gradient accumulation steps")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--optimizer", choices=["adamw", "lamb"], default="adamw",
                    help="AdamW, or LAMB (Adam scaled per layer by its trust ratio; trainer/lamb.py)")
    ap.add_argument("--scheduled-sampling", type=float, default=0.0, metavar="P",
                    help="feed the decoder its own previous prediction instead of the reference at a rate rising "
                         "linearly from 0 to P over the run (one extra no-grad decoder pass a step)")
    ap.add_argument("--encoder-mlm", type=int, default=0, metavar="STEPS",
                    help="pretrain the encoder for the first STEPS steps as a masked language model over the pinyin "
                         "(masked syllables predicted from the rest; then seq2seq as usual)")
    ap.add_argument("--mlm-rate", type=float, default=0.15, help="syllables masked per input in --encoder-mlm steps")
    ap.add_argument("--encoder-contrastive", type=int, default=0, metavar="STEPS",
                    help="pretrain the encoder (and the character embeddings) for the first STEPS steps contrastively: "
                         "each input's pinyin must match its own text better than the batch's other texts (then "
                         "seq2seq as usual; with --encoder-mlm the two losses add while both are on)")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--no-emission-head", action="store_true",
                    help="a new model without the emission head (whole-line conversion then uses the beam search alone)")
    ap.add_argument("--head-only", action="store_true",
                    help="train only the emission head of the --init-from model; the rest of it stays as it is")
    ap.add_argument("--no-restrict", action="store_true", help="train with the full softmax, not restricted to readings")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the training objective (pays off on long runs: ~1 min to compile on a CPU)")
    ap.add_argument("--compile-backend", default="inductor",
                    help="torch.compile's backend (inductor: fused kernels; aot_eager: the same graphs run eagerly, "
                         "quick to compile, to check a run before a long one)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--eval-lines", type=int, default=500)
    ap.add_argument("--eval-file", type=Path, default=DEFAULT_EVAL_DIR / "dev.tsv")
    ap.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR,
                    help="the eval sets (*.tsv) whose lines are kept out of training")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--cache", type=Path, default=None, help="corpus cache folder")
    ap.add_argument("--max-lines", type=int, default=0, help="read at most N lines per corpus file (0: all)")
    ap.add_argument("--stop-file", type=Path, default=None,
                    help="checkpoint and exit as soon as this file exists (how background jobs pause and cancel)")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)
