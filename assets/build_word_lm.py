"""Rebuild ``assets/model/word_lm.safetensors``: the word n-gram the ranking adds beside the model and the character LM.

    python -m assets.build_word_lm [--corpus ../shared/data/corpus] [--cache DIR] [--order 2] [--min-count 3]

The vocabulary is ``assets/words.tsv`` + ``assets/chars.tsv`` + the word lists in ``trainer.word_ngram.EXTRA_LISTS``
(THUOCL, MIT; idioms from Chinese-Names-Corpus, Apache-2.0); the corpus is cut into those words
(``trainer.word_ngram``) and every clause counted except the held-out text ``assets/build_char_lm`` leaves out
(the general check, the personalize streams). Writes the LM and a ``WORD_LM.md`` note.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.lexicon import SHIPPED_MODEL_DIR

ASSETS = Path(__file__).resolve().parent
REPO = ASSETS.parent
OUT = SHIPPED_MODEL_DIR / "word_lm.safetensors"


def main(argv=None) -> int:
    from assets.build_char_lm import held_out_texts
    from assets.build_model import corpus_sha256
    from trainer import ngram, word_ngram
    from trainer.corpus import DEFAULT_CORPUS, build_corpus

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--order", type=int, default=2)
    ap.add_argument("--min-count", type=int, nargs="+", default=[3], help="count cutoffs, one per order from 2 on")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t0 = time.time()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    corpus = build_corpus(args.corpus, args.cache, log=log)
    exclude = held_out_texts()
    words, built = word_ngram.build(corpus, args.order, args.min_count, exclude, cache_dir=args.cache, log=log)
    seconds = round(time.time() - t0, 1)
    word_ngram.save(args.out, words, built, {"seconds": seconds, "held_out_texts": len(set(exclude))})
    return ngram.report_build(
        args.out, "WORD_LM.md", "The word LM (`word_lm.safetensors`)",
        f"Interpolated modified Kneser-Ney word {args.order}-gram over the corpus cut into lexicon words\n"
        "(`trainer/word_ngram.py`), added to each ranked candidate's score (`engine/lm/word_lm.py`).", "assets.build_word_lm", argv, [
            ("corpus", f"`{args.corpus}` — SHA-256 `{corpus_sha256(args.corpus)}`, {len(corpus.chars):,} characters"),
            ("vocabulary", f"{len(words) - 2:,} words and characters: `assets/words.tsv`, `assets/chars.tsv`, "
                           + ", ".join(sorted(set(word_ngram.EXTRA_LISTS.values())))),
            ("held out", f"{len(set(exclude)):,} distinct clauses (as `CHAR_LM.md`)"),
            ("pruning", f"count cutoffs for orders 2..{args.order}: {built['stats']['min_count']}"),
        ], built, seconds)

if __name__ == "__main__":
    raise SystemExit(main())
