"""The word LM adapted to the user's text: their words, and the words they follow, count.

``engine.lm.user_lm`` adapts the corpus *character* LM to what the user committed; the word LM
(``engine.lm.word_lm``), which ranks whole lines beside it, knew nothing of the user. So a term the user writes
every day but the corpus rarely does kept losing there, and a term that is no lexicon word at all (a name, a
product, jargon typed character by character) paid the word LM's per-word charge once for every character.

``UserWordLM`` is the factory word LM with the user's word counts on top:

* the user's committed text is cut into words (the lexicon's, by a unigram Viterbi search over the factory
  LM's own unigram probabilities);
* **new words**: a run of 2–``NEW_MAX`` characters that came out as single-character pieces (no lexicon word
  covers it) ``NEW_MIN`` times or more becomes a word of the user's, with an id after the factory
  vocabulary (``vocab``); the factory LM gives it no probability of its own;
* then the probability of each word of two characters or more after the previous word is adapted: order 0
  mixes in the user's unigram, ``q ← (1 − λ) · p_factory(w | prev) + λ · c(w) / N``,
  ``λ = MIX · N / (N + MIX_EVIDENCE)``; then after a previous word the user wrote, their bigram is mixed in,
  ``q ← (1 − μ) · q + μ · c(prev, w) / c(prev)``, ``μ = MU · c(prev) / (c(prev) + TAU)``. Single characters
  (的 / 地 / 得, 他 / 她 / 它) keep the factory's probabilities: one user's few thousand lines say less about
  them than the corpus does, and adapting them cost general typing (see the tuning note below).

Counts live in memory, rebuilt from the store's newest commits at start and updated on each commit, as the
character cache is.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from engine.lm.word_lm import WordLM
from engine.runtime.model_spec import BOS

# Tuned on the three tuning streams (tech_leetcode, chat_crosswoz, web_zhihu_hot; 1,500 lines typed, the next 500
# measured, each shard left out of both LMs; top-1 with instant learning alone, factory model: 79.6 / 81.0 / 71.8%
# without this module) and on typing test.tsv's first 300 lines after 5,000 lines of general history
# (``benchmarks.latency --history 5000``: 62.0% without this module). Every word adapted, MIX 0.2 and the MAP step
# of engine.lm.user_lm (TAU 2): 81.2 / 84.0 / 72.0%, but typing 59.3% (after a word the user wrote often, such
# as 的, the few words they wrote after it took almost all of the mass). Two-character words and longer only, the
# bigram interpolated at most MU: MU 0.5, MIX 0.2 → 81.6 / 81.6 / 71.4%, typing 61.3%; MU 0.3, MIX 0.1 → 81.6 /
# 81.4 / 71.6%, typing 62.0% (kept).
MIX = 0.1  # the user's unigram share at order 0, at most
MIX_EVIDENCE = 50.0  # words the user wrote before that share is half of MIX
MU = 0.3  # the user's bigram share after a word they wrote, at most
TAU = 2.0  # words written after a word before its share is half of MU
NEW_MIN = 2  # times a run of single-character pieces must recur to become a user word
NEW_MAX = 4  # characters in a user word learned that way
NEW_ROOM = 4096
HAN_RUN = re.compile("[\u3400-\u9fff]+")  # what is learned: runs of 汉字 (anything else breaks the context)


class UserWordLM(WordLM):
    """``base`` (a factory ``WordLM``) adapted to the texts given to ``add``. Same interface as ``WordLM``."""

    def __init__(self, base: WordLM, mix: float = MIX, mix_evidence: float = MIX_EVIDENCE, mu: float = MU,
                 tau: float = TAU, new_min: int = NEW_MIN, new_max: int = NEW_MAX):
        self.base = base
        self.lm, self.order, self.bits = base.lm, base.order, base.bits
        self.weight, self.penalty, self.max_word = base.weight, base.penalty, base.max_word
        self.vocab = len(base.words)
        self._multi = np.fromiter((len(w) > 1 for w in base.words), dtype=bool, count=self.vocab)  # adapted
        self._multi[:2] = False  # <pad>, <bos>
        self.mix, self.mix_evidence, self.mu, self.tau = mix, mix_evidence, mu, tau
        self.new_min, self.new_max = new_min, new_max
        self.clear()

    def clear(self) -> None:
        self.words, self.index = list(self.base.words), dict(self.base.index)  # the user's words go after these
        self.multi = self._multi.copy()
        self.uni = np.zeros(self.vocab, dtype=np.float64)  # the user's count of each word id
        self.after = np.zeros(self.vocab, dtype=np.float64)  # words the user wrote after each word id
        self.pairs: dict[tuple[int, int], int] = {}
        self.runs: Counter = Counter()  # runs of single-character pieces → times seen
        self.total = 0.0
        self.version = 0
        self._scored_version = -1
        self.clear_cache()

    def __bool__(self) -> bool:
        return self.total > 0

    # -- learning --------------------------------------------------------------------------------------------
    def add(self, text: str) -> None:
        """Learn one committed text: its runs of characters (anything not a character breaks the context)."""
        for run in HAN_RUN.findall(text):
            pieces = self.segment(run)
            if self._learn_new_words(pieces):
                pieces = self.segment(run)  # with the words just learned
            prev = BOS
            for piece in pieces:
                wid = self.index.get(piece, 0)
                if wid:
                    self.uni[wid] += 1
                    self.total += 1
                if prev:
                    self.after[prev] += 1
                    self.pairs[(prev, wid)] = self.pairs.get((prev, wid), 0) + 1
                prev = wid
        self.version += 1

    def _learn_new_words(self, pieces: list[str]) -> bool:
        """Count the runs of single-character pieces; True when one became a word."""
        learned = False
        single: list[str] = []
        for piece in pieces + [""]:
            if len(piece) == 1:
                single.append(piece)
                continue
            for i in range(len(single)):
                for j in range(i + 2, min(len(single), i + self.new_max) + 1):
                    word = "".join(single[i:j])
                    self.runs[word] += 1
                    if self.runs[word] == self.new_min and word not in self.index:
                        self._new_word(word)
                        learned = True
            single = []
        return learned

    def _new_word(self, word: str) -> None:
        self.index[word] = len(self.words)
        self.words.append(word)
        wid = self.index[word]
        if wid >= self.uni.size:  # room for the next NEW_ROOM user words (growing one by one copies it all)
            self.uni, self.after = (np.concatenate([a, np.zeros(NEW_ROOM)]) for a in (self.uni, self.after))
            self.multi = np.concatenate([self.multi, np.ones(NEW_ROOM, dtype=bool)])
        self.uni[wid] = self.new_min - 1  # its earlier occurrences, counted as characters then
        self.total += self.new_min - 1

    def segment(self, text: str) -> list[str]:
        """``text`` cut into the likeliest words (lexicon and user words) under the factory's unigram
        probabilities, less the per-word charge (a user word: its count in the user's text so far)."""
        uni, n, index = self.lm.uni, len(text), self.index
        best = [0.0] + [-np.inf] * n
        back = [0] * (n + 1)
        user_lp = np.log(max(self.total, 1.0))
        for i in range(n):
            if best[i] == -np.inf:
                continue
            for j in range(i + 1, min(n, i + self.max_word) + 1):
                wid = index.get(text[i:j])
                if wid is None and j > i + 1:
                    continue
                if wid is None or wid == 0:
                    lp = float(self.lm.floor)
                elif wid < self.vocab:
                    lp = float(uni[wid])
                else:
                    lp = float(np.log(max(self.uni[wid], 1.0))) - user_lp
                v = best[i] + lp - self.penalty
                if v > best[j]:
                    best[j], back[j] = v, i
        out, j = [], n
        while j > 0:
            out.append(text[back[j]:j])
            j = back[j]
        return out[::-1]

    # -- scoring ---------------------------------------------------------------------------------------------
    def score(self, texts: list[str], penalty: float | None = None) -> np.ndarray:
        if self._scored_version != self.version:  # the user's counts changed: scores kept from before are stale
            self.clear_cache()
            self._scored_version = self.version
        return super().score(texts, penalty)

    def pair_logprobs(self, ctx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """log p(w[i] | ctx[i]) per row (word ids, user words included), adapted to the user's counts: words of
        two characters or more only (the choice between 的, 地 and 得 is left to the factory LM, which sees
        more of it than any one user writes)."""
        vocab = self.vocab
        new = w >= vocab
        lp = self.lm.pair_logprobs(np.where(ctx >= vocab, 0, ctx), np.where(new, 0, w))
        if not self.total:
            return lp
        q = np.exp(lp)
        q[new] = 0.0
        adapt = self.multi[w]
        lam = self.mix * self.total / (self.total + self.mix_evidence)
        q = np.where(adapt, (1 - lam) * q + lam * self.uni[w] / self.total, q)
        prev = ctx[:, -1]
        after = self.after[prev]
        rows = np.flatnonzero((after > 0) & adapt)
        if rows.size:
            pairs = self.pairs
            c = np.fromiter((pairs.get(k, 0) for k in zip(prev[rows].tolist(), w[rows].tolist())),
                            dtype=np.float64, count=rows.size)
            share = self.mu * after[rows] / (after[rows] + self.tau)
            q[rows] = (1 - share) * q[rows] + share * c / after[rows]
        return np.log(np.maximum(q, 1e-30))
