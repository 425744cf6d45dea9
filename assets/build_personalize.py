"""Rebuild the general text personalization ships with: ``assets/personalize/{replay,general}.tsv``.

    python -m assets.build_personalize [--corpus ../shared/data/corpus] [--cache DIR] [--replay 6000] [--general 1000]

Both are clauses of 4–30 汉字 drawn at random (fixed seed) from the annotated corpus (``trainer.corpus``), with
the sources weighted as pretraining weights them (``trainer.batches.SOURCE_WEIGHTS``), never a line of an
eval set (``trainer.corpus.eval_lines``), and no clause in both files:

* ``replay.tsv`` is mixed into fine-tuning so the model keeps its general knowledge while it learns the user's;
* ``general.tsv`` is the check a fine-tuned model must pass (at most a point of sentence accuracy lost) before
  it replaces the current one. It is not ``../shared/data/eval``: those sets stay for reporting.

``manifest.json`` records the seed, the counts and the corpus pipeline's fingerprint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from trainer.batches import SOURCE_WEIGHTS
from trainer.corpus import DEFAULT_CORPUS, DEFAULT_EVAL_DIR, build_corpus, corpus_files, eval_lines, fingerprint

OUT = Path(__file__).resolve().parent / "personalize"
SEED = 20251123


def sample(corpus, n: int, rng: np.random.Generator, excluded: frozenset[str]) -> list[tuple[str, list[str]]]:
    lengths = np.diff(corpus.offsets)
    ok = np.nonzero((lengths >= 4) & (lengths <= 30))[0]
    weights = np.array([SOURCE_WEIGHTS.get(corpus.sources[s].split(".")[0], 1.0) for s in corpus.source[ok]])
    picked = rng.choice(ok, size=min(len(ok), 2 * n), replace=False, p=weights / weights.sum())
    out, seen = [], set(excluded)
    for i in picked:
        text, syllables = corpus.clause(int(i))
        if text not in seen:
            seen.add(text)
            out.append((text, syllables))
        if len(out) == n:
            break
    return out


def write_tsv(path: Path, lines: list[tuple[str, list[str]]]) -> None:
    path.write_text("".join(f"{t}\t{' '.join(s)}\n" for t, s in lines), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=None, help="corpus cache folder (see trainer.corpus)")
    ap.add_argument("--replay", type=int, default=6000)
    ap.add_argument("--general", type=int, default=1000)
    args = ap.parse_args(argv)
    corpus = build_corpus(args.corpus, args.cache)
    excluded = eval_lines(DEFAULT_EVAL_DIR)
    rng = np.random.default_rng(SEED)
    lines = sample(corpus, args.replay + args.general, rng, excluded)
    general, replay = lines[:args.general], lines[args.general:]
    OUT.mkdir(exist_ok=True)
    write_tsv(OUT / "replay.tsv", replay)
    write_tsv(OUT / "general.tsv", general)
    manifest = {"seed": SEED, "replay_lines": len(replay), "general_lines": len(general), "clause_chars": [4, 30],
                "source_weights": SOURCE_WEIGHTS, "corpus": str(args.corpus),
                "corpus_fingerprint": fingerprint(corpus_files(args.corpus), 2, 0, excluded)}
    (OUT / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(manifest, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
