"""Prediction: what the user is likely to type next, right after a commit, without a single key pressed.

``Predictor(context)`` takes the committed text before the caret and returns up to ``limit`` continuations
(1–4 汉字 each, distinct, best first). No model decode: everything is a lookup in tables that are already in
memory for typing, so a call costs about a millisecond (``benchmarks/prediction.py`` measures it):

* The corpus character n-gram (``engine.lm.char_lm.CharLM``) stores each order's n-grams as sorted keys with the
  context in the high bits, so every character ever seen after a context is one contiguous slice: two
  ``searchsorted`` calls per context length give the candidates for the next character, and one batched
  ``pair_logprobs`` call scores them (and, later, every character of every longer candidate) with the LM's
  real backoff.
* The user's own n-gram cache (``engine.lm.user_lm.UserLM``, the counts of what they committed) adapts each of
  those probabilities much as the beam search's cache does (a Dirichlet prior with the corpus LM as its mean):
  ``q ← (count(context, c) + τ · q) / (count(context) + τ)`` after the last one, then two characters, with
  ``τ = TAU · (distinct characters the user wrote after the context)``, so a context the user always
  continues the same way puts that continuation first, while a generic one they continued every which way
  keeps the corpus's view (``TAU``); their own frequent continuations are also proposed as strings
  (followed greedily while one continuation dominates).
* The lexicon turns a predicted character into words: the most frequent words starting with it, and those
  starting with it plus one of the LM's likeliest next characters.

Each candidate string ``s`` is ranked by ``log q(s | context) + LENGTH_BONUS · (len(s) - 1)``. A word costs
the probability of all its characters but saves as many keystrokes, so a bonus for length looked right; on
dev.tsv it was not: any bonus lowered both the hit rates and the keystroke saving (``LENGTH_BONUS``), so the
ranking is the plain probability, and a word shows when it is as likely as a character (怎么样 after 今天天气).

When it predicts nothing: when the text before the caret does not end in a 汉字 (after punctuation — 。！？
as well as ，、 — after Latin text, digits, or at an empty context). After a sentence end a prediction would be
a guess at a whole new sentence (the hit rate of "sentence starters" is low and the list would pop up after
every full stop), and after a comma the user has just paused on purpose; so, as fcitx5's prediction does, the
list shows only while a Chinese word is being continued. The LM's vocabulary holds 汉字 only, so a context is
cut at the first non-汉字 character from the end (``，我们`` predicts after ``我们``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

LIMIT = 9  # predictions returned (one candidate page)
FIRST = 6  # next characters extended into words (10: same dev hit@5 within 0.5 points, 1.5× the time)
PER_CONTEXT = 40  # next-character candidates taken from each context length's slice (the likeliest)
WORDS_PER_CHAR = 6  # lexicon words tried per predicted character
WORDS_PER_PAIR = 3  # … and per predicted character + one of the LM's likeliest next characters
NEXT_CHARS = 3  # LM continuations tried after each predicted character
MAX_LEN = 4  # characters in a prediction
LENGTH_BONUS = 0.0  # nats per character beyond the first. dev.tsv, 300 lines (benchmarks/prediction.py), hit@5 /
# keystroke saving: 0 → 27.1 / 16.9%, 1 → 24.1 / 15.2%, 1.5 → 20.6 / 13.1%, 3 → 9.0 / 6.8%; -1 ≈ 0 (200 lines)
TAU = 30.0  # the corpus LM's pseudo-count per distinct character the user wrote after a context. dev.tsv, 200
# lines predicted with 2,000 other dev lines as the history (the harsh case: history unrelated to the text),
# hit@1 / hit@5 / keystroke saving; no history: 11.8 / 26.9 / 16.3%. A flat pseudo-count (engine.lm.user_lm's
# TAU, fit for decoding, where the keys already restrict the characters) of 2 → 6.7 / 14.6 / 8.5% (300
# lines), 50 → 10.7 / 23.9 / 14.4, 200 → 11.3 / 27.0 / 16.7; per distinct continuation 3 → 9.6 / 22.3 / 13.3,
# 10 → 11.8 / 25.9 / 15.8, 30 → 12.6 / 26.7 / 16.4%. Per continuation, a context the user always ends the
# same way (单元 → 测试, five times) still moves a seventh of the way and more to it, a generic one (我们 →
# anything) barely


@lru_cache(maxsize=4)
def word_index(lexicon) -> tuple[dict[str, list[str]], dict[str, list[str]], frozenset[str]]:
    """The lexicon's words of 2–``MAX_LEN`` 汉字 by their first character and by their first two (most frequent
    first, readings merged), and the set of them all. Built once per lexicon (~0.3 s, on the worker)."""
    counts: dict[str, int] = {}
    for line in lexicon.word_lines():  # the one pass over words.tsv
        parts = line.split("\t")
        for word, n in zip(parts[2::2], parts[3::2]):
            if 2 <= len(word) <= MAX_LEN:
                counts[word] = counts.get(word, 0) + int(n)
    by_first: dict[str, list[str]] = {}
    by_pair: dict[str, list[str]] = {}
    for word in sorted(counts, key=lambda w: (-counts[w], w)):
        if not all(ch in lexicon.readings for ch in word):
            continue
        first = by_first.setdefault(word[0], [])
        if len(first) < WORDS_PER_CHAR:
            first.append(word)
        if len(word) > 2:
            pair = by_pair.setdefault(word[:2], [])
            if len(pair) < WORDS_PER_PAIR:
                pair.append(word)
    return by_first, by_pair, frozenset(counts)


class Predictor:
    """Next words after a context (see the module docstring). ``char_lm``: the corpus LM; ``chars``: the model's
    vocabulary (the ids the user cache counts in); ``user_lm``: the user's cache, read live (None: none)."""

    def __init__(self, char_lm, chars: list[str], lexicon, user_lm=None, limit: int = LIMIT,
                 length_bonus: float = LENGTH_BONUS, tau: float = TAU):
        self.lm, self.chars, self.lexicon, self.user_lm = char_lm, chars, lexicon, user_lm
        self.limit, self.length_bonus, self.tau = limit, length_bonus, tau
        self.index = {c: i for i, c in enumerate(chars)}
        self.context_len = char_lm.order - 1
        to_lm = char_lm.to_lm
        self.to_lm = to_lm
        self.from_lm = np.zeros(int(to_lm.max()) + 1, dtype=np.int64)  # LM id → model id (0: not in the model)
        known = np.flatnonzero(to_lm[2:]) + 2
        self.from_lm[to_lm[known]] = known
        hanzi = np.array([i > 1 and c in lexicon.readings for i, c in enumerate(chars)])
        self.hanzi_lm = np.zeros(self.from_lm.size, dtype=bool)  # LM ids that are 汉字 the lexicon can spell
        self.hanzi_lm[to_lm[known[hanzi[known]]]] = True
        uni = np.where(self.hanzi_lm, char_lm.uni[:self.from_lm.size], -np.inf)
        self.uni_top = np.argsort(-uni)[:PER_CONTEXT]  # the likeliest characters anywhere
        self.by_first, self.by_pair, self.words = word_index(lexicon)
        self._totals: dict[tuple, float] = {}
        self._totals_version = -1

    @classmethod
    def for_pipeline(cls, pipeline, **kw) -> "Predictor | None":
        """A predictor over the pipeline's model LMs and the user's cache; None without a character LM (the
        lexicon-only pipeline: no probabilities to predict from)."""
        converter = getattr(getattr(pipeline, "translator", None), "converter", None)
        if converter is None or getattr(converter, "char_lm", None) is None:
            return None
        ranker = getattr(pipeline, "ranker", None)
        user_lm = ranker.language_model(converter.chars) if ranker is not None else None
        return cls(converter.char_lm, converter.chars, pipeline.lexicon, user_lm, **kw)

    # -- the call ------------------------------------------------------------------------------------------
    def __call__(self, context: str, limit: int | None = None) -> list[str]:
        limit = self.limit if limit is None else limit
        ctx = self._context_ids(context)
        if not ctx or limit <= 0:
            return []
        first, first_q = self._next_chars(ctx)
        if not first:
            return []
        scores = dict(zip(first, first_q))
        longer = [s for s in self._strings(ctx, first) if s not in scores]
        if longer:
            rest = self._score(ctx, longer)
            for s, v in zip(longer, rest.tolist()):
                scores[s] = scores[s[0]] + v + self.length_bonus * (len(s) - 1)
        return sorted(scores, key=lambda s: -scores[s])[:limit]

    def _context_ids(self, context: str) -> list[int]:
        """The model ids of the last ``order - 1`` characters, back to the first non-汉字 from the end."""
        ids: list[int] = []
        for ch in reversed(context[-self.context_len:]):
            i = self.index.get(ch, 0)
            if i < 2 or not self.hanzi_lm[self.to_lm[i]]:
                break
            ids.append(i)
        return ids[::-1]

    def _slices(self, contexts: list[list[int]]) -> list[np.ndarray]:
        """For each context (LM ids, oldest first), the LM ids seen after its last 1, 2 … characters: the
        ``PER_CONTEXT`` likeliest of each slice, all in one ``searchsorted``."""
        lm, bits = self.lm, self.lm.bits
        bounds, owners = [], []
        for n, ctx in enumerate(contexts):
            packed = 0
            for k, c in enumerate(reversed(ctx)):  # the most recent character in the lowest bits
                packed |= int(c) << (bits * k)
                lo = ((k + 2) << lm.TAG) | (packed << bits)
                bounds += [lo, lo + (1 << bits)]
                owners.append(n)
        pos = np.searchsorted(lm.keys, np.array(bounds, dtype=np.int64))
        found: list[list[np.ndarray]] = [[] for _ in contexts]
        mask = (1 << bits) - 1
        for j, n in enumerate(owners):
            a, b = int(pos[2 * j]), int(pos[2 * j + 1])
            if b <= a:
                continue
            if b - a > PER_CONTEXT:
                lp = lm.lut[lm.codes[a:b]]
                top = np.argpartition(-lp, PER_CONTEXT)[:PER_CONTEXT]
                found[n].append(lm.keys[a + top] & mask)
            else:
                found[n].append(lm.keys[a:b] & mask)
        return [np.concatenate(f) if f else np.zeros(0, dtype=np.int64) for f in found]

    def _next_chars(self, ctx: list[int]) -> tuple[list[str], list[float]]:
        """The ``FIRST`` likeliest next characters and their adapted log-probabilities."""
        lm_ctx = [int(self.to_lm[i]) for i in ctx]
        cand = np.concatenate([self._slices([lm_ctx])[0], self.uni_top, self._user_next(ctx)])
        cand = np.unique(cand)
        cand = cand[self.hanzi_lm[cand]]
        if cand.size == 0:
            return [], []
        rows = np.tile(np.array(lm_ctx, dtype=np.int64), (cand.size, 1))
        lp = self.lm.pair_logprobs(rows, cand)
        model_ids = self.from_lm[cand]
        q = self._adapt(np.exp(lp), [tuple(ctx)] * cand.size, model_ids.tolist())
        order = np.argsort(-q)[:FIRST]
        return [self.chars[model_ids[i]] for i in order], np.log(q[order]).tolist()

    def _user_next(self, ctx: list[int]) -> np.ndarray:
        """LM ids of what the user wrote after the last one or two characters (so their own words are there to
        rank even where the corpus LM never saw them)."""
        user = self.user_lm
        if not user:
            return np.zeros(0, dtype=np.int64)
        ids: set[int] = set()
        for k in range(1, min(user.order - 1, len(ctx)) + 1):
            ids.update(user.counts.get(tuple(ctx[-k:]), {}))
        return self.to_lm[np.array(sorted(ids), dtype=np.int64)] if ids else np.zeros(0, dtype=np.int64)

    def _strings(self, ctx: list[int], first: list[str]) -> list[str]:
        """Candidate strings of two characters or more: the lexicon's words starting with each predicted
        character, or with it and one of the LM's likeliest characters after it, and the user's own
        continuations."""
        out: list[str] = []
        after = [(ctx + [self.index[c]])[-self.context_len:] for c in first]
        follow = self._slices([[int(self.to_lm[i]) for i in a] for a in after])
        nexts = self._top_next(after, [nxt[self.hanzi_lm[nxt]] for nxt in follow])
        for c, a, nxt in zip(first, after, nexts):
            out += self.by_first.get(c, ())
            for i in nxt:
                pair = c + self.chars[i]
                if pair in self.words:
                    out.append(pair)
                out += self.by_pair.get(pair, ())
            out += self._user_words(ctx + [self.index[c]])
        return list(dict.fromkeys(out))

    def _top_next(self, contexts: list[list[int]], cands: list[np.ndarray]) -> list[list[int]]:
        """For each context (model ids), the model ids of the ``NEXT_CHARS`` likeliest of its candidates (LM
        ids): every context's candidates scored in one batched lookup."""
        m = self.context_len
        rows = np.zeros((sum(c.size for c in cands), m), dtype=np.int64)
        at = 0
        for ctx, cand in zip(contexts, cands):
            lm_ctx = self.to_lm[np.array(ctx, dtype=np.int64)]
            rows[at:at + cand.size, m - lm_ctx.size:] = lm_ctx
            at += cand.size
        if not at:
            return [[] for _ in contexts]
        lp = self.lm.pair_logprobs(rows, np.concatenate(cands))
        out, at = [], 0
        for cand in cands:
            part = lp[at:at + cand.size]
            top = np.argsort(-part)[:NEXT_CHARS] if cand.size > NEXT_CHARS else np.arange(cand.size)
            out.append(self.from_lm[cand[top]].tolist())
            at += cand.size
        return out

    def _user_words(self, ids: list[int]) -> list[str]:
        """What the user usually wrote after ``ids``: followed while one next character has at least two of
        the counts and half of them, up to ``MAX_LEN`` characters; every prefix of two characters or more."""
        user = self.user_lm
        if not user:
            return []
        out, text = [], [ids[-1]]
        while len(text) < MAX_LEN:
            ctx = tuple((ids[:-1] + text)[-(user.order - 1):])
            nxt = user.counts.get(ctx)
            if not nxt:
                break
            best, n = max(nxt.items(), key=lambda kv: kv[1])
            if n < 2 or 2 * n < sum(nxt.values()) or not self.hanzi_lm[self.to_lm[best]]:
                break
            text.append(best)
            out.append("".join(self.chars[i] for i in text))
        return out

    def _score(self, ctx: list[int], strings: list[str]) -> np.ndarray:
        """log q(s[1:] | ctx + s[0]) of each string (its first character is scored already), every character
        adapted to the user's counts: the rows built with numpy, one batched lookup."""
        m, width = self.context_len, MAX_LEN
        ids = np.zeros((len(strings), m + width), dtype=np.int64)  # model ids: the context, then the string
        ids[:, m - len(ctx):m] = ctx
        for n, s in enumerate(strings):
            ids[n, m:m + len(s)] = [self.index[c] for c in s]
        lengths = np.array([len(s) for s in strings])
        js = np.arange(1, width)
        valid = js[None, :] < lengths[:, None]  # (S, width - 1): the positions after the first character
        owner, j = np.nonzero(valid)
        j = j + 1
        windows = ids[owner[:, None], m + j[:, None] - m + np.arange(m)[None, :]]  # the m ids before each
        targets = ids[owner, m + j]
        lp = self.lm.pair_logprobs(self.to_lm[windows], self.to_lm[targets])
        if self.user_lm:
            p = self._adapt(np.exp(lp), [tuple(int(v) for v in w[-2:] if v) for w in windows], targets.tolist())
            lp = np.log(p)
        return np.bincount(owner, weights=lp, minlength=len(strings))

    def _adapt(self, p: np.ndarray, contexts: list[tuple[int, ...]], targets: list[int]) -> np.ndarray:
        """``p`` (the corpus LM's probability of each target after its context) moved towards what the user
        wrote after the context's last one, then two characters (``engine.lm.user_lm``'s MAP step)."""
        user = self.user_lm
        if not user:
            return p
        if self._totals_version != user.version:
            self._totals.clear()
            self._totals_version = user.version
        p = p.copy()
        for r, (ctx, t) in enumerate(zip(contexts, targets)):
            for k in range(1, min(2, len(ctx)) + 1):
                key = ctx[-k:]
                nxt = user.counts.get(key)
                if not nxt:
                    break
                found = self._totals.get(key)
                if found is None:
                    found = self._totals[key] = (float(sum(nxt.values())), self.tau * len(nxt))
                total, prior = found
                p[r] = (nxt.get(t, 0) + prior * p[r]) / (total + prior)
        return p


class PipelinePredictor:
    """``Predictor`` over whatever model a pipeline runs now: built on first use and again after a model swap
    (the pipeline's translator changed); no predictions for a lexicon-only pipeline. What the app's composer and
    the IBus engine give their sessions."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self._predictor: Predictor | None = None
        self._for = None

    def __call__(self, context: str, limit: int | None = None) -> list[str]:
        translator = getattr(self.pipeline, "translator", None)
        if self._for is not translator:
            self._predictor, self._for = Predictor.for_pipeline(self.pipeline), translator
        return self._predictor(context, limit=limit) if self._predictor is not None else []
