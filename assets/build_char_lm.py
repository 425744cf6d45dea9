"""Rebuild ``assets/model/char_lm.safetensors``: the corpus character 4-gram fused into the model's beam search.

    python -m assets.build_char_lm [--corpus ../shared/data/corpus] [--cache DIR] [--order 4] [--min-count 2]

Counts every clause of the annotated corpus (``trainer.corpus``; eval lines are never in it) except held-out
text, so the numbers measured on it stay honest:

* ``assets/personalize/general.tsv``, the general check a fine-tuned model must pass;
* the streams ``benchmarks/personalize.py`` replays as one user's typing (its default shards, first + later
  lines), so that benchmark measures learning, not the LM's memory of the stream.

Writes the LM with its stats and a ``CHAR_LM.md`` note (command, corpus checksum, sizes, time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.lexicon import SHIPPED_MODEL_DIR

ASSETS = Path(__file__).resolve().parent
REPO = ASSETS.parent
OUT = SHIPPED_MODEL_DIR / "char_lm.safetensors"


def held_out_texts(first: int = 1500, later: int = 500) -> list[str]:
    sys.path.insert(0, str(REPO))
    from trainer.held_out import STREAMS, make_stream
    from trainer.evaluate import read_tsv
    from trainer.user_text import GENERAL_FILE

    texts = [t for t, _ in read_tsv(GENERAL_FILE)]
    for name in STREAMS:
        texts += [t for t, _ in make_stream(name, first + later)]
    return texts


def main(argv=None) -> int:
    from assets.build_model import corpus_sha256
    from engine.runtime.model_spec import read_config
    from trainer import ngram
    from trainer.corpus import DEFAULT_CORPUS, build_corpus

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--min-count", type=int, nargs="+", default=[2],
                    help="one cutoff for orders ≥ 3, or one per order from 2 on")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t0 = time.time()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    chars = read_config(SHIPPED_MODEL_DIR)["chars"]
    corpus = build_corpus(args.corpus, args.cache, log=log)
    exclude = held_out_texts()
    built = ngram.build(chars, corpus, args.order, args.min_count, exclude, log=log)
    seconds = round(time.time() - t0, 1)
    sha = corpus_sha256(args.corpus)
    ngram.save(args.out, chars, built, {"seconds": seconds, "corpus_sha256": sha, "held_out_texts": len(set(exclude))})
    return ngram.report_build(
        args.out, "CHAR_LM.md", "The corpus character LM (`char_lm.safetensors`)",
        f"Interpolated modified Kneser-Ney character {args.order}-gram over the annotated corpus, fused into every step\n"
        "of the model's searches (`engine/lm/char_lm.py`; its weight tuned on held-out shards).", "assets.build_char_lm", argv, [
            ("corpus", f"`{args.corpus}` — SHA-256 over names and bytes `{sha}`, {len(corpus.chars):,} characters"),
            ("held out", f"{len(set(exclude)):,} distinct clauses: `assets/personalize/general.tsv` and the "
                         "`benchmarks/personalize.py` streams"),
            ("pruning", f"count cutoffs for orders 2..{args.order}: {built['stats']['min_count']} (an n-gram seen fewer "
                        "times is left out)"),
        ], built, seconds)

if __name__ == "__main__":
    raise SystemExit(main())
