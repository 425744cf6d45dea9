"""Whole-line conversion in two passes: the emission head and the LM propose, the decoder ranks.

The decoder's beam search (``engine.runtime.decoder``) runs one decoder step per syllable for the whole beam: on a
laptop CPU about a millisecond a syllable, most of it fixed per-call cost and weights read again every step,
so a 19-syllable line took 24 ms. Here the decoder runs once per line instead:

1. **Propose.** A beam search over positions with no decoder: each character scores
   ``head_weight · log p_head(c | the whole pinyin input)`` (the model's emission head, one matrix product
   per position) plus the prior the decoder's beam search adds (the corpus LM, with the user's n-gram cache
   mixed in), over each position's ``keep`` likeliest characters by the head, ``width`` hypotheses wide.
2. **Rank.** The decoder scores the best ``ranked`` proposals in one teacher-forced call
   (``backend.rank``), and they are ordered by ``log p_model(text | pinyin) + prior(text)``: the objective the
   beam search maximises, so this pass only reorders what the first found (``head_rank_weight`` can add the
   emission head's own log-probability of each proposal: the non-autoregressive view of the same input).

The widths are tuned on dev.tsv (``benchmarks/two_pass_sweep.py``); the decoder's beam search stays
for typing, where each keystroke resumes an earlier key's beam.

With word proposals (``engine.runtime.word_proposals``) and more than one core, the decoder's call for the first
pass's proposals runs on a second thread (``backend.rank_later``: ONNX Runtime holds no Python lock while it
computes) while this thread builds the word lattice's proposals, which are ranked in a second, smaller call
while this thread computes the word LM's share of every proposal (``text_prior``): the Python work and the
decoder's matrix work overlap instead of following each other (``OVERLAP``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from engine.runtime import decoder
# Tuned on the first 1,000 lines of dev.tsv (benchmarks/two_pass_sweep.py; the beam search there: 60.0% top-1,
# 72.9% top-5, 89.02% characters, p95 29 ms): this setting 60.5% / 74.0% / 89.17%, p95 11.9 ms. Width 12 or
# 16, keep 16 or 40, head weight 0.3–0.8 were all within 0.6 points of it on top-1; weight 1.0 was 0.7 worse;
# ranking 12 proposals instead of 8 gained nothing and cost ~20% more time.
# Since the word lattice proposes too (2026-12-07, model of 69.5 M characters; the three tuning shards with LMs
# without the shard, 500 lines each, and dev's first 1,000 lines): keep 24 → 12 and ranked 8 → 6 (with the
# lattice's TOP 4 → 3) moved top-1 60.87 → 60.87% on the shards (dev 68.0 → 68.3%) and top-5 79.13 → 78.80%
# (dev 80.8 → 80.6%), for a third fewer decoder rows: the decoder's call, about 0.55 ms per proposal on a
# 20-syllable line, is the longest path of a whole line. Width 8 or 12 lost 1.3–2.6 points of top-5.
WIDTH = 20  # hypotheses kept per position in the first pass
# A long line's first pass keeps fewer: width = min(WIDTH, max(MIN_WIDTH, BUDGET // positions)), so 20 up to 12
# syllables, 12 at 20, 10 from 24 on. The first pass is the longest part of a long line (about 0.3 ms a
# position at width 20), and long lines are the slowest tenth. Measured 2026-12-07 with the word LM's per-word
# penalty: top-1 on the tuning shards 62.13 → 62.13%, leave one source out 60.63 → 60.60%, test.tsv 63.72 →
# 63.67%, dev 68.5 → 68.6%; whole-line p95 on test.tsv 12.5 → 11.5 ms segmented, 15.0 → 14.4 raw (paired
# runs, with the lattice's WIDTH 4 and WORDS 8). A budget of 200 with at least 8 lost 0.1–0.45 points of top-5.
BUDGET = 240
MIN_WIDTH = 10
KEEP = 12  # characters per position the first pass considers (the head's likeliest)
RANKED = 6  # proposals the decoder scores
HEAD_WEIGHT = 0.4  # the head's log-probability against the prior's in the first pass
OVERLAP = (os.cpu_count() or 1) > 1  # rank the first pass's proposals while the word lattice is built
# The head's log-probability of a whole proposal, added in the rank pass (``convert``); off. Measured with
# ``benchmarks.two_pass_sweep --head-rank-weights``: on the three tuning shards (crosswoz, leetcode, thucnews
# titles; LMs without the shard, 500 lines each) top-1 averaged 60.27 / 60.60 / 60.27 / 59.47% at 0 / 0.2 / 0.4
# / 0.7 with the model of 52 M characters, and 60.87 / 61.00 / 61.00% at 0 / 0.1 / 0.2 with the one of 69.5 M;
# on dev (1,000 lines, the latter) 68.0% at 0 against 67.3% at 0.2. No gain beyond noise.
HEAD_RANK_WEIGHT = 0.0


@dataclass(frozen=True)
class TwoPassSettings:
    """The two passes' widths (``convert``'s keyword arguments)."""
    width: int = WIDTH
    keep: int = KEEP
    ranked: int = RANKED
    head_weight: float = HEAD_WEIGHT
    head_rank_weight: float = HEAD_RANK_WEIGHT
    budget: int | None = BUDGET  # hypothesis-positions a long line's first pass may keep (None: ``width`` always)
    lattice: bool = True  # the word lattice proposes too, where the converter has a word LM and lexicon


_pool = None
_pool_lock = threading.Lock()


def _ranker():
    """The one thread that ranks first-pass proposals during the word lattice (made on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="two-pass-rank")
        return _pool


class HeadSteps:
    """The first pass as ``engine.runtime.decoder`` Steps: at each position the ``keep`` likeliest characters by the
    head, each scoring ``head_weight · log p_head`` plus ``prior`` after each hypothesis; the prior each
    surviving hypothesis has collected is kept in ``prior_sum``."""

    def __init__(self, emissions, prior=None, keep: int = KEEP, head_weight: float = HEAD_WEIGHT):
        self.prior, self.head_weight = prior, head_weight
        self.kept = []
        for idx, head in emissions:
            if idx.size > keep:
                cols = np.sort(np.argpartition(-head, keep - 1)[:keep])
                idx, head = idx[cols], head[cols]
            self.kept.append((idx, head))
        self.prior_sum = np.zeros(1, dtype=np.float64)
        self._extra = None

    def scores(self, t: int, hyps: np.ndarray, prev: np.ndarray):
        idx, head = self.kept[t]
        if idx.size == 0:
            return idx, None
        b = hyps.shape[0]
        self._extra = np.zeros((b, idx.size)) if self.prior is None else \
            self.prior(hyps, idx, np.zeros((b, idx.size), dtype=np.float32)).astype(np.float64)
        return idx, self.head_weight * head[None, :] + self._extra

    def follow(self, src: np.ndarray, cols: np.ndarray, t: int) -> None:
        self.prior_sum = self.prior_sum[src] + self._extra[src, cols]


def propose(emissions: list[tuple[np.ndarray, np.ndarray]], prior=None, width: int = WIDTH, keep: int = KEEP,
            head_weight: float = HEAD_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """The first pass: ``engine.runtime.decoder``'s beam search over ``HeadSteps``. ``emissions``: per position (allowed
    character ids (n,), sorted; the head's log-probabilities over them (n,)); ``prior(hyps, allowed, zeros) ->
    (B, n)``: what each character adds after each hypothesis (None: nothing). Returns the hypotheses (k, T)
    best first and each one's total prior (k,)."""
    steps = HeadSteps(emissions, prior, keep, head_weight)
    hyps, _ = decoder.search(steps, len(emissions), width)
    return hyps, (steps.prior_sum if hyps.shape[0] else np.empty(0))


def _summed(ys: np.ndarray, emissions, score) -> np.ndarray:
    """Σ_t ``score(t, idx, head, pos)`` over sequences ``ys`` (k, T), where ``idx``/``head`` are position t's
    allowed ids and head log-probabilities and ``pos`` each sequence's column among them; -inf for a sequence
    whose character a position does not allow."""
    total = np.zeros(ys.shape[0], dtype=np.float64)
    for t, (idx, head) in enumerate(emissions):
        pos = np.minimum(np.searchsorted(idx, ys[:, t]), idx.size - 1)
        total += np.where(idx[pos] == ys[:, t], score(t, idx, head, pos), -np.inf)
    return total


def prior_of(ys: np.ndarray, emissions, prior=None) -> np.ndarray:
    """The first pass's prior summed over given sequences ``ys`` (k, T) (0 without one; -inf for a character
    a position does not allow)."""
    if prior is None:
        return _summed(ys, emissions, lambda t, idx, head, pos: 0.0)
    rows = np.arange(ys.shape[0])
    return _summed(ys, emissions, lambda t, idx, head, pos: prior(
        ys[:, :t], idx, np.zeros((ys.shape[0], idx.size), dtype=np.float32))[rows, pos].astype(np.float64))


def head_logprob(ys: np.ndarray, emissions) -> np.ndarray:
    """The emission head's log-probability of whole sequences ``ys`` (k, T): Σ_t log p_head(y_t | the pinyin)
    (-inf where a position does not allow the character)."""
    return _summed(ys, emissions, lambda t, idx, head, pos: head[pos])


def convert(backend, x_ids: list[int], top: int, fuse=None, int8: bool = False, width: int = WIDTH,
            keep: int = KEEP, ranked: int = RANKED, head_weight: float = HEAD_WEIGHT,
            head_rank_weight: float = HEAD_RANK_WEIGHT, budget: int | None = BUDGET,
            words=None, sequence_prior=None, text_prior=None,
            overlap: bool | None = None) -> list[tuple[list[int], float]]:
    """Both passes for input token ids ``x_ids``: up to ``top`` (character ids, score), best first, scored as
    the beam search scores its results. ``fuse`` is the beam search's hook (``logp`` plus the prior); every
    use of it here is additive, so it is called with zeros for the prior alone. ``words(x_ids, emissions,
    head_weight) -> [character ids]``: more proposals (``engine.runtime.word_proposals``), ranked beside the first
    pass's; ``sequence_prior(ys) -> (k,)``: the prior of whole sequences in one call, where ``fuse`` is the
    character LM alone (``CharLM.sequence_logprobs``), else the prior is summed position by position;
    ``text_prior(ys) -> (k,)``: a score of whole sequences added to each total (the word LM's), computed while
    the decoder ranks. ``budget``: the first pass keeps ``min(width, max(MIN_WIDTH, budget // len(x_ids)))``
    hypotheses (None: ``width``).
    ``overlap``: let the decoder rank on the second thread while this one works (default ``OVERLAP``): the
    first pass's proposals during the word lattice, the lattice's during ``text_prior``. The groups are then
    ranked in two calls, which int8 weights quantize apart, so scores can differ from one call's in the last
    digits."""
    if not x_ids:
        return []
    encoded, emissions = backend.emissions(x_ids, int8=int8)
    if budget is not None:
        width = min(width, max(MIN_WIDTH, budget // len(x_ids)))
    hyps, prior_sum = propose(emissions, fuse, width, keep, head_weight)
    if hyps.shape[0] == 0:
        return []
    hyps, prior_sum = hyps[:ranked], prior_sum[:ranked]
    overlap = OVERLAP if overlap is None else overlap
    later = getattr(backend, "rank_later", None) if overlap else None

    def rank(ys: np.ndarray):  # -> finish() -> the decoder's scores of ys
        if not len(ys):
            return lambda: np.zeros(0)
        if later is None:
            done = backend.rank(encoded, x_ids, ys, int8=int8)
            return lambda: done
        return later(encoded, x_ids, ys, int8, _ranker().submit)

    # the decoder's calls under way, in the order of ``both``'s rows (each finish() -> their scores)
    pending = [rank(hyps)] if later is not None and words is not None else []
    try:
        extra = np.empty((0, hyps.shape[1]), dtype=np.int64)
        if words is not None:
            have = {tuple(h) for h in hyps.tolist()}
            found = [h for h in words(x_ids, emissions, head_weight) if tuple(h) not in have]
            if found:
                extra = np.asarray(found, dtype=np.int64)
                extra_prior = sequence_prior(extra) if sequence_prior is not None else prior_of(extra, emissions, fuse)
                prior_sum = np.concatenate([prior_sum, extra_prior])
        both = np.concatenate([hyps, extra])
        if later is None:  # one core: one decoder call for all
            pending.append(rank(both))
        elif words is None:  # no lattice: the first pass's proposals rank during text_prior
            pending.append(rank(hyps))
        else:  # the lattice's after the first pass's (the one decoder thread takes them in turn), during text_prior
            pending.append(rank(extra))
        bonus = text_prior(both) if text_prior is not None else 0.0
    finally:
        scores = [finish() for finish in pending]  # also when something failed: no call outlives its arrays
    total = np.concatenate(scores) + prior_sum + bonus
    if head_rank_weight:  # the head reads the whole input at once: a second opinion beside the decoder's
        total = total + head_rank_weight * head_logprob(both, emissions)
    order = np.argsort(-total, kind="stable")[:top]
    return [(both[i].tolist(), float(total[i])) for i in order]
