"""The user's own language: a character n-gram cache over what they committed, mixed into the model's beam search.

Instant learning (``engine.ime.learning``) remembers whole phrases; this remembers how the user's text goes on
inside a sentence. It counts the characters the user committed after each context of up to ``order - 1``
characters, and at every step of the beam search mixes that distribution into the model's (a cache language
model, shallow fusion):

    log p(c) = log((1 - weight) · p_model(c | pinyin, prefix) + weight · p_user(c | last characters, pinyin))

``p_user`` is restricted to the characters the position's pinyin allows (so after 单元 the user's 测试 wins
``ce shi`` over 侧视 only where it fits the keys) and interpolated across context lengths with Witten-Bell
weights, longest first. Where the user has never typed any character that fits the pinyin it says nothing and
the model decides alone. Linear mixing never takes more than ``-log(1 - weight)`` from what the model
believes, so a rare slip in the history cannot bury the model's clear favourite.

With the corpus character LM (``engine.lm.char_lm``) in the search, the user's counts adapt the corpus LM's
distribution instead (``mix``), inside the characters the position's pinyin allows, in two steps:

* order 0, which of those characters the user writes at all: ``q ← (1 - λ) · q_corpus + λ · p_user(c)``,
  ``λ = MIX · seen / (seen + MIX_EVIDENCE)``;
* then after the hypothesis's last character, and then its last two, wherever the user wrote that context
  followed by something that fits: ``q ← (count(context, c) + TAU · q(c)) / (count(context) + TAU)`` (a
  Dirichlet prior on the user's counts, the corpus as its mean: MAP adaptation). A context the user wrote once
  moves ``q`` a third of the way to what they wrote after it; written ten times, five sixths of the way. So
  words the user writes win the more often they wrote them, where the pinyin fits them, and nowhere else.

Those steps keep the corpus LM's mass on the allowed characters (how likely the position's pinyin is at all
after the hypothesis), so the user's text reorders what fits the keys. One more step moves that mass too, after
contexts of two characters the user wrote (``MASS_FROM``): ``mass ← (count(context, fits) + TAU_MASS · mass) /
(count(context) + TAU_MASS)``, ``count(context, fits)`` being how often what followed fits the keys. So after 二维
(written 21 times, once followed by 整) ``zheng`` becomes likelier than the corpus says, where the corpus prefers
二位整数 (32 位整数). After one character the user's counts are too mixed to say that (tuned: worse).

Counts live in memory only; they are rebuilt from the store's history when the pipeline starts (the newest
``MAX_COMMITS`` commits) and updated on each commit; nothing is learned while recording is paused.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

MAX_COMMITS = 20_000  # commits the cache is built from at start (newest first); ~0.3 s, ~40 MB at 15 汉字 each
ORDER = 3  # contexts of up to ORDER - 1 characters
WEIGHT = 0.5  # the bonus: WEIGHT · log(1 + p_user / FLOOR), at most ~2 nats a character
FLOOR = 0.02
EVIDENCE = 10  # the bonus reaches half its weight once the user typed this pinyin EVIDENCE times
MIX = 0.2  # with the corpus LM: the user's share of its distribution at order 0, at most. Tuned (when this
# step mixed in the user's whole backed-off n-gram, before TAU; the two give the same top-1 within 0.2) on three
# streams the personalize benchmark does not use (tech_leetcode, chat_crosswoz, web_zhihu_hot; each shard left
# out of the LM), 1,500 lines typed and the next 500 measured, top-1 over phrase learning alone: 0.2 → +4.8,
# +6.0, −0.4 points; 0.5 → +4.8, +6.0, −0.8 (and −3 on the benchmark's tech_weekly, seen before it was lowered)
MIX_EVIDENCE = 10
TAU = 2.0  # with the corpus LM: its pseudo-count after each context the user wrote. Tuned on the same three
# streams; factory model (order 0 alone at MIX 0.2 → 75.4, 75.6, 62.6%): TAU 1 → 75.0, 77.8, 64.0;
# 2 → 75.8, 77.0, 63.6; 3 → 76.2, 77.2, 62.8; 10 → 74.4, 76.8, 63.4. With each stream's fine-tuned model
# (order 0 alone → 78.8, 77.0, 63.8%): TAU 1 → 78.2, 78.4, 63.8; 2 → 79.4, 78.8, 64.2; 3 → 78.8, 78.2, 64.2
TAU_MASS = 30.0  # with the corpus LM: its pseudo-count for the position's mass after a context the user wrote.
# Same streams, TAU 2 (factory: 75.8, 77.0, 63.6%; fine-tuned: 79.4, 78.8, 64.2%): TAU_MASS 30 → factory 77.8,
# 78.2, 64.2; fine-tuned 80.0, 80.0, 63.8. 10 → fine-tuned 79.8, 79.6, 64.2; 60 → 79.8, 80.0, 64.0; 100 → 79.6,
# 80.0, 64.0. From contexts of one character on (MASS_FROM 1), TAU_MASS 100: fine-tuned 80.0, 78.0; 20: 78.6, 77.8.
# Adapting the whole conditional instead (one TAU for order and mass alike, every context): 2 → 70.4, 76.2;
# 10 → 73.6, 77.4; 50 → 78.4, 77.2 (fine-tuned, leetcode and crosswoz): worse throughout
MASS_FROM = 2  # the shortest context whose counts move the mass


class UserLM:
    """Counts of (context → next character id) over the user's committed text; ``fuse`` adds the bonus to
    the log-probabilities of one beam-search step. ``chars``: the model's output vocabulary (ids)."""

    def __init__(self, chars: list[str], order: int = ORDER, weight: float = WEIGHT, floor: float = FLOOR,
                 evidence: float = EVIDENCE, mix: float = MIX, mix_evidence: float = MIX_EVIDENCE,
                 tau: float = TAU, tau_mass: float = TAU_MASS, mass_from: int = MASS_FROM):
        if order < 1 or weight < 0 or floor <= 0 or evidence < 0:
            raise ValueError(f"need order ≥ 1, weight ≥ 0, floor > 0, evidence ≥ 0: {order}, {weight}, {floor}, "
                             f"{evidence}")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.order, self.weight, self.floor, self.evidence = order, weight, floor, evidence
        self.mix_weight, self.mix_evidence, self.tau = mix, mix_evidence, tau
        self.tau_mass, self.mass_from = tau_mass, mass_from
        # context (tuple of ids, length 0 .. order-1) → {next id: count}
        self.counts: dict[tuple[int, ...], dict[int, int]] = defaultdict(dict)
        self._arrays: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._supports: dict[int, tuple] = {}
        self._after: dict[tuple, tuple] = {}  # (context, id(support ids)) → (those ids, counts, total); emptied
        # whenever the counts change
        self.version = 0  # bumped on every change: decodes cached under an older version are stale
        self.chars_seen = 0

    def __bool__(self) -> bool:
        return self.chars_seen > 0

    def clear(self) -> None:
        self.counts.clear()
        self._arrays.clear()
        self._after.clear()
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
            self._after.clear()

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

    def _support(self, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The characters of ``allowed`` (sorted ids) the user ever typed: (their positions in ``allowed``,
        their ids, their counts); None when none. Cached per ``allowed`` array (the backend reuses one per
        input token) until the counts change."""
        hit = self._supports.get(id(allowed))
        if hit is not None and hit[0] is allowed and hit[1] == self.version:
            return hit[2]
        found = None
        arr = self._array(())
        if arr is not None:
            ids, counts = arr
            pos = np.minimum(np.searchsorted(allowed, ids), allowed.size - 1)
            mask = allowed[pos] == ids
            if mask.any():
                found = (pos[mask], ids[mask], counts[mask])
        if len(self._supports) > 512:
            self._supports.clear()
        self._supports[id(allowed)] = (allowed, self.version, found)
        return found

    def _total(self, ctx: tuple[int, ...]) -> float:
        """How many characters the user wrote after ``ctx`` (whatever they were)."""
        arr = self._array(ctx)
        return float(arr[1].sum()) if arr is not None else 0.0

    def _written_after(self, ctx: tuple[int, ...], support_ids: np.ndarray) -> tuple[np.ndarray | None, float]:
        """(``_counts_on(ctx, support_ids)``, ``_total(ctx)``), cached until the counts change: typing asks for
        the same contexts key after key."""
        key = (ctx, id(support_ids))
        hit = self._after.get(key)
        if hit is not None and hit[0] is support_ids:
            return hit[1], hit[2]
        if len(self._after) > 50_000:
            self._after.clear()
        found = self._counts_on(ctx, support_ids), self._total(ctx)
        self._after[key] = (support_ids, *found)  # holding the ids keeps their id() unique
        return found

    def _counts_on(self, ctx: tuple[int, ...], support_ids: np.ndarray) -> np.ndarray | None:
        """Counts after ``ctx`` of the characters ``support_ids`` (sorted), aligned with them."""
        arr = self._array(ctx)
        if arr is None:
            return None
        ids, counts = arr
        pos = np.minimum(np.searchsorted(support_ids, ids), support_ids.size - 1)
        mask = support_ids[pos] == ids
        if not mask.any():
            return None
        out = np.zeros(support_ids.size, dtype=np.float64)
        out[pos[mask]] = counts[mask]
        return out

    def distribution(self, history: list[int], allowed: np.ndarray) -> tuple[np.ndarray, float] | None:
        """(p_user over ``allowed`` after ``history`` (character ids, oldest first), how many times the user
        typed any of ``allowed``); None when never."""
        support = self._support(allowed)
        if support is None:
            return None
        pos, _, _ = support
        p = np.zeros(allowed.size)
        sparse, seen = self._sparse(history, support)
        p[pos] = sparse
        return p, seen

    def _sparse(self, history: list[int], support) -> tuple[np.ndarray, float]:
        """p_user on the support (Witten-Bell, longest context first) and the order-0 total."""
        _, ids, counts0 = support
        seen = float(counts0.sum())
        p = counts0 / seen
        for k in range(1, min(self.order - 1, len(history)) + 1):
            counts = self._counts_on(tuple(history[len(history) - k:]), ids)
            if counts is None:
                break  # a longer context extending an unseen one is unseen too
            total, types = counts.sum(), np.count_nonzero(counts)
            p = (counts + types * p) / (total + types)
        return p, seen

    def _rows(self, hyps: np.ndarray, support) -> np.ndarray:
        """p_user on the support after each hypothesis's last characters (B, len(support)), computed once per
        distinct context."""
        keep = min(self.order - 1, hyps.shape[1])
        found: dict[tuple[int, ...], np.ndarray] = {}
        rows = []
        for h in (hyps[:, hyps.shape[1] - keep:].tolist() if keep else [[]] * len(hyps)):
            key = tuple(h)
            if key not in found:
                found[key] = self._sparse(h, support)[0]
            rows.append(found[key])
        return np.stack(rows)

    def fuse(self, hyps: np.ndarray, allowed: np.ndarray, logp: np.ndarray) -> np.ndarray:
        """One beam-search step: ``hyps`` (B, t) character ids so far, ``allowed`` (n,) sorted ids the step may
        emit, ``logp`` (B, n) the model's log-probabilities → with the user's bonus added (B, n). Only the
        characters of ``allowed`` the user ever typed get one, so the work grows with those, not with n."""
        if not self.chars_seen or allowed.size == 0 or not self.weight:
            return logp
        support = self._support(allowed)
        if support is None:  # the user never typed a character this pinyin allows
            return logp
        rows = self._rows(hyps, support)
        seen = float(support[2].sum())
        weight = self.weight * seen / (seen + self.evidence)
        out = logp.copy()
        out[:, support[0]] += (weight * np.log1p(rows / self.floor)).astype(logp.dtype)
        return out

    def mix(self, hyps: np.ndarray, allowed: np.ndarray, lm_logp: np.ndarray) -> np.ndarray:
        """The corpus LM's log-probabilities ``lm_logp`` (B, n) over ``allowed`` adapted to the user's text (see
        the module docstring); unchanged where the user never typed a character that fits."""
        if not self.chars_seen or allowed.size == 0 or not (self.mix_weight or self.tau):
            return lm_logp
        support = self._support(allowed)
        if support is None:
            return lm_logp
        pos, ids, counts0 = support
        top = lm_logp.max(axis=1, keepdims=True)
        mass = np.exp(lm_logp - top)
        total = mass.sum(axis=1, keepdims=True)
        q = mass / total
        if self.mix_weight:  # order 0: which of the characters that fit the user writes at all
            seen = float(counts0.sum())
            lam = self.mix_weight * seen / (seen + self.mix_evidence)
            q *= 1 - lam
            q[:, pos] += lam * (counts0 / seen)
        log_mass = top + np.log(total)  # (B, 1): the corpus LM's mass on the allowed characters, as a log
        if self.tau:
            log_mass = self._adapt(q, hyps, pos, ids, log_mass)
        return (log_mass + np.log(np.maximum(q, 1e-30))).astype(lm_logp.dtype, copy=False)

    def _adapt(self, q: np.ndarray, hyps: np.ndarray, pos: np.ndarray, ids: np.ndarray,
               log_mass: np.ndarray) -> np.ndarray:
        """In place: ``q`` (B, n) after each hypothesis's last 1, 2, … characters the user wrote, in turn, as
        ``(count(context, c) + tau · q(c)) / (count(context) + tau)`` over the characters that fit. Returns
        ``log_mass`` (B, 1) moved the same way after the contexts of ``mass_from`` characters and more, as
        ``(count(context, fits) + tau_mass · mass) / (count(context) + tau_mass)``."""
        keep = min(self.order - 1, hyps.shape[1])
        if not keep:
            return log_mass
        tails = hyps[:, hyps.shape[1] - keep:].tolist()
        alive = np.ones(len(tails), dtype=bool)
        mass = None
        for k in range(1, keep + 1):
            counts = np.zeros((len(tails), ids.size))
            written = np.zeros(len(tails))  # everything the user wrote after the context
            for b, h in enumerate(tails):
                if alive[b]:
                    c, written[b] = self._written_after(tuple(h[keep - k:]), ids)
                    if not written[b]:
                        alive[b] = False  # a longer context extending an unseen one is unseen too
                    elif c is not None:
                        counts[b] = c
            if not alive.any():
                break
            n = counts.sum(axis=1)
            if self.tau_mass and k >= self.mass_from:
                mass = np.exp(log_mass[:, 0]) if mass is None else mass
                mass = np.where(alive, (n + self.tau_mass * mass) / (written + self.tau_mass), mass)
            fits = alive & (n > 0)  # after a context followed only by what does not fit, q stays as it was
            q *= np.where(fits, self.tau / (n + self.tau), 1.0)[:, None]
            q[:, pos] += counts / (n + self.tau)[:, None]
        return log_mass if mass is None else np.log(np.maximum(mass, 1e-300))[:, None]


def fill_from_history(db, *caches, limit: int = MAX_COMMITS) -> None:
    """Each of ``caches`` (a ``UserLM``, an ``engine.lm.user_word_lm.UserWordLM``: anything with ``clear()``
    and ``add(text)``) cleared and refilled from the newest ``limit`` commits in the store ``db``, read once."""
    from engine import store
    for cache in caches:
        cache.clear()
    if caches:
        for row in reversed(store.list_commits(db, limit=limit)):
            for cache in caches:
                cache.add(row["text"])
