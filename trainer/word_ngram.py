"""Corpus → a word n-gram language model over the lexicon's words (Kneser-Ney, backoff form), for ranking.

The character 4-gram (``trainer.ngram``) remembers the corpus's phrases four characters at a time; outside
them it knows little. A word model reaches further (a bigram of two-character words spans four characters,
a trigram six) and backs off to words, not characters, so 唱片店 is scored as 唱片 + 店 even where the corpus
never wrote the three together. Steps:

1. **Vocabulary**: every word of ``assets/words.tsv`` (jieba's list and pypinyin's phrases, with corpus
   counts), the extra word lists named in ``EXTRA_LISTS`` (THUOCL, idioms), and every character of
   ``assets/chars.tsv`` as a one-character word.
2. **Segmentation**: each corpus clause is cut into vocabulary words by the most probable segmentation
   under unigram frequencies (the lexicon's counts; jieba's method, without its HMM), in worker processes,
   cached per corpus like the annotation.
3. **Estimation**: ``trainer.ngram.estimate`` over the word-id sequence (the same interpolated modified KN as
   the character LM, with wider keys), saved as safetensors with the word list in its metadata.

``engine.lm.word_lm.WordLM`` reads it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from engine.runtime.model_spec import BOS

ASSETS = Path(__file__).resolve().parent.parent / "assets"
LEXICON_DIR = ASSETS.parent.parent / "shared" / "data" / "lexicon"
# word lists added to the vocabulary (source, licence): they have no readings; pypinyin gives them one
EXTRA_LISTS = {
    "thuocl_it.tsv": "THUOCL (MIT)", "thuocl_finance.tsv": "THUOCL (MIT)", "thuocl_idiom.tsv": "THUOCL (MIT)",
    "thuocl_place.tsv": "THUOCL (MIT)", "thuocl_food.tsv": "THUOCL (MIT)", "thuocl_medical.tsv": "THUOCL (MIT)",
    "thuocl_law.tsv": "THUOCL (MIT)", "thuocl_animal.tsv": "THUOCL (MIT)", "thuocl_car.tsv": "THUOCL (MIT)",
    "thuocl_history_people.tsv": "THUOCL (MIT)", "idioms_namemoe.tsv": "Chinese-Names-Corpus idioms (Apache-2.0)",
}
MAX_WORD = 8
WORD_BITS = 19  # bits per word id: up to 524,288 words; three fit the LM's 58-bit keys


def vocabulary(words_tsv: Path = ASSETS / "words.tsv", chars_tsv: Path = ASSETS / "chars.tsv",
               extra_dir: Path | None = LEXICON_DIR) -> tuple[list[str], dict[str, int]]:
    """(the word list: ``<pad>``, ``<bos>``, then characters and words, code-point sorted; each word's count
    for segmentation: the lexicon's corpus count, 1 for listed words the corpus never has)."""
    counts: dict[str, int] = {}
    for line in Path(chars_tsv).read_text(encoding="utf-8").splitlines():
        ch, _, n = line.split("\t")
        counts[ch] = counts.get(ch, 0) + int(n)
    charset = set(counts)
    for line in Path(words_tsv).read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        for w, n in zip(parts[2::2], parts[3::2]):
            counts[w] = max(counts.get(w, 0), int(n))
    if extra_dir is not None and Path(extra_dir).is_dir():
        for name in EXTRA_LISTS:
            path = Path(extra_dir) / name
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                w = line.split("\t", 1)[0]
                if 2 <= len(w) <= MAX_WORD and all(c in charset for c in w):
                    counts.setdefault(w, 0)
    words = ["<pad>", "<bos>"] + sorted(counts)
    return words, counts


def lexicon_words(words_tsv: Path = ASSETS / "words.tsv") -> set[str]:
    """The words of the lexicon (``words.tsv``)."""
    out: set[str] = set()
    for line in Path(words_tsv).read_text(encoding="utf-8").splitlines():
        out.update(line.split("\t")[2::2])
    return out


def _segment_part(args) -> np.ndarray:
    """Word ids of a slice of the corpus: ``<bos>`` then the clause's words, clause after clause."""
    cps, offsets, index, logp, prefixes, unknown = args
    text = "".join(map(chr, cps.tolist()))
    base = int(offsets[0])
    out: list[int] = []
    get, lp = index.get, logp.get
    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        a -= base
        b -= base
        n = b - a
        best = [0.0] + [-math.inf] * n
        back = [0] * (n + 1)
        for i in range(n):
            here = best[i]
            start = a + i
            for j in range(i + 1, min(n, i + MAX_WORD) + 1):
                piece = text[start:a + j]
                v = lp(piece)
                if v is None:
                    if j == i + 1:
                        v = unknown  # a character outside the vocabulary: still one token
                    elif piece not in prefixes:
                        break
                    else:
                        continue
                s = here + v
                if s > best[j]:
                    best[j], back[j] = s, i
        cuts = []
        j = n
        while j > 0:
            cuts.append((back[j], j))
            j = back[j]
        out.append(BOS)
        out.extend(get(text[a + i:a + j], 0) for i, j in reversed(cuts))
    return np.array(out, dtype=np.int64)


def segment(corpus, words: list[str], counts: dict[str, int], workers: int | None = None, log=print) -> np.ndarray:
    """The corpus as one word-id sequence, ``<bos>`` before each clause (unknown characters → 0)."""
    index = {w: i for i, w in enumerate(words)}
    total = float(sum(counts.values())) + len(counts)
    logp = {w: math.log((n + 0.5) / total) for w, n in counts.items()}
    prefixes = {w[:k] for w in counts if len(w) > 2 for k in range(2, len(w))}
    unknown = math.log(0.5 / total)
    workers = workers or os.cpu_count() or 1
    n = len(corpus)
    parts = max(1, workers * 4)
    bounds = np.linspace(0, n, parts + 1).astype(int)
    jobs = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if hi <= lo:
            continue
        a, b = int(corpus.offsets[lo]), int(corpus.offsets[hi])
        jobs.append((corpus.chars[a:b], corpus.offsets[lo:hi + 1], index, logp, prefixes, unknown))
    t0 = time.time()
    if workers == 1:
        pieces = [_segment_part(j) for j in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            pieces = list(pool.map(_segment_part, jobs))
    seq = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    log(f"word_ngram: segmented {n:,} clauses into {int((seq > 1).sum()):,} words in {time.time() - t0:.0f} s")
    return seq


def cached_segmentation(corpus, words, counts, cache_dir: Path | None = None, workers=None, log=print) -> tuple[np.ndarray, np.ndarray]:
    """``segment`` cached on disk (numpy, no pickle), keyed by the corpus and the vocabulary; with each
    clause's start in the sequence (its ``<bos>``), so shards can be left out without segmenting again."""
    from trainer.corpus import default_cache_dir

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(corpus.offsets).tobytes())
    h.update(np.ascontiguousarray(corpus.chars[:: max(1, len(corpus.chars) // 100_000)]).tobytes())
    h.update(json.dumps([words, sorted(counts.items())], ensure_ascii=False).encode())
    key = h.hexdigest()[:16]
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir() / "corpus"
    path = cache_dir / f"words-{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            log(f"word_ngram: loaded the segmentation from {path}")
            return z["seq"], z["starts"]
    seq = segment(corpus, words, counts, workers, log)
    starts = np.flatnonzero(seq == BOS)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, seq=seq, starts=starts)
    os.replace(tmp, path)
    return seq, starts


def keep_clauses(seq: np.ndarray, starts: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The clauses ``keep`` marks (one bool per clause) of a segmented sequence."""
    ends = np.append(starts[1:], len(seq))
    mask = np.repeat(keep, ends - starts)
    return seq[mask]


def build(corpus, order: int = 2, min_count=2, exclude=(), exclude_sources=(), cache_dir=None, workers=None,
          log=print, vocab=None) -> tuple[list[str], dict]:
    """(word list, the built LM as ``trainer.ngram.save`` takes it), leaving out clauses equal to one of
    ``exclude`` and the shards ``exclude_sources``."""
    from trainer import ngram

    words, counts = vocab or vocabulary()
    index_of = {w: i for i, w in enumerate(words)} if vocab is None else {}
    seq, starts = cached_segmentation(corpus, words, counts, cache_dir, workers, log)
    if len(starts) != len(corpus):
        raise ValueError(f"segmentation has {len(starts):,} clauses, the corpus {len(corpus):,}")
    keep = ~(ngram.clauses_of_sources(corpus, exclude_sources) | ngram.clauses_equal_to(corpus, exclude))
    if not keep.all():
        seq = keep_clauses(seq, starts, keep)
        log(f"word_ngram: left out {int((~keep).sum()):,} clauses")
    # ids for the words the segmented text holds and for every word of the lexicon (``words.tsv``: what the
    # word lattice proposes); a lexicon word the text never holds gets the unigram's share for the unseen, but
    # still counts as one word when a candidate is segmented (one unseen word scores better than its
    # characters one by one: measured, dropping them cost 0.6 points on held-out shards). The extra lists'
    # words the text never holds are left out: a smaller table and list.
    listed = np.array(sorted(index_of[w] for w in lexicon_words() if w in index_of), dtype=np.int64) \
        if vocab is None else np.zeros(0, dtype=np.int64)
    seen = np.union1d(np.unique(seq), listed)
    seen = seen[seen >= 2]
    remap = np.zeros(len(words), dtype=np.int64)
    remap[BOS] = BOS
    remap[seen] = np.arange(2, 2 + len(seen))
    words = words[:2] + [words[i] for i in seen.tolist()]
    built = ngram.estimate(remap[seq], len(words), order, min_count, log=log, bits=WORD_BITS)
    return words, built


def save(path: Path, words: list[str], built: dict, extra: dict | None = None) -> None:
    from trainer import ngram

    ngram.save(path, words, built, {"kind": "words", **(extra or {})})


def main(argv=None) -> int:
    import argparse

    from trainer.corpus import DEFAULT_CORPUS, build_corpus

    ap = argparse.ArgumentParser(prog="python -m trainer.word_ngram", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--order", type=int, default=2)
    ap.add_argument("--min-count", type=int, nargs="+", default=[2],
                    help="count cutoffs for orders 2.. (one number: that for every order ≥ 2)")
    ap.add_argument("--without", nargs="*", default=[], help="leave out these shards")
    args = ap.parse_args(argv)
    t0 = time.time()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    corpus = build_corpus(args.corpus, args.cache, log=log)
    words, built = build(corpus, args.order, args.min_count, exclude_sources=args.without, cache_dir=args.cache,
                         log=log)
    save(args.out, words, built, {"seconds": round(time.time() - t0, 1), "without": args.without})
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, **built["stats"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
