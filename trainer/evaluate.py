"""Evaluation: sentence and character accuracy of a converter on a ``汉字<TAB>pinyin`` file, with latency.

Scored the way ``../shared/peers/score.py`` scores the peer engines: top-1 sentence accuracy (the first
candidate equals the reference), top-K (the reference is among the candidates), character accuracy
(1 − character error rate of the first candidate, by edit distance), and whole-line conversion time; beside
them the first candidates' corpus BLEU-4 over characters, the seed's figure (``char_bleu``).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Callable


def char_accuracy(guesses, texts) -> float:
    """Character accuracy as every figure here reports it: 1 − (edit distance from each guess to its text,
    summed) / (the texts' characters). (Counting position-wise matches instead gives a different number
    whenever a guess drops or adds a character; ``pretrain``'s evaluation did until it used this.)"""
    errors = chars = 0
    for guess, text in zip(guesses, texts, strict=True):
        errors += edit_distance(guess, text)
        chars += len(text)
    return 1 - errors / max(1, chars)


def char_bleu(guesses, texts, order: int = 4) -> float:
    """Corpus BLEU (Papineni et al., 2002) of ``guesses`` against one reference each, over characters: the
    geometric mean of the clipped 1- to ``order``-gram precisions summed over the corpus, times the brevity
    penalty; 0–1. A line shorter than an order adds nothing to that order's counts."""
    matched, total = [0] * order, [0] * order
    hyp_len = ref_len = 0
    for guess, text in zip(guesses, texts, strict=True):
        hyp_len, ref_len = hyp_len + len(guess), ref_len + len(text)
        for n in range(1, order + 1):
            g = Counter(guess[i:i + n] for i in range(len(guess) - n + 1))
            r = Counter(text[i:i + n] for i in range(len(text) - n + 1))
            matched[n - 1] += sum(min(c, r[k]) for k, c in g.items())
            total[n - 1] += sum(g.values())
    if not hyp_len or not all(matched):
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total)) / order
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def read_tsv(path: Path | str) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ValueError(f"{path}:{n}: expected '汉字<TAB>pinyin syllables'")
        text, pinyin = line.split("\t", 1)
        out.append((text.strip(), pinyin.strip()))
    return out


def score(pairs: list[tuple[str, str]], convert: Callable[[str], list[str]], raw: bool = False,
          top: int = 5) -> dict:
    """Run ``convert`` on each line's pinyin (spaces removed when ``raw``) and score against the 汉字."""
    right1 = rightk = 0
    firsts = []
    times = []
    for text, pinyin in pairs:
        keys = pinyin.replace(" ", "") if raw else pinyin
        t0 = time.perf_counter()
        cands = convert(keys)[:top]
        times.append((time.perf_counter() - t0) * 1e3)
        first = cands[0] if cands else ""
        right1 += first == text
        rightk += text in cands
        firsts.append(first)
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(round(p / 100 * (len(times) - 1))))] if times else 0.0  # noqa: E731
    n = max(1, len(pairs))
    return {"lines": len(pairs), "sent_acc1": right1 / n, f"sent_acc{top}": rightk / n,
            "char_acc": char_accuracy(firsts, [text for text, _ in pairs]),
            "bleu": char_bleu(firsts, [text for text, _ in pairs]), "lat_p50_ms": pct(50), "lat_p95_ms": pct(95),
            "lat_max_ms": times[-1] if times else 0.0, "mode": "raw" if raw else "segmented", "top": top}
