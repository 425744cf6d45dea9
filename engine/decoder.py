"""Decoding: constrained beam search with the model's KV cache, over one or several segmentations.

``beam_search`` turns one sequence of input tokens into the best character sequences; every step only
considers characters the token can spell (the model's ``allowed`` matrix). ``greedy`` decodes a padded batch
(used for evaluation during training). ``Converter`` is what the CLI and the engine call: keys in (segmented
syllables or raw keys), ranked whole-input candidates out; for raw keys it decodes the parser's best few
segmentations and merges them, charging each segmentation its parser cost (``segmentation_weight``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from engine.model import BOS, PinyinModel, input_tokens, load_model, token_for
from engine.pinyin import ParseResult, Segmentation, parse, split_syllables

_TOKEN_INDEX = {t: i for i, t in enumerate(input_tokens())}


@torch.no_grad()
def beam_search(model: PinyinModel, x_ids: list[int], beam: int = 8, top: int = 5) -> list[tuple[list[int], float]]:
    """Best ``top`` character-id sequences for input token ids ``x_ids``, with their log-probabilities."""
    if not x_ids:
        return []
    x = torch.tensor([x_ids], dtype=torch.long, device=model.allowed.device)
    cache = model.start(x)
    scores = torch.zeros(1, device=x.device)
    hyps = torch.empty(1, 0, dtype=torch.long, device=x.device)
    prev = torch.full((1,), BOS, dtype=torch.long, device=x.device)
    for t in range(len(x_ids)):
        lp, idx = model.step_token(cache, prev, x_ids[t])
        if idx.numel() == 0:
            return []
        total = (scores[:, None] + lp).view(-1)
        best, flat = total.topk(min(beam, total.numel()))
        src = flat // lp.shape[1]
        chars = idx[flat % lp.shape[1]]
        cache = cache.select(src)
        hyps = torch.cat([hyps[src], chars[:, None]], dim=1)
        scores, prev = best, chars
    return [(h, float(s)) for h, s in zip(hyps[:top].tolist(), scores[:top].tolist())]


@torch.no_grad()
def greedy(model: PinyinModel, x: torch.Tensor) -> torch.Tensor:
    """Greedy decoding of a zero-padded batch (B, T) → character ids (B, T) (PAD where the input is padding)."""
    cache = model.start(x)
    prev = torch.full((x.shape[0],), BOS, dtype=torch.long, device=x.device)
    out = []
    for t in range(x.shape[1]):
        lp = model.step(cache, prev, x[:, t])
        prev = lp.argmax(dim=-1)
        out.append(prev)
    return torch.stack(out, dim=1)


def segmentation_tokens(seg: Segmentation) -> list[int] | None:
    """Input token ids for a parser segmentation (None if a token has no model input, which is rare)."""
    ids = []
    for tok in seg.tokens:
        name = token_for(tok.kind, tok.syllables[0] if tok.kind == "full" and len(tok.syllables) == 1 else tok.keys)
        i = _TOKEN_INDEX.get(name)
        if i is None:
            return None
        ids.append(i)
    return ids


@dataclass
class Candidate:
    text: str
    score: float  # log-probability (minus the segmentation penalty for raw keys)
    segmentation: str


class Converter:
    """A loaded model plus the settings for turning a whole input into ranked candidates."""

    def __init__(self, model: PinyinModel, chars: list[str], beam: int = 8, segmentations: int = 3,
                 segmentation_weight: float = 2.0):
        self.model, self.chars = model, chars
        self.beam, self.segmentations, self.segmentation_weight = beam, segmentations, segmentation_weight

    @classmethod
    def load(cls, directory: Path | str, device: str = "cpu", **kw) -> "Converter":
        model, meta = load_model(directory, device)
        model.set_allowed(_allowed_for(meta["chars"]))
        return cls(model, meta["chars"], **kw)

    def _decode(self, ids: list[int], top: int) -> list[tuple[str, float]]:
        return [("".join(self.chars[c] for c in h), s) for h, s in beam_search(self.model, ids, self.beam, top)]

    def convert_syllables(self, syllables: list[str], top: int = 5) -> list[Candidate]:
        ids = [_TOKEN_INDEX[s] for s in syllables]
        seg = "'".join(syllables)
        return [Candidate(t, s, seg) for t, s in self._decode(ids, top)]

    def convert_segmented(self, line: str, top: int = 5) -> list[Candidate]:
        """Space-separated syllables (``ni hao``); raises ValueError for a token that is not a syllable."""
        return self.convert_syllables(split_syllables(line), top)

    def convert_raw(self, keys: str | ParseResult, top: int = 5) -> list[Candidate]:
        result = keys if isinstance(keys, ParseResult) else parse(keys)
        if not result.ok:
            return []
        merged: dict[str, Candidate] = {}
        best_cost = None
        for seg in result.segmentations(self.segmentations):
            best_cost = seg.cost if best_cost is None else best_cost
            ids = segmentation_tokens(seg)
            if not ids or len(ids) > self.model.cfg.max_len:
                continue
            penalty = self.segmentation_weight * (seg.cost - best_cost)
            for text, score in self._decode(ids, top):
                cand = Candidate(text, score - penalty, str(seg))
                if text not in merged or merged[text].score < cand.score:
                    merged[text] = cand
        return sorted(merged.values(), key=lambda c: -c.score)[:top]


_ALLOWED_CACHE: dict[tuple, torch.Tensor] = {}


def _allowed_for(chars: list[str]) -> torch.Tensor:
    """The allowed matrix for a model's character list, from the shipped lexicon's readings."""
    from engine.lexicon import default_lexicon
    from engine.model import allowed_matrix

    key = tuple(chars)
    if key not in _ALLOWED_CACHE:
        _ALLOWED_CACHE[key] = allowed_matrix(chars, default_lexicon().readings)
    return _ALLOWED_CACHE[key]
