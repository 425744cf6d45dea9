"""The decoder: constrained beam search over the input's positions, written once for every runtime.

One character per input token, left to right. At each position every hypothesis is extended by the characters
the token may spell, each scored by what the runtime's ``Steps`` say (the Transformer decoder's
log-probabilities in ``engine.runtime.torch_backend`` and ``engine.runtime.onnx_backend``; the emission head's in
``engine.runtime.two_pass``'s first pass), plus ``fuse`` (the corpus LM, the user's n-gram cache); the best ``beam``
survive. The search is plain numpy bookkeeping; the runtime keeps its own state (the decoder's keys and values)
and reorders it when told which hypotheses survived.

Typing reuses work across keystrokes: ``trace`` receives the beam after each position (a ``BeamState``) and
``resume`` starts a later search from one, for an input that begins with the same tokens.

``Steps``, what a runtime implements for one input:

- ``scores(t, hyps, prev) -> (allowed, logp)``: the character ids position ``t`` allows (n,), sorted, and the
  log-probability (B, n) of each after each hypothesis (``hyps`` (B, t) so far, ``prev`` (B,) their last
  character, BOS at the start); ``logp`` is None when the position allows nothing;
- ``follow(src, cols, t)``: after position ``t`` the beam kept hypotheses ``src`` extended by columns ``cols``;
- ``snapshot(k, t)``: the runtime's state for the first ``k`` hypotheses after position ``t``, to resume from;
- ``restore(state)``: put a ``BeamState``'s saved runtime state back (for ``resume``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.runtime.model_spec import BOS


@dataclass
class BeamState:
    """The beam after position ``len - 1``: hypotheses (k, len), their scores (numpy) and the runtime's state
    for them (the decoder's self-attention keys/values, all layers in one array (layers, 2, k, H, len, dh), a
    torch tensor or a numpy array as the runtime that made it uses)."""
    hyps: np.ndarray
    scores: np.ndarray
    kv: Any

    @property
    def length(self) -> int:
        return self.hyps.shape[1]


def top_k(total: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values of ``total`` (1-D), largest first (ties in index order)."""
    k = min(k, total.size)
    flat = np.argpartition(-total, k - 1)[:k] if k < total.size else np.arange(total.size)
    return flat[np.argsort(-total[flat], kind="stable")]


def search(steps, n: int, beam: int, resume: BeamState | None = None, trace: dict[int, BeamState] | None = None,
           trace_from: int = 0, fuse=None, gap: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Beam search over ``n`` positions: the surviving hypotheses (k, n) best first and their scores (k,);
    (0, n) when a position allows no character. ``fuse(hyps, allowed, logp) -> logp`` mixes another
    distribution into each position's log-probabilities; ``gap`` drops the hypotheses that fall more than that
    many nats behind the best (fewer rows for the rest of the search)."""
    hyps = np.empty((1, 0), dtype=np.int64)
    scores = np.zeros(1, dtype=np.float32)
    prev = np.full(1, BOS, dtype=np.int64)
    start = 0
    if resume is not None and 0 < resume.length < n:
        start, hyps, scores = resume.length, np.asarray(resume.hyps), np.asarray(resume.scores)
        steps.restore(resume)
        prev = hyps[:, -1]
    for t in range(start, n):
        allowed, logp = steps.scores(t, hyps, prev)
        if logp is None:
            return np.empty((0, n), dtype=np.int64), np.empty(0)
        if fuse is not None:
            logp = fuse(hyps, allowed, logp)
        total = (scores[:, None] + logp).ravel()
        flat = top_k(total, beam)
        if gap is not None:
            flat = flat[total[flat] >= total[flat[0]] - gap]
        src, cols = flat // logp.shape[1], flat % logp.shape[1]
        steps.follow(src, cols, t)
        prev = allowed[cols]
        hyps = np.concatenate([hyps[src], prev[:, None]], axis=1)
        scores = total[flat]
        if trace is not None and trace_from <= t < n - 1:
            trace[t + 1] = BeamState(hyps, scores, steps.snapshot(len(flat), t))
    return hyps, scores


def beam_search(steps, n: int, beam: int = 8, top: int = 5, **kw) -> list[tuple[list[int], float]]:
    """``search``'s best ``top`` as (character ids, log-probability) pairs (what the converter ranks)."""
    hyps, scores = search(steps, n, beam, **kw)
    return [(h, float(s)) for h, s in zip(hyps[:top].tolist(), scores[:top].tolist())]
