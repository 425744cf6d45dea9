"""Decoding: constrained beam search with the model's KV cache, over one or several segmentations.

``beam_search`` turns one sequence of input tokens into the best character sequences; every step only
considers characters the token can spell (the model's ``allowed`` matrix). ``greedy`` decodes a padded batch
(used for evaluation during training). ``Converter`` is what the CLI and the engine call: keys in (segmented
syllables or raw keys), ranked whole-input candidates out; for raw keys it decodes the parser's best few
segmentations and merges them, charging each segmentation its parser cost (``segmentation_weight``).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.model import BOS, PinyinModel, input_tokens, load_model, token_for
from engine.pinyin import INITIAL, ParseResult, Segmentation, parse, split_syllables

_TOKEN_INDEX = {t: i for i, t in enumerate(input_tokens())}
OUTPUT_CACHE_BYTES = 6 << 20  # per model: cached embeddings of the characters each token allows


class FastWeights:
    """The model's weights laid out for inference without module calls, optionally as int8.

    ``linear(x, layer)`` is ``F.linear`` with the layer's weights, or with ``int8`` PyTorch's dynamic int8
    kernel over per-row quantized weights: on a CPU a beam step's small matrix products are bound by reading
    the weights, and int8 reads a quarter of the bytes (about 2× faster per product here; the accuracy cost is
    measured in ``benchmarks/latency.py``). Built once per model and kept on it."""

    def __init__(self, model: PinyinModel, int8: bool = False):
        self.int8, self.model = int8, model
        self._w: dict[int, tuple] = {}
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear):
                self._w[id(mod)] = self._pack(mod.weight.detach(), mod.bias.detach())
        # self-attention's query and key/value projections read the same input: one product instead of two
        for blk in [*model.enc_blocks, *model.dec_blocks]:
            attn = getattr(blk, "attn", None) or blk.self_attn
            self._w[id(attn)] = self._pack(torch.cat([attn.q.weight, attn.kv.weight]).detach(),
                                           torch.cat([attn.q.bias, attn.kv.bias]).detach())
        self._out: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._out_bytes = 0

    def _pack(self, w: torch.Tensor, b: torch.Tensor) -> tuple:
        packed = None
        if self.int8 and w.device.type == "cpu":
            warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*")
            scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8).double()
            q = torch.quantize_per_channel(w.float(), scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
            packed = torch.ops.quantized.linear_prepack(q, b.float())
        return w, b, packed

    def linear(self, x: torch.Tensor, layer: torch.nn.Module) -> torch.Tensor:
        """``layer``'s affine map of ``x``; for an attention module, its fused query + key/value projection."""
        w, b, packed = self._w[id(layer)]
        if packed is not None:
            return torch.ops.quantized.linear_dynamic(x, packed)
        return F.linear(x, w, b)

    def output(self, token: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(character ids, their embeddings transposed (D, n)) that input token ``token`` may become; kept for
        the most recent tokens, since gathering thousands of rows for an initial every step is not free."""
        hit = self._out.get(token)
        if hit is None:
            idx = self.model._allowed_ids(token)
            hit = self._out[token] = (idx, self.model.char_emb.weight[idx].t().contiguous())
            self._out_bytes += hit[1].nbytes
            while self._out_bytes > OUTPUT_CACHE_BYTES:  # initials allow thousands of characters: bound it
                self._out_bytes -= self._out.popitem(last=False)[1][1].nbytes
        else:
            self._out.move_to_end(token)
        return hit

    @staticmethod
    def of(model: PinyinModel, int8: bool = False) -> "FastWeights":
        fast = model.__dict__.get("_fast")
        if fast is None or fast.int8 != int8:
            fast = model.__dict__["_fast"] = FastWeights(model, int8)
        return fast


def encode(model: PinyinModel, x_ids: list[int], fast: FastWeights) -> torch.Tensor:
    """``PinyinModel.encode`` for one unpadded input, without module calls: (1, T, D)."""
    m, lin = model, fast.linear
    d, heads = m.cfg.d_model, m.cfg.n_heads
    t = len(x_ids)
    if t > m.cfg.max_len:
        raise ValueError(f"input of {t} syllables is longer than the model's {m.cfg.max_len}")
    x = (m.in_emb.weight[torch.tensor(x_ids, device=m.in_emb.weight.device)] + m.enc_pos.weight[:t])[None]
    for blk in m.enc_blocks:
        h = F.layer_norm(x, (d,), blk.ln1.weight, blk.ln1.bias, blk.ln1.eps)
        qkv = lin(h, blk.attn).view(1, t, 3, heads, d // heads).transpose(1, 3)  # (1, H, 3, T, dh)
        a = F.scaled_dot_product_attention(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2])
        x = x + lin(a.transpose(1, 2).reshape(1, t, d), blk.attn.out)
        h = F.layer_norm(x, (d,), blk.ln2.weight, blk.ln2.bias, blk.ln2.eps)
        x = x + lin(F.gelu(lin(h, blk.mlp.up)), blk.mlp.down)
    return F.layer_norm(x, (d,), m.enc_ln.weight, m.enc_ln.bias, m.enc_ln.eps)


@dataclass
class BeamState:
    """The beam after position ``len - 1``: hypotheses (k, len), their scores and the decoder's self-attention
    keys/values for those positions, all layers in one tensor (layers, 2, k, H, len, dh)."""
    hyps: torch.Tensor
    scores: torch.Tensor
    kv: torch.Tensor

    @property
    def length(self) -> int:
        return self.hyps.shape[1]


@torch.no_grad()
def beam_search(model: PinyinModel, x_ids: list[int], beam: int = 8, top: int = 5,
                resume: BeamState | None = None, trace: dict[int, BeamState] | None = None,
                trace_from: int = 0, int8: bool = False) -> list[tuple[list[int], float]]:
    """Best ``top`` character-id sequences for input token ids ``x_ids``, with their log-probabilities.

    The per-step work is ``PinyinModel.step_token`` (the reference, same numbers) written with plain tensor
    ops and preallocated key/value buffers: at this model size a step is dominated by per-call overhead, and
    skipping module calls and ``torch.cat`` makes it about twice as fast on a CPU.

    Reuse across keystrokes: ``resume`` is the beam an earlier decode had after the first L positions of an
    input that began with the same tokens; the search continues from position L with its hypotheses, scores
    and cached keys/values as they were (computed under the earlier input: an approximation, since the
    encoder sees the whole input, which the caller bounds by resuming a few positions before the first
    token that changed). ``trace``, when given, receives the beam after every position ≥ ``trace_from``."""
    if not x_ids:
        return []
    m = model
    dev = m.allowed.device
    n = len(x_ids)
    d = m.cfg.d_model
    heads = m.cfg.n_heads
    dh = d // heads
    fast = FastWeights.of(m, int8)
    lin = fast.linear
    enc = encode(m, x_ids, fast)
    enc_in = lin(enc, m.enc_to_dec)[0] + m.dec_pos.weight[:n]  # (T, D): what each step adds to its input
    cross = []  # per layer (1, H, T, dh) keys and values, shared by the beam
    for blk in m.dec_blocks:
        kv = lin(enc, blk.cross_attn.kv).view(1, n, 2, heads, dh)
        cross.append((kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)))
    width = max(beam, 0 if resume is None else resume.hyps.shape[0])
    # self-attention keys and values of every layer in one buffer, so following the beam is one copy per step
    kv_self = torch.empty(len(m.dec_blocks), 2, width, heads, n, dh, device=dev, dtype=enc.dtype)
    emb = m.char_emb.weight
    sdpa = F.scaled_dot_product_attention
    start = 0
    scores = torch.zeros(1, device=dev)
    hyps = torch.empty(1, 0, dtype=torch.long, device=dev)
    prev = torch.full((1,), BOS, dtype=torch.long, device=dev)
    if resume is not None and 0 < resume.length < n:
        start, hyps, scores = resume.length, resume.hyps, resume.scores
        k = hyps.shape[0]
        kv_self[:, :, :k, :, :start] = resume.kv
        prev = hyps[:, -1]
    for t in range(start, n):
        b = prev.shape[0]
        x = (emb[prev] + enc_in[t])[:, None]  # (B, 1, D)
        for blk, (kc, vc), (ks, vs) in zip(m.dec_blocks, cross, kv_self):
            sa, ca = blk.self_attn, blk.cross_attn
            h = F.layer_norm(x, (d,), blk.ln1.weight, blk.ln1.bias, blk.ln1.eps)
            qkv = lin(h, sa).view(b, 3, heads, dh)
            q = qkv[:, 0, :, None]  # (B, H, 1, dh)
            ks[:b, :, t] = qkv[:, 1]
            vs[:b, :, t] = qkv[:, 2]
            a = sdpa(q, ks[:b, :, : t + 1], vs[:b, :, : t + 1])
            x = x + lin(a.transpose(1, 2).reshape(b, 1, d), sa.out)
            h = F.layer_norm(x, (d,), blk.ln2.weight, blk.ln2.bias, blk.ln2.eps)
            q = lin(h, ca.q).view(b, 1, heads, dh).transpose(1, 2)
            a = sdpa(q, kc.expand(b, -1, -1, -1), vc.expand(b, -1, -1, -1))
            x = x + lin(a.transpose(1, 2).reshape(b, 1, d), ca.out)
            h = F.layer_norm(x, (d,), blk.ln3.weight, blk.ln3.bias, blk.ln3.eps)
            x = x + lin(F.gelu(lin(h, blk.mlp.up)), blk.mlp.down)
        h = F.layer_norm(x[:, 0], (d,), m.dec_ln.weight, m.dec_ln.bias, m.dec_ln.eps)
        idx, out_t = fast.output(x_ids[t])
        if idx.numel() == 0:
            return []
        lp = F.log_softmax((h @ out_t).float(), dim=-1)
        total = (scores[:, None] + lp).view(-1)
        best, flat = total.topk(min(beam, total.numel()))
        src = flat // lp.shape[1]
        chars = idx[flat % lp.shape[1]]
        k = src.shape[0]
        kv_self[:, :, :k, :, : t + 1] = kv_self[:, :, src, :, : t + 1]  # follow the surviving hypotheses
        hyps = torch.cat([hyps[src], chars[:, None]], dim=1)
        scores, prev = best, chars
        if trace is not None and trace_from <= t < n - 1:
            trace[t + 1] = BeamState(hyps, scores, kv_self[:, :, :k, :, : t + 1].clone())
    return [(h, float(s)) for h, s in zip(hyps[:top].tolist(), scores[:top].tolist())]


@torch.no_grad()
def score_sequences(model: PinyinModel, x_ids: list[int], y: torch.Tensor, int8: bool = False) -> torch.Tensor:
    """Log-probabilities (k,) of the character sequences ``y`` (k, T) for one input ``x_ids`` (T tokens), in
    one teacher-forced decoder pass; each position's softmax runs over the characters its token allows, as
    in ``beam_search``, so the numbers are comparable with its scores."""
    m = model
    fast = FastWeights.of(m, int8)
    lin = fast.linear
    k, n = y.shape
    d, heads = m.cfg.d_model, m.cfg.n_heads
    dh = d // heads
    enc = encode(m, x_ids, fast)
    emb = m.char_emb.weight
    prev = torch.cat([torch.full((k, 1), BOS, dtype=torch.long, device=y.device), y[:, :-1]], dim=1)
    x = emb[prev] + lin(enc, m.enc_to_dec) + m.dec_pos.weight[:n]  # (k, T, D)
    sdpa = F.scaled_dot_product_attention
    for blk in m.dec_blocks:
        sa, ca = blk.self_attn, blk.cross_attn
        h = F.layer_norm(x, (d,), blk.ln1.weight, blk.ln1.bias, blk.ln1.eps)
        qkv = lin(h, sa).view(k, n, 3, heads, dh).transpose(1, 3)  # (k, H, 3, T, dh)
        a = sdpa(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], is_causal=True)
        x = x + lin(a.transpose(1, 2).reshape(k, n, d), sa.out)
        h = F.layer_norm(x, (d,), blk.ln2.weight, blk.ln2.bias, blk.ln2.eps)
        q = lin(h, ca.q).view(k, n, heads, dh).transpose(1, 2)
        ckv = lin(enc, ca.kv).view(1, n, 2, heads, dh)
        a = sdpa(q, ckv[:, :, 0].transpose(1, 2).expand(k, -1, -1, -1), ckv[:, :, 1].transpose(1, 2).expand(k, -1, -1, -1))
        x = x + lin(a.transpose(1, 2).reshape(k, n, d), ca.out)
        h = F.layer_norm(x, (d,), blk.ln3.weight, blk.ln3.bias, blk.ln3.eps)
        x = x + lin(F.gelu(lin(h, blk.mlp.up)), blk.mlp.down)
    h = F.layer_norm(x, (d,), m.dec_ln.weight, m.dec_ln.bias, m.dec_ln.eps)
    picked = (h * emb[y]).sum(-1)  # (k, T) logit of each target character
    total = picked.float().sum(1)
    for t in range(n):  # not through the output cache: scoring is occasional, that memory is for typing
        total -= torch.logsumexp((h[:, t] @ emb[m._allowed_ids(x_ids[t])].t()).float(), dim=-1)
    return total


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
        self.proposals_for = "all"  # or "initials": only for input with an initial typed alone (abbreviations)
        # Reuse across keystrokes (``reuse`` = how many positions before the first changed token to re-decode;
        # None: every input decoded from scratch, as the CLI does). See ``_beams``.
        self.search = beam_search  # or an ONNX Runtime decoder's beam_search (same signature), see ``load``
        self.runtime, self.runtime_note = "torch", ""
        self.reuse: int | None = None
        self.int8 = False
        self._traces: OrderedDict[tuple[int, ...], tuple[dict[int, BeamState], list[tuple[str, float]]]] = OrderedDict()
        self.cache_size = 8

    def interactive(self, reuse: int = 2, beam: int | None = None, int8: bool = False) -> "Converter":
        """Settings for typing: reuse earlier decodes (whole-line conversion leaves it off), optionally a
        narrower beam and int8 weights (see ``FastWeights``)."""
        self.reuse, self.int8 = reuse, int8
        self.beam = beam or self.beam
        return self

    @classmethod
    def load(cls, directory: Path | str, device: str = "cpu", runtime: str = "torch", **kw) -> "Converter":
        """``runtime``: "torch", "onnx" (ONNX Runtime for the encoder and decoder steps, exporting the model
        next to its weights the first time), or "auto" (onnx on a CPU when onnxruntime is installed and the
        export is there or can be written; torch otherwise)."""
        model, meta = load_model(directory, device)
        model.set_allowed(_allowed_for(meta["chars"]))
        conv = cls(model, meta["chars"], **kw)
        if runtime == "onnx" or (runtime == "auto" and str(device) == "cpu"):
            try:
                from engine.onnx_decoder import OnnxDecoder

                conv.search = OnnxDecoder(model, directory, threads=torch.get_num_threads()).beam_search
                conv.runtime = "onnx"
            except Exception as e:  # noqa: BLE001 — any export/runtime failure: PyTorch still decodes
                if runtime == "onnx":
                    raise
                conv.runtime_note = f"ONNX Runtime unavailable ({e}); decoding with PyTorch"
        return conv

    @classmethod
    def load_with_lexicon(cls, directory: Path | str, device: str = "cpu", **kw) -> "Converter":
        from engine.lexicon import default_lexicon

        return cls.load(directory, device, lexicon=default_lexicon(), **kw)

    def _beams(self, ids: list[int]) -> tuple[list[tuple[list[int], float]], dict[int, BeamState] | None]:
        """Beam search for ``ids``. With ``reuse`` on it restarts from the cached decode that shares the most
        leading tokens (typing a key usually changes only the last token or adds one): from that decode's beam
        ``reuse`` positions before the first token that differs, so a keystroke costs a few decoder steps, not
        one per syllable. Each decode keeps its beams at the ``reuse + 1`` positions before its last for the next key
        (that is where the next key's decode starts when it changes or adds one token)."""
        if self.reuse is None:
            return self.search(self.model, ids, self.beam, self.beam, int8=self.int8), None
        key = tuple(ids)
        resume, common = None, 0
        for other, (states, _) in self._traces.items():
            n = 0
            for a, b in zip(key, other):
                if a != b:
                    break
                n += 1
            if n > common and states:
                common, resume = n, states
        state = None
        if resume is not None:
            start = min(common, len(key) - 1) - self.reuse
            usable = [L for L in resume if L <= start]
            state = resume[max(usable)] if usable else None
        states: dict[int, BeamState] = {}
        found = self.search(self.model, ids, self.beam, self.beam, resume=state, trace=states,
                            trace_from=max(0, len(ids) - self.reuse - 2), int8=self.int8)
        return found, states

    def _decode(self, ids: list[int], top: int, options=None) -> list[tuple[str, float]]:
        key = tuple(ids)
        if self.reuse is not None and key in self._traces:
            self._traces.move_to_end(key)
            return self._traces[key][1][:top]
        results, trace = self._beams(ids)
        found = [("".join(self.chars[c] for c in h), s) for h, s in results]
        if self.lexicon is not None and options is not None and len(ids) <= 8:
            have = {t for t, _ in found}
            words = [e.text for e in self.lexicon.words_matching(options, limit=self.proposals)]
            words = [w for w in words if w not in have and all(c in self.char_index for c in w)]
            found += zip(words, self.score_texts(ids, words))
            found.sort(key=lambda ts: -ts[1])
        if trace is not None:
            self._traces[key] = (trace, found)
            while len(self._traces) > self.cache_size:
                self._traces.popitem(last=False)
        return found[:top]

    def score_texts(self, ids: list[int], texts: list[str]) -> list[float]:
        """The model's log-probability of each text (same length as ``ids``) for input tokens ``ids``."""
        if not texts:
            return []
        y = torch.tensor([[self.char_index[c] for c in t] for t in texts], dtype=torch.long,
                         device=self.model.allowed.device)
        return score_sequences(self.model, ids, y).tolist()  # fp32: no int8 copy of the weights for this

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
            propose = self.proposals_for == "all" or any(t.kind == INITIAL for t in seg.tokens)
            for text, score in self._decode(ids, top, [t.syllables for t in seg.tokens] if propose else None):
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
