"""The user's own language: a character n-gram cache over what they committed, mixed into the model's beam search.

Instant learning (``engine.learning``) remembers whole phrases; this remembers how the user's text goes on
inside a sentence. It counts the characters the user committed after each context of up to ``order - 1``
characters, and at every step of the beam search mixes that distribution into the model's (a cache language
model, shallow fusion):

    log p(c) = log((1 - weight) · p_model(c | pinyin, prefix) + weight · p_user(c | last characters, pinyin))

``p_user`` is restricted to the characters the position's pinyin allows (so after 单元 the user's 测试 wins
``ce shi`` over 侧视 only where it fits the keys) and interpolated across context lengths with Witten-Bell
weights, longest first. Where the user has never typed any character that fits the pinyin it says nothing and
the model decides alone. Linear mixing never takes more than ``-log(1 - weight)`` from what the model
believes, so a rare slip in the history cannot bury the model's clear favourite.

Counts live in memory only; they are rebuilt from the store's history when the pipeline starts (the newest
``MAX_COMMITS`` commits) and updated on each commit; nothing is learned while recording is paused.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

MAX_COMMITS = 20_000  # commits the cache is built from at start (newest first); ~0.3 s, ~40 MB at 15 汉字 each
ORDER = 3  # contexts of up to ORDER - 1 characters
WEIGHT = 0.5  # the bonus: WEIGHT · log(1 + p_user / FLOOR), at most ~2 nats a character
FLOOR = 0.02
EVIDENCE = 10  # the bonus reaches half its weight once the user typed this pinyin EVIDENCE times


class UserLM:
    """Counts of (context → next character id) over the user's committed text; ``fuse`` adds the bonus to
    the log-probabilities of one beam-search step. ``chars``: the model's output vocabulary (ids)."""

    def __init__(self, chars: list[str], order: int = ORDER, weight: float = WEIGHT, floor: float = FLOOR,
                 evidence: float = EVIDENCE):
        if order < 1 or weight < 0 or floor <= 0 or evidence < 0:
            raise ValueError(f"need order ≥ 1, weight ≥ 0, floor > 0, evidence ≥ 0: {order}, {weight}, {floor}, "
                             f"{evidence}")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.order, self.weight, self.floor, self.evidence = order, weight, floor, evidence
        # context (tuple of ids, length 0 .. order-1) → {next id: count}
        self.counts: dict[tuple[int, ...], dict[int, int]] = defaultdict(dict)
        self._arrays: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self.version = 0  # bumped on every change: decodes cached under an older version are stale
        self.chars_seen = 0

    def __bool__(self) -> bool:
        return self.chars_seen > 0

    def clear(self) -> None:
        self.counts.clear()
        self._arrays.clear()
        self.chars_seen = 0
        self.version += 1

    def add(self, text: str) -> None:
        """Learn one committed text (runs of characters the model knows; anything else breaks the context)."""
        ids: list[int] = []
        for ch in text + "\0":
            i = self.index.get(ch)
            if i is not None and i > 1:  # not <pad>/<bos>
                ids.append(i)
                continue
            self._add_run(ids)
            ids = []

    def _add_run(self, ids: list[int]) -> None:
        for t, c in enumerate(ids):
            for k in range(min(self.order - 1, t) + 1):
                ctx = tuple(ids[t - k:t])
                nxt = self.counts[ctx]
                nxt[c] = nxt.get(c, 0) + 1
                self._arrays.pop(ctx, None)
        if ids:
            self.chars_seen += len(ids)
            self.version += 1

    def _array(self, ctx: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        hit = self._arrays.get(ctx)
        if hit is None:
            nxt = self.counts.get(ctx)
            if not nxt:
                return None
            ids = np.fromiter(nxt.keys(), dtype=np.int64, count=len(nxt))
            order = np.argsort(ids)
            counts = np.fromiter(nxt.values(), dtype=np.float64, count=len(nxt))
            hit = self._arrays[ctx] = (ids[order], counts[order])
        return hit

    def _restricted(self, ctx: tuple[int, ...], allowed: np.ndarray) -> np.ndarray | None:
        """Counts of the characters in ``allowed`` (sorted ids) after ``ctx``, aligned with ``allowed``."""
        arr = self._array(ctx)
        if arr is None:
            return None
        ids, counts = arr
        pos = np.minimum(np.searchsorted(allowed, ids), allowed.size - 1)
        hit = allowed[pos] == ids
        if not hit.any():
            return None
        out = np.zeros(allowed.size, dtype=np.float64)
        out[pos[hit]] = counts[hit]
        return out

    def distribution(self, history: list[int], allowed: np.ndarray) -> tuple[np.ndarray, float] | None:
        """(p_user over ``allowed`` after ``history`` (character ids, oldest first), how many times the user
        typed any of ``allowed``); None when never."""
        p, seen = None, 0.0
        for k in range(min(self.order - 1, len(history)) + 1):
            ctx = tuple(history[len(history) - k:]) if k else ()
            counts = self._restricted(ctx, allowed)
            if counts is None:
                break  # a longer context extending an unseen one is unseen too
            total, types = counts.sum(), np.count_nonzero(counts)
            if p is None:
                p, seen = counts / total, total
            else:
                p = (counts + types * p) / (total + types)
        return None if p is None else (p, seen)

    def fuse(self, hyps: np.ndarray, allowed: np.ndarray, logp: np.ndarray) -> np.ndarray:
        """One beam-search step: ``hyps`` (B, t) character ids so far, ``allowed`` (n,) sorted ids the step may
        emit, ``logp`` (B, n) the model's log-probabilities → with the user's bonus added (B, n)."""
        if not self.chars_seen or allowed.size == 0 or not self.weight:
            return logp
        keep = self.order - 1
        found: dict[tuple[int, ...], tuple[np.ndarray, float] | None] = {}
        rows = []
        for h in (hyps[:, hyps.shape[1] - min(keep, hyps.shape[1]):].tolist() if keep else [[]] * len(hyps)):
            key = tuple(h)
            if key not in found:
                found[key] = self.distribution(h, allowed)
            rows.append(found[key])
        if rows[0] is None:  # the order-0 counts are the same for every row: the user never typed this pinyin
            return logp
        p = np.stack([r[0] for r in rows])
        seen = rows[0][1]
        weight = self.weight * seen / (seen + self.evidence)
        return (logp + weight * np.log1p(p / self.floor)).astype(logp.dtype)


def fill_from_history(lm: UserLM, db, limit: int = MAX_COMMITS) -> UserLM:
    """``lm`` cleared and refilled from the newest ``limit`` commits in the store ``db``."""
    from engine import store

    lm.clear()
    for row in reversed(store.list_commits(db, limit=limit)):
        lm.add(row["text"])
    return lm
