"""Corpus → a character n-gram language model (interpolated modified Kneser-Ney), for shallow fusion.

The Transformer is small and has seen the corpus less than once; a count-based model remembers every phrase
the corpus holds at the cost of a table lookup. ``engine.lm.char_lm.CharLM`` mixes its log-probabilities into
each step of the beam search; this module counts and estimates it.

Everything is numpy over the annotated corpus (``trainer.corpus``): each clause becomes ``<bos> c1 … cn`` in
the output vocabulary's ids, an n-gram of order k is one int64 key (``BITS`` bits per token, the predicted
token lowest, so all continuations of a context are one sorted run), counts come from ``np.unique``.

Estimation (Chen & Goodman 1998, interpolated, three discounts per order): the highest order uses raw counts,
lower orders continuation counts (how many different tokens precede the n-gram; n-grams starting with
``<bos>`` keep raw counts), and

    P_k(w | h) = (a(hw) − D_k(a(hw))) / a(h·) + γ_k(h) · P_{k−1}(w | h'),   γ_k(h) = Σ_j D_k,j N_j(h·) / a(h·)

Stored in backoff form, as ARPA files are: each kept n-gram has its full interpolated log P_k(w | h) and, as a
context of the next order, its log γ (an n-gram not kept costs γ_k(h) · P_{k−1}(w | h')). N-grams seen fewer
than the cutoff for their order are pruned after estimation, which keeps the table small; a context that is
not itself kept backs off with weight 1. Written as safetensors (int64 keys, int32 for bigrams, uint8
log-probabilities and weights on a linear scale) with the character list in the metadata, so the model that
uses it need not share its vocabulary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from engine.lm.char_lm import FORMAT
from engine.lexicon import SHIPPED_MODEL_DIR
from engine.runtime.model_spec import BOS

BITS = 13  # bits per token in a key: vocabularies up to 8,192 ids (4 tokens fit an int64)


def token_ids(corpus, chars: list[str]) -> np.ndarray:
    """The corpus as one id sequence with ``BOS`` before each clause; code points outside ``chars`` → 0."""
    code = np.array([ord(c) if len(c) == 1 else -1 for c in chars], dtype=np.int64)
    order = np.argsort(code)
    sorted_code = code[order]
    cps = corpus.chars.astype(np.int64)
    pos = np.clip(np.searchsorted(sorted_code, cps), 0, len(code) - 1)
    ids = np.where(sorted_code[pos] == cps, order[pos], 0)
    n_clauses = len(corpus.offsets) - 1
    seq = np.empty(len(ids) + n_clauses, dtype=np.int64)
    bos_at = corpus.offsets[:-1] + np.arange(n_clauses)
    mask = np.ones(len(seq), dtype=bool)
    mask[bos_at] = False
    seq[bos_at] = BOS
    seq[mask] = ids
    return seq


def ngram_keys(seq: np.ndarray, order: int, bits: int = BITS) -> np.ndarray:
    """Keys of every n-gram of ``order`` in ``seq`` that stays inside one clause (after an unknown character
    a new run starts) and does not predict ``<bos>``."""
    n = len(seq)
    idx = np.arange(n)
    start = (seq == BOS) | (seq == 0)
    run_start = np.maximum.accumulate(np.where(start, idx, 0))
    # a run begins at <bos> (which may be in the n-gram) or just after an unknown character (which may not)
    first_ok = np.where(seq[run_start] == 0, run_start + 1, run_start)
    ok = (idx - first_ok + 1 >= order) & (seq != BOS) & (seq != 0)
    ends = idx[ok]
    key = np.zeros(len(ends), dtype=np.int64)
    for j in range(order):
        key = (key << bits) | seq[ends - (order - 1) + j]
    return key


def _discounts(adjusted: np.ndarray) -> np.ndarray:
    """Modified-KN discounts D1, D2, D3+ from the counts of counts."""
    n = [np.count_nonzero(adjusted == i) for i in (1, 2, 3, 4)]
    if min(n) == 0:
        return np.array([0.5, 1.0, 1.5])
    y = n[0] / (n[0] + 2 * n[1])
    d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    return np.clip(d, 0.05, np.array([1.0, 2.0, 3.0]))


def quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-probabilities as uint8 on a linear scale (KenLM's q8 idea): (codes, [low, step]); 255 steps over
    the array's range (≈0.05 nats for a 4-gram table), which changes no ranking that matters."""
    lo, hi = (float(x.min()), float(x.max())) if len(x) else (0.0, 0.0)
    step = (hi - lo) / 255 or 1.0
    codes = np.clip(np.rint((x - lo) / step), 0, 255).astype(np.uint8)
    return codes, np.array([lo, step], dtype=np.float32)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray, default: float) -> np.ndarray:
    pos = np.clip(np.searchsorted(keys, query), 0, max(len(keys) - 1, 0))
    hit = keys[pos] == query if len(keys) else np.zeros(len(query), dtype=bool)
    return np.where(hit, values[pos] if len(keys) else default, default)


def estimate(seq: np.ndarray, vocab_size: int, order: int = 4, min_count=2, log=print, bits: int = BITS) -> dict:
    """Count and estimate; returns the tensors ``engine.lm.char_lm`` reads (``keys{k}``, ``logp{k}`` and its
    ``_scale`` for k = 1..order, ``bow{k}`` and its ``_scale`` below the top order, ``bos_bow``) and stats.
    ``min_count``: an n-gram of order k ≥ 2 is kept when seen at least this often (one number, alone or in a
    list, for orders ≥ 3 with bigrams all kept; or a list with one count per order from 2 on). A context keeps
    its backoff weight only while it is itself a kept n-gram (ARPA's rule)."""
    if not np.isscalar(min_count) and len(min_count) == 1 and order > 2:
        min_count = min_count[0]
    cutoffs = ([1] + [int(min_count)] * (order - 2)) if np.isscalar(min_count) else [int(c) for c in min_count]
    if len(cutoffs) != order - 1:
        raise ValueError(f"need {order - 1} count cutoffs (orders 2..{order}), got {cutoffs}")
    if vocab_size > (1 << bits) or order * bits > 63:
        raise ValueError(f"{vocab_size} ids × order {order} do not fit {bits}-bit tokens in an int64 key")
    uniq, raw = {}, {}
    for k in range(1, order + 1):
        t0 = time.time()
        uniq[k], raw[k] = np.unique(ngram_keys(seq, k, bits), return_counts=True)
        log(f"ngram: order {k}: {len(uniq[k]):,} distinct ({time.time() - t0:.1f} s)")
    uniform = 1.0 / (vocab_size - 2)  # <pad> and <bos> are never predicted
    tensors, stats = {}, {"order": order, "min_count": cutoffs, "distinct": {}, "kept": {}, "discounts": {}}
    lower_p = None  # (keys, P) of order k-1, unpruned
    kept_keys, kept_logp, contexts = {}, {}, {}
    for k in range(1, order + 1):
        keys, counts = uniq[k], raw[k].astype(np.float64)
        if k < order:  # continuation counts: distinct left extensions among the (k+1)-grams
            suffix = uniq[k + 1] & ((1 << (bits * k)) - 1)
            s_keys, s_counts = np.unique(suffix, return_counts=True)
            cont = _lookup(s_keys, s_counts.astype(np.float64), keys, 0.0)
            starts_bos = (keys >> (bits * (k - 1))) == BOS if k > 1 else np.zeros(len(keys), dtype=bool)
            adjusted = np.where(starts_bos | (cont == 0), counts, cont)
        else:
            adjusted = counts
        d = _discounts(adjusted)
        stats["discounts"][k] = [round(float(x), 4) for x in d]
        disc = d[np.minimum(adjusted, 3).astype(int) - 1]
        ctx = keys >> bits
        # contexts are sorted runs: per-context totals and discount mass
        c_keys, c_inv = np.unique(ctx, return_inverse=True)
        total = np.bincount(c_inv, weights=adjusted)
        mass = np.bincount(c_inv, weights=disc)
        gamma = mass / total
        alpha = (adjusted - disc) / total[c_inv]
        if k == 1:
            # every character gets a unigram, seen or not
            all_keys = np.arange(2, vocab_size, dtype=np.int64)
            p_all = _lookup(keys, alpha, all_keys, 0.0) + gamma[0] * uniform
            keys, p, kept = all_keys, p_all, np.ones(len(all_keys), dtype=bool)
        else:
            lk, lp = lower_p
            lower = _lookup(lk, lp, keys & ((1 << (bits * (k - 1))) - 1), uniform)
            p = alpha + gamma[c_inv] * lower
            kept = raw[k] >= cutoffs[k - 2]
        lower_p = (keys, p)
        kept_keys[k], kept_logp[k], contexts[k] = keys[kept], np.log(p[kept]), (c_keys, np.log(gamma))
        stats["distinct"][k] = int(len(uniq[k]))
        stats["kept"][k] = int(kept.sum())
        log(f"ngram: order {k}: kept {int(kept.sum()):,}, discounts {stats['discounts'][k]}")
    for k in range(1, order + 1):
        # int32 keys where they fit (bigrams): a smaller file; the engine widens them at load
        tensors[f"keys{k}"] = kept_keys[k].astype(np.int32) if bits * k < 31 else kept_keys[k]
        tensors[f"logp{k}"], tensors[f"logp{k}_scale"] = quantize(kept_logp[k])
        if k < order:  # each n-gram's backoff weight as the context of the next order (0 when it is none)
            c_keys, log_gamma = contexts[k + 1]
            tensors[f"bow{k}"], tensors[f"bow{k}_scale"] = quantize(_lookup(c_keys, log_gamma, kept_keys[k], 0.0))
            if k == 1:  # <bos> is a context, never a unigram
                tensors["bos_bow"] = _lookup(c_keys, log_gamma, np.array([BOS]), 0.0).astype(np.float32)
    return {"tensors": tensors, "stats": stats, "bits": bits}


def clause_hashes(cps: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of each clause ``cps[offsets[i]:offsets[i+1]]`` (vectorised)."""
    lengths = np.diff(offsets)
    if len(cps) == 0:
        return np.zeros(len(lengths), dtype=np.uint64)
    pos = np.arange(len(cps)) - np.repeat(offsets[:-1], lengths)
    powers = np.cumprod(np.full(int(lengths.max()) + 1, 1_000_003, dtype=np.uint64), dtype=np.uint64)
    with np.errstate(over="ignore"):
        terms = cps.astype(np.uint64) * powers[pos]
        sums = np.add.reduceat(terms, offsets[:-1].clip(max=len(cps) - 1)) if len(lengths) else terms[:0]
        return np.where(lengths > 0, sums + lengths.astype(np.uint64), 0).astype(np.uint64)


def _keep_clauses(offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the clauses ``keep`` marks (one bool per clause): which characters they hold, and their offsets."""
    lengths = np.diff(offsets)
    kept = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(lengths[keep], out=kept[1:])
    return np.repeat(keep, lengths), kept


def clauses_equal_to(corpus, texts) -> np.ndarray:
    """One bool per clause of ``corpus``: whether it equals one of ``texts``."""
    texts = [t for t in set(texts) if t]
    if not texts:
        return np.zeros(len(corpus.offsets) - 1, dtype=bool)
    cps = np.array([ord(c) for t in texts for c in t], dtype=np.uint32)
    offs = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=offs[1:])
    return np.isin(clause_hashes(corpus.chars, corpus.offsets), clause_hashes(cps, offs))


def clauses_of_sources(corpus, names) -> np.ndarray:
    """One bool per clause of ``corpus``: whether it comes from one of the shards ``names`` (file names without
    their suffixes)."""
    names = set(names)
    return np.isin(corpus.source, [i for i, s in enumerate(corpus.sources) if s.split(".")[0] in names])


def without(corpus, texts) -> tuple[np.ndarray, np.ndarray, int]:
    """(code points, offsets) of the corpus with every clause equal to one of ``texts`` left out, and how
    many were left out."""
    drop = clauses_equal_to(corpus, texts)
    if not drop.any():
        return corpus.chars, corpus.offsets, 0
    keep_chars, offsets = _keep_clauses(corpus.offsets, ~drop)
    return corpus.chars[keep_chars], offsets, int(drop.sum())


def without_sources(corpus, names):
    """The corpus without the clauses of the shards ``names`` (file names without their suffixes)."""
    from trainer.corpus import Corpus

    drop = clauses_of_sources(corpus, names)
    if not drop.any():
        return corpus
    keep = ~drop
    chars_keep, offsets = _keep_clauses(corpus.offsets, keep)
    return Corpus(corpus.chars[chars_keep], corpus.syls[chars_keep], offsets, corpus.source[keep], corpus.sources)


def build(chars: list[str], corpus, order: int = 4, min_count=2, exclude=(), exclude_sources=(),
          log=print) -> dict:
    """The LM of ``corpus`` (a ``trainer.corpus.Corpus``) over the output vocabulary ``chars``; clauses equal
    to one of ``exclude`` are left out (held-out text), and so are whole shards named in ``exclude_sources``."""
    if exclude_sources:
        before = len(corpus.chars)
        corpus = without_sources(corpus, exclude_sources)
        log(f"ngram: left out shards {sorted(exclude_sources)} ({before - len(corpus.chars):,} characters)")
    cps, offsets, dropped = without(corpus, exclude)
    if dropped:
        log(f"ngram: left out {dropped:,} clauses (held out)")
    seq = token_ids(_View(cps, offsets), chars)
    log(f"ngram: {len(seq):,} tokens ({int((seq == 0).sum()):,} unknown)")
    return estimate(seq, len(chars), order, min_count, log)


class _View:
    def __init__(self, chars, offsets):
        self.chars, self.offsets = chars, offsets


def save(path: Path, chars: list[str], built: dict, extra: dict | None = None) -> None:
    """Write atomically: tensors in safetensors, characters and stats in its metadata."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "bits": str(built.get("bits", BITS)), "order": str(built["stats"]["order"]),
            "chars": json.dumps(chars, ensure_ascii=False), "stats": json.dumps({**built["stats"], **(extra or {})})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(built["tensors"], str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)  # safetensors writes 0600; a shipped or installed LM is read by whoever runs the app
    os.replace(tmp, path)


def write_note(lm_path: Path, note: str, title: str, intro: str, script: str, argv, rows: list[tuple[str, str]],
               built: dict, seconds: float) -> None:
    """A build note ``note`` beside the LM saved at ``lm_path`` (``CHAR_LM.md``, ``WORD_LM.md``): the command that
    ran ``script`` with ``argv`` and the commit, ``rows`` of (what, value), the size and time, then the per-order
    table of ``built``'s stats."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    rows = [("command", f"`python -m {script} {' '.join(argv)}` (at commit {commit})"), *rows,
            ("size", f"{Path(lm_path).stat().st_size / 1e6:.1f} MB"), ("build time", f"{seconds} s on this machine")]
    path = Path(lm_path).parent / note
    st = built["stats"]
    orders = "\n".join(f"| {k} | {st['distinct'][k]:,} | {st['kept'][k]:,} | {st['discounts'][k]} |" for k in st["kept"])
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    Path(path).write_text(f"# {title}\n\n{intro}\n\n| | |\n|---|---|\n{table}\n\n"
                          f"| order | distinct | kept | discounts D1, D2, D3+ |\n|---|---|---|---|\n{orders}\n", encoding="utf-8")


def report_build(lm_path: Path, note: str, title: str, intro: str, script: str, argv, rows: list[tuple[str, str]],
                 built: dict, seconds: float) -> int:
    """What a build script ends with: the note (``write_note``; ``argv`` None: the command line's) and a JSON line
    with the file's size, the time and ``built``'s stats on stdout. Returns the exit status, 0."""
    import json
    import sys

    write_note(lm_path, note, title, intro, script, argv if argv is not None else sys.argv[1:], rows, built, seconds)
    print(json.dumps({"out": str(lm_path), "bytes": Path(lm_path).stat().st_size, "seconds": seconds, **built["stats"]}))
    return 0


def main(argv=None) -> int:
    from engine.runtime.model_spec import read_config
    from trainer.corpus import DEFAULT_CORPUS, build_corpus

    ap = argparse.ArgumentParser(prog="python -m trainer.ngram", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL_DIR,
                    help="the model whose character list the LM uses")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--min-count", type=int, nargs="+", default=[2],
                    help="one cutoff for orders ≥ 3, or one per order from 2 on")
    ap.add_argument("--exclude", type=Path, nargs="*", default=[],
                    help="汉字<TAB>pinyin files whose lines are left out (held-out benchmark text)")
    args = ap.parse_args(argv)
    t0 = time.time()
    chars = read_config(args.model)["chars"]
    corpus = build_corpus(args.corpus, args.cache, log=lambda m: print(m, file=sys.stderr))
    exclude = [line.split("\t", 1)[0] for f in args.exclude for line in f.read_text(encoding="utf-8").splitlines()]
    built = build(chars, corpus, args.order, args.min_count, exclude, log=lambda m: print(m, file=sys.stderr))
    save(args.out, chars, built, {"seconds": round(time.time() - t0, 1), "corpus_chars": int(len(corpus.chars))})
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, **built["stats"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
