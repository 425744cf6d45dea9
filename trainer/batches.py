"""Training batches from the annotated corpus, with the noise that makes abbreviated typing work.

A batch is a pure function of (seed, step, rank): resuming at step N after a kill sees exactly the batches an
uninterrupted run would have seen, and DDP ranks see different data, with no data-loader state to save.

Each batch picks a target length L (4–48 syllables); each example starts at a random clause (sources weighted,
see ``SOURCE_WEIGHTS``) and joins the clauses that follow it while they fit in L, the way people type several
clauses without punctuation; a clause longer than L is cut. Batches hold about ``tokens`` target characters.

Noise on the input side (targets are always the true characters):
* abbreviation: in ``p_abbrev`` of the examples each syllable is replaced by its initial with probability
  ``p_abbrev_syllable`` (``zhong guo`` → ``zh- g-``; zh/ch/sh sometimes as ``z-``/``c-``/``s-``); in
  ``p_all_initials`` of them every syllable is;
* unfinished last syllable: in ``p_cut_last`` of the examples the last syllable is cut to a proper prefix that
  is not itself a syllable (``zhong`` → ``zho~`` or ``zh-``), as when candidates are shown mid-word.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engine.runtime.model import input_tokens
from engine.pinyin import SYLLABLES, initial_of
from trainer.corpus import Corpus

# Formal, repetitive shards count less than their size (see ../shared/data/SOURCES.md).
SOURCE_WEIGHTS = {"law_statutes": 0.3, "news_xwlb": 0.4}


@dataclass
class NoiseConfig:
    p_abbrev: float = 0.15
    p_abbrev_syllable: float = 0.35
    p_all_initials: float = 0.05
    max_all_initials: int = 8
    p_cut_last: float = 0.15
    p_short_zcs: float = 0.3  # zh/ch/sh abbreviated as z/c/s


@dataclass
class BatchConfig:
    tokens: int = 4096
    min_len: int = 4
    max_len: int = 48
    noise: NoiseConfig = field(default_factory=NoiseConfig)


def initial_tokens() -> np.ndarray:
    """Per syllable (``SYLLABLES`` order), the input token of its initial alone (``zhong`` → ``zh-``), -1 for a
    syllable without one (``ai``): how abbreviation noise, and encoder pretraining's masking, hide a syllable."""
    tok_index = {t: i for i, t in enumerate(input_tokens())}
    return np.array([tok_index.get(f"{initial_of(s)}-", -1) if initial_of(s) else -1 for s in SYLLABLES],
                    dtype=np.int64)


class BatchMaker:
    def __init__(self, corpus: Corpus, chars: list[str], cfg: BatchConfig, seed: int = 0):
        self.corpus, self.cfg, self.seed = corpus, cfg, seed
        tok_index = {t: i for i, t in enumerate(input_tokens())}
        # code point → output id (-1: not in the vocabulary, the clause is cut there)
        top = int(corpus.chars.max()) + 1 if len(corpus.chars) else 1
        self.char_id = np.full(max(top, 0x10000), -1, dtype=np.int32)
        for i, ch in enumerate(chars):
            if i >= 2 and ord(ch) < len(self.char_id):
                self.char_id[ord(ch)] = i
        self.syl_tok = np.array([tok_index[s] for s in SYLLABLES], dtype=np.int64)
        self.init_tok = initial_tokens()
        self.short_init_tok = np.array([tok_index[f"{initial_of(s)[0]}-"] if initial_of(s) in ("zh", "ch", "sh")
                                        else -1 for s in SYLLABLES], dtype=np.int64)
        self.cut_toks: list[list[int]] = []
        for s in SYLLABLES:
            options = []
            for n in range(1, len(s)):
                p = s[:n]
                if p in SYLLABLES:
                    continue
                tok = tok_index.get(f"{p}-") or tok_index.get(f"{p}~")
                if tok:
                    options.append(tok)
            self.cut_toks.append(options)
        # Source sampling: weight × characters, clauses of a source are contiguous.
        lengths = np.diff(corpus.offsets)
        self.source_ranges = []
        weights = []
        for i, name in enumerate(corpus.sources):
            idx = np.nonzero(corpus.source == i)[0]
            if len(idx) == 0:
                continue
            stem = name.split(".")[0]
            self.source_ranges.append((int(idx[0]), int(idx[-1]) + 1))
            weights.append(SOURCE_WEIGHTS.get(stem, 1.0) * float(lengths[idx[0]:idx[-1] + 1].sum()))
        self.source_p = np.array(weights) / sum(weights)

    def example(self, rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.corpus
        lo, hi = self.source_ranges[rng.choice(len(self.source_ranges), p=self.source_p)]
        i = int(rng.integers(lo, hi))
        start = int(c.offsets[i])
        end = int(c.offsets[i + 1])
        while i + 1 < hi and int(c.offsets[i + 2]) - start <= length:  # join following clauses that fit
            i += 1
            end = int(c.offsets[i + 1])
        end = min(end, start + length)
        ys = self.char_id[c.chars[start:end]]
        bad = np.nonzero(ys < 0)[0]
        if len(bad):  # cut at the first character outside the vocabulary
            end = start + int(bad[0])
            ys = ys[: bad[0]]
        syl = c.syls[start:end].astype(np.int64)
        return self.noisy_input(rng, syl), ys.astype(np.int64)

    def noisy_input(self, rng: np.random.Generator, syl: np.ndarray) -> np.ndarray:
        x = self.syl_tok[syl]
        n = self.cfg.noise
        if len(x) == 0:
            return x
        r = rng.random()
        if r < n.p_all_initials + n.p_abbrev:
            # Only short inputs are typed as initials throughout (bjdx); longer ones get some abbreviated.
            p = 1.0 if r < n.p_all_initials and len(x) <= n.max_all_initials else n.p_abbrev_syllable
            abbrev = (rng.random(len(x)) < p) & (self.init_tok[syl] >= 0)
            short = (rng.random(len(x)) < n.p_short_zcs) & (self.short_init_tok[syl] >= 0)
            x = np.where(abbrev, np.where(short, self.short_init_tok[syl], self.init_tok[syl]), x)
        if rng.random() < n.p_cut_last:
            options = self.cut_toks[int(syl[-1])]
            if options:
                x = x.copy()
                x[-1] = options[int(rng.integers(len(options)))]
        return x

    def batch(self, step: int, rank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) LongTensors (B, T), zero-padded, for training step ``step`` on DDP rank ``rank``."""
        rng = np.random.default_rng([self.seed, step, rank])
        length = int(rng.integers(self.cfg.min_len, self.cfg.max_len + 1))
        n = max(1, self.cfg.tokens // length)
        xs, ys = [], []
        while len(xs) < n:
            x, y = self.example(rng, length)
            if len(y) >= 1:
                xs.append(x)
                ys.append(y)
        t = max(len(y) for y in ys)
        X = np.zeros((n, t), dtype=np.int64)
        Y = np.zeros((n, t), dtype=np.int64)
        for k, (x, y) in enumerate(zip(xs, ys)):
            X[k, : len(x)] = x
            Y[k, : len(y)] = y
        return torch.from_numpy(X), torch.from_numpy(Y)
