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
import torch.nn.functional as F

from engine.model import BOS, PinyinModel, input_tokens, load_model, token_for
from engine.pinyin import ParseResult, Segmentation, parse, split_syllables

_TOKEN_INDEX = {t: i for i, t in enumerate(input_tokens())}


@torch.no_grad()
def beam_search(model: PinyinModel, x_ids: list[int], beam: int = 8, top: int = 5) -> list[tuple[list[int], float]]:
    """Best ``top`` character-id sequences for input token ids ``x_ids``, with their log-probabilities.

    The per-step work is ``PinyinModel.step_token`` (the reference, same numbers) written with plain tensor
    ops and preallocated key/value buffers: at this model size a step is dominated by per-call overhead, and
    skipping module calls and ``torch.cat`` makes it about twice as fast on a CPU."""
    if not x_ids:
        return []
    m = model
    dev = m.allowed.device
    n = len(x_ids)
    d = m.cfg.d_model
    heads = m.cfg.n_heads
    dh = d // heads
    enc, _ = m.encode(torch.tensor([x_ids], dtype=torch.long, device=dev))
    enc_in = m.enc_to_dec(enc)[0] + m.dec_pos.weight[:n]  # (T, D): what each step adds to its input
    cross = [b.cross_attn.keys_values(enc) for b in m.dec_blocks]  # (1, H, T, dh), shared by the beam
    k_self = [torch.empty(beam, heads, n, dh, device=dev, dtype=enc.dtype) for _ in m.dec_blocks]
    v_self = [torch.empty(beam, heads, n, dh, device=dev, dtype=enc.dtype) for _ in m.dec_blocks]
    emb = m.char_emb.weight
    scores = torch.zeros(1, device=dev)
    hyps = torch.empty(1, 0, dtype=torch.long, device=dev)
    prev = torch.full((1,), BOS, dtype=torch.long, device=dev)
    sdpa = F.scaled_dot_product_attention
    for t in range(n):
        b = prev.shape[0]
        x = (emb[prev] + enc_in[t])[:, None]  # (B, 1, D)
        for blk, (kc, vc), ks, vs in zip(m.dec_blocks, cross, k_self, v_self):
            sa, ca = blk.self_attn, blk.cross_attn
            h = F.layer_norm(x, (d,), blk.ln1.weight, blk.ln1.bias, blk.ln1.eps)
            q = F.linear(h, sa.q.weight, sa.q.bias).view(b, 1, heads, dh).transpose(1, 2)
            kv = F.linear(h, sa.kv.weight, sa.kv.bias).view(b, 2, heads, dh)
            ks[:b, :, t] = kv[:, 0]
            vs[:b, :, t] = kv[:, 1]
            a = sdpa(q, ks[:b, :, : t + 1], vs[:b, :, : t + 1])
            x = x + F.linear(a.transpose(1, 2).reshape(b, 1, d), sa.out.weight, sa.out.bias)
            h = F.layer_norm(x, (d,), blk.ln2.weight, blk.ln2.bias, blk.ln2.eps)
            q = F.linear(h, ca.q.weight, ca.q.bias).view(b, 1, heads, dh).transpose(1, 2)
            a = sdpa(q, kc.expand(b, -1, -1, -1), vc.expand(b, -1, -1, -1))
            x = x + F.linear(a.transpose(1, 2).reshape(b, 1, d), ca.out.weight, ca.out.bias)
            h = F.layer_norm(x, (d,), blk.ln3.weight, blk.ln3.bias, blk.ln3.eps)
            x = x + F.linear(F.gelu(F.linear(h, blk.mlp.up.weight, blk.mlp.up.bias)),
                             blk.mlp.down.weight, blk.mlp.down.bias)
        h = F.layer_norm(x[:, 0], (d,), m.dec_ln.weight, m.dec_ln.bias, m.dec_ln.eps)
        idx = m._allowed_ids(x_ids[t])
        if idx.numel() == 0:
            return []
        lp = F.log_softmax((h @ emb[idx].t()).float(), dim=-1)
        total = (scores[:, None] + lp).view(-1)
        best, flat = total.topk(min(beam, total.numel()))
        src = flat // lp.shape[1]
        chars = idx[flat % lp.shape[1]]
        k = src.shape[0]
        for ks, vs in zip(k_self, v_self):  # reorder the cached keys/values to follow the surviving hypotheses
            ks[:k, :, : t + 1] = ks[src, :, : t + 1]
            vs[:k, :, : t + 1] = vs[src, :, : t + 1]
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
                 segmentation_weight: float = 2.0, lexicon=None, proposals: int = 8, max_cost_gap: float = 0.5):
        self.model, self.chars = model, chars
        self.char_index = {c: i for i, c in enumerate(chars)}
        self.beam, self.segmentations, self.segmentation_weight = beam, segmentations, segmentation_weight
        self.max_cost_gap = max_cost_gap
        # Lexicon words that spell the whole input join the beam's results, scored by the model: the lexicon
        # proposes, the model ranks (this catches what a small beam misses, mostly on abbreviations).
        self.lexicon, self.proposals = lexicon, proposals

    @classmethod
    def load(cls, directory: Path | str, device: str = "cpu", **kw) -> "Converter":
        model, meta = load_model(directory, device)
        model.set_allowed(_allowed_for(meta["chars"]))
        return cls(model, meta["chars"], **kw)

    @classmethod
    def load_with_lexicon(cls, directory: Path | str, device: str = "cpu", **kw) -> "Converter":
        from engine.lexicon import default_lexicon

        return cls.load(directory, device, lexicon=default_lexicon(), **kw)

    def _decode(self, ids: list[int], top: int, options=None) -> list[tuple[str, float]]:
        found = [("".join(self.chars[c] for c in h), s) for h, s in beam_search(self.model, ids, self.beam, top)]
        if self.lexicon is not None and options is not None and len(ids) <= 8:
            have = {t for t, _ in found}
            words = [e.text for e in self.lexicon.words_matching(options, limit=self.proposals)]
            words = [w for w in words if w not in have and all(c in self.char_index for c in w)]
            found += zip(words, self.score_texts(ids, words))
            found.sort(key=lambda ts: -ts[1])
        return found[:top]

    @torch.no_grad()
    def score_texts(self, ids: list[int], texts: list[str]) -> list[float]:
        """The model's log-probability of each text (same length as ``ids``) for input tokens ``ids``."""
        if not texts:
            return []
        x = torch.tensor([ids] * len(texts), dtype=torch.long, device=self.model.allowed.device)
        y = torch.tensor([[self.char_index[c] for c in t] for t in texts], dtype=torch.long, device=x.device)
        lp = torch.log_softmax(self.model(x, y).float(), dim=-1).gather(2, y[:, :, None])[:, :, 0]
        return lp.sum(dim=1).tolist()

    def convert_syllables(self, syllables: list[str], top: int = 5) -> list[Candidate]:
        ids = [_TOKEN_INDEX[s] for s in syllables]
        seg = "'".join(syllables)
        return [Candidate(t, s, seg) for t, s in self._decode(ids, top, [(s,) for s in syllables])]

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
            if seg.cost - best_cost > self.max_cost_gap:
                break  # much less plausible readings are not worth a decode
            ids = segmentation_tokens(seg)
            if not ids or len(ids) > self.model.cfg.max_len:
                continue
            penalty = self.segmentation_weight * (seg.cost - best_cost)
            for text, score in self._decode(ids, top, [t.syllables for t in seg.tokens]):
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
