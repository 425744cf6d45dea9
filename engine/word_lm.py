"""The word n-gram model: how likely a whole candidate sentence is as a sequence of lexicon words.

Built by ``trainer.word_ngram`` (the corpus cut into lexicon words, Kneser-Ney, stored in the character LM's
backoff format with wider keys) and read here with numpy only, so the typing path never imports torch.
A sentence's score is its best segmentation's log-probability: a Viterbi search over the ways its characters
split into vocabulary words (any character is a one-character word), with the last ``order - 1`` words as the
state. The candidates of one input all have one character per syllable, so they are scored together,
position by position, with one batched lookup per position.

``engine.two_pass`` adds ``weight · score`` to each ranked proposal's total, beside the model and the
character LM (the weight is tuned on held-out shards, ``benchmarks/out_of_domain.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.char_lm import FORMAT, CharLM
from engine.model_spec import BOS

FILE_NAME = "word_lm.safetensors"
MAX_WORD = 8
STATES = 6  # segmentation states kept per position and sentence
WEIGHT = 0.7


class WordLM:
    def __init__(self, lm: CharLM, words: list[str], weight: float = WEIGHT):
        self.lm, self.words, self.weight = lm, words, weight
        self.order, self.bits = lm.order, lm.bits
        self.index = {w: i for i, w in enumerate(words)}
        self.max_word = min(MAX_WORD, max(len(w) for w in words[2:]))

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
        """log p(w[i] | ctx[i]) per row (``engine.char_lm.CharLM.pair_logprobs`` over word ids)."""
        return self.lm.pair_logprobs(ctx, w)

    def score(self, texts: list[str]) -> np.ndarray:
        """log-probability of each text's best segmentation into words. The search's states after the first
        ``i`` characters depend on those characters alone, so candidates that share a beginning (one input's
        candidates mostly do) share its states: the search runs over distinct prefixes, not per text."""
        if not texts:
            return np.zeros(0)
        m = self.order - 1
        index, max_word = self.index, self.max_word
        start = tuple([0] * (m - 1) + [BOS]) if m else ()
        states: dict[str, dict[tuple, float]] = {"": {start: 0.0}}  # prefix → {context: best score}
        for i in range(max(len(t) for t in texts)):
            rows, seen = [], set()
            for text in texts:
                if i >= len(text):
                    continue
                prefix = text[:i]
                here = states.get(prefix)
                if not here:
                    continue
                if len(here) > STATES:
                    here = states[prefix] = dict(sorted(here.items(), key=lambda kv: -kv[1])[:STATES])
                for j in range(i + 1, min(len(text), i + max_word) + 1):
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
            for (prefix, ctx, wid, target), v in zip(rows, lp.tolist()):
                total = states[prefix][ctx] + v
                nxt = states.setdefault(target, {})
                key = (ctx + (wid,))[1:] if m else ()
                if total > nxt.get(key, -np.inf):
                    nxt[key] = total
        return np.array([max(states[t].values()) if states.get(t) else -np.inf for t in texts])


def find(model_dir: Path | str) -> Path | None:
    """The word LM a model uses: found as ``engine.char_lm.find`` finds the character LM."""
    from engine.char_lm import find as find_lm

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
