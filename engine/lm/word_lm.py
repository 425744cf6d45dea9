"""The word n-gram model: how likely a whole candidate sentence is as a sequence of lexicon words.

Built by ``trainer.word_ngram`` (the corpus cut into lexicon words, Kneser-Ney, stored in the character LM's
backoff format with wider keys) and read here with numpy only, so the typing path never imports torch.
A sentence's score is its best segmentation's log-probability: a Viterbi search over the ways its characters
split into vocabulary words (any character is a one-character word), with the last ``order - 1`` words as the
state. The candidates of one input all have one character per syllable, so they are scored together,
position by position, with one batched lookup per position.

``engine.runtime.two_pass`` adds ``weight · score`` to each ranked proposal's total, beside the model and the
character LM (the weight is tuned on held-out shards, ``benchmarks/out_of_domain.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.lm.char_lm import FORMAT, CharLM
from engine.runtime.model_spec import BOS

FILE_NAME = "word_lm.safetensors"
MAX_WORD = 8
STATES = 4  # segmentation states kept per position and sentence (6 before: same accuracy on the tuning shards)
# WEIGHT and PENALTY tuned together on the three tuning shards (crosswoz, leetcode, thucnews titles; LMs without
# the shard, 500 lines each; 2026-12-07, benchmarks/word_lm_sweep.py --penalties): top-1 60.87% at 0.7 / 0
# (before), 61.67 at 0.5 / 2, 61.93 at 0.6 / 3, 62.13 at 0.5 / 4 and at 0.4 / 4 and at 0.5 / 5, 62.27 at 0.4 / 5,
# 62.33 at 0.4 / 6, 62.20 at 0.3 / 6: a plateau; its middle is kept. The same penalty in the word lattice's
# own search added nothing (62.13 → 62.13 / 62.07 at 2 / 4 nats).
WEIGHT = 0.5
# Nats (in the word LM's own units, before ``weight``) charged per word of a segmentation: the score is the
# best of log p(words) - PENALTY · (number of words), so of two readings the LM finds about as likely, the one
# made of fewer, longer words wins: on text the count models never saw, 卷饼不油腻 now beats 卷并不油腻 and
# 二叉平衡树 beats 而差平衡树 (61 lines of the six held-out shards turned right, 35 wrong).
PENALTY = 4.0
# Typing (the beam search's results and the lexicon's whole-input words, ``engine.ime.converter``'s ``_decode``
# with reuse) keeps the weight and no charge: with 0.5 / 4 the first candidate after the last key was right on
# 65.2% of dev's first 500 lines against 66.2% with 0.7 / 0 (``benchmarks.latency --file dev.tsv``; likely because
# the charge favours a whole-input lexicon word, one word, over a sentence of several).
TYPING_WEIGHT = 0.7
TYPING_PENALTY = 0.0
CACHE_PREFIXES = 20_000  # about 10 MB of segmentation states kept between calls


class WordLM:
    def __init__(self, lm: CharLM, words: list[str], weight: float = WEIGHT, penalty: float | None = None):
        self.lm, self.words, self.weight = lm, words, weight
        self.penalty = PENALTY if penalty is None else penalty
        self.order, self.bits = lm.order, lm.bits
        self.index = {w: i for i, w in enumerate(words)}
        self.max_word = min(MAX_WORD, max(len(w) for w in words[2:]))
        self.clear_cache()

    @classmethod
    def load(cls, path: Path | str, **kw) -> "WordLM":
        from safetensors import safe_open
        from safetensors.numpy import load_file

        path = Path(path)
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT or json.loads(meta.get("stats", "{}")).get("kind") != "words":
            raise ValueError(f"{path} is not a word LM")
        words = json.loads(meta["chars"])
        order, bits = int(meta["order"]), int(meta["bits"])
        lm = CharLM(load_file(str(path)), words, ["<pad>", "<bos>"], order, bits)
        return cls(lm, words, **kw)

    @property
    def nbytes(self) -> int:
        return self.lm.nbytes

    def pair_logprobs(self, ctx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """log p(w[i] | ctx[i]) per row (``engine.lm.char_lm.CharLM.pair_logprobs`` over word ids)."""
        return self.lm.pair_logprobs(ctx, w)

    def score(self, texts: list[str], penalty: float | None = None) -> np.ndarray:
        """log-probability of each text's best segmentation into words, less ``penalty`` per word (None: this
        LM's ``penalty``).

        The search's states after the first ``i`` characters depend on those characters alone, so texts that
        share a beginning share them: the search runs over distinct prefixes, not per text, and the prefixes
        finished in earlier calls are kept (``_caches``), so a keystroke, whose candidates mostly extend the
        last keystroke's, scores only the characters that are new. Results are the same as without the
        cache; it is dropped when it holds more than ``CACHE_PREFIXES`` prefixes. Each penalty has its own."""
        if not texts:
            return np.zeros(0)
        penalty = self.penalty if penalty is None else penalty
        if penalty not in self._caches or len(self._caches[penalty][0]) > CACHE_PREFIXES:
            self._caches[penalty] = self._fresh_cache()
        m = self.order - 1
        index, max_word = self.index, self.max_word
        states, done = self._caches[penalty]
        known = [self._known(t, done) for t in texts]  # how many leading characters are finished already
        for i in range(min(max(0, k - max_word + 1) for k in known), max(len(t) for t in texts)):
            rows, seen = [], set()
            for text, k in zip(texts, known):
                if i >= len(text) or i + max_word <= k:
                    continue  # every word starting here ends inside the finished part
                prefix = text[:i]
                here = states.get(prefix)
                if not here:
                    continue
                if len(here) > STATES:
                    here = states[prefix] = dict(sorted(here.items(), key=lambda kv: -kv[1])[:STATES])
                for j in range(max(i + 1, k + 1), min(len(text), i + max_word) + 1):
                    piece = text[i:j]
                    wid = index.get(piece, 0 if j == i + 1 else None)
                    if wid is None or (prefix, piece) in seen:
                        continue
                    seen.add((prefix, piece))
                    rows += [(prefix, ctx, wid, text[:j]) for ctx in here]
            if not rows:
                continue
            lp = self.pair_logprobs(np.array([r[1] for r in rows], dtype=np.int64).reshape(len(rows), m),
                                    np.array([r[2] for r in rows], dtype=np.int64))
            if penalty:
                lp = lp - penalty
            for (prefix, ctx, wid, target), v in zip(rows, lp.tolist()):
                total = states[prefix][ctx] + v
                nxt = states.setdefault(target, {})
                key = (ctx + (wid,))[1:] if m else ()
                if total > nxt.get(key, -np.inf):
                    nxt[key] = total
        for text, k in zip(texts, known):
            done.update(text[:j] for j in range(k + 1, len(text) + 1))
        return np.array([max(states[t].values()) if states.get(t) else -np.inf for t in texts])

    def _known(self, text: str, done: set[str]) -> int:
        """The length of ``text``'s longest finished prefix (finished prefixes are prefix-closed)."""
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if text[:mid] in done:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def clear_cache(self) -> None:
        """Drop the kept segmentation states."""
        self._caches: dict[float, tuple[dict, set]] = {}  # penalty → (prefix → {context: best score}, finished)

    def _fresh_cache(self) -> tuple[dict, set]:
        m = self.order - 1
        return {"": {tuple([0] * (m - 1) + [BOS]) if m else (): 0.0}}, {""}


def find(model_dir: Path | str) -> Path | None:
    """The word LM a model uses: found as ``engine.lm.char_lm.find`` finds the character LM."""
    from engine.lm.char_lm import find as find_lm

    return find_lm(model_dir, FILE_NAME)


def load_for(model_dir: Path | str) -> tuple["WordLM | None", str]:
    """(The word LM for the model in ``model_dir``, or None; a note when one exists but cannot be read)."""
    path = find(model_dir)
    if path is None:
        return None, ""
    try:
        return WordLM.load(path), ""
    except Exception as e:  # noqa: BLE001 — an unreadable file: rank without it, and say so
        return None, f"word LM {path} could not be read ({e}); ranking without it"
