"""The model in PyTorch as a runtime: ``TorchBackend`` behind ``engine.ime.converter.Converter`` (training, GPUs,
and where ONNX Runtime is missing), beside the ONNX Runtime backend in ``engine.runtime.onnx_backend``.

``TorchSteps`` is the decoder's side of ``engine.runtime.decoder``'s one beam search, with the model's KV cache (every
step only considers characters the token can spell: the model's ``allowed`` matrix). ``score_sequences``
scores given texts; ``greedy`` decodes a padded batch (evaluation during training).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.runtime.backend import Backend, OutputCache
from engine.runtime.decoder import BeamState
from engine.runtime.model import BOS, PinyinModel, load_model


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
        self.output = OutputCache(self._output).get  # token → (allowed character ids, their embeddings (D, n))

    def _pack(self, w: torch.Tensor, b: torch.Tensor) -> tuple:
        packed = None
        if self.int8 and w.device.type == "cpu":
            scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-8).double()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*")
                q = torch.quantize_per_channel(w.float(), scale, torch.zeros_like(scale, dtype=torch.long), 0,
                                               torch.qint8)
            packed = torch.ops.quantized.linear_prepack(q, b.float())
        return w, b, packed

    def linear(self, x: torch.Tensor, layer: torch.nn.Module) -> torch.Tensor:
        """``layer``'s affine map of ``x``; for an attention module, its fused query + key/value projection."""
        w, b, packed = self._w[id(layer)]
        if packed is not None:
            return torch.ops.quantized.linear_dynamic(x, packed)
        return F.linear(x, w, b)

    def _output(self, token: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.model.allowed_ids(token)
        return idx, self.model.char_emb.weight[idx].t().contiguous()

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


class TorchSteps:
    """``engine.runtime.decoder``'s Steps in PyTorch for one input: the encoder run once, then per position one decoder
    step for the whole beam, ``PinyinModel.step_token`` (the reference, same numbers) written with plain tensor
    ops and preallocated key/value buffers: at this model size a step is dominated by per-call overhead, and
    skipping module calls and ``torch.cat`` makes it about twice as fast on a CPU."""

    @torch.no_grad()
    def __init__(self, model: PinyinModel, x_ids: list[int], width: int, int8: bool = False):
        m = self.model = model
        self.x_ids, n = x_ids, len(x_ids)
        self.dev = m.allowed.device
        self.d, self.heads = m.cfg.d_model, m.cfg.n_heads
        self.dh = self.d // self.heads
        self.fast = FastWeights.of(m, int8)
        lin = self.fast.linear
        enc = encode(m, x_ids, self.fast)
        self.enc_in = lin(enc, m.enc_to_dec)[0] + m.dec_pos.weight[:n]  # (T, D): what each step adds to its input
        self.cross = []  # per layer (1, H, T, dh) keys and values, shared by the beam
        for blk in m.dec_blocks:
            kv = lin(enc, blk.cross_attn.kv).view(1, n, 2, self.heads, self.dh)
            self.cross.append((kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)))
        # self-attention keys and values of every layer in one buffer, so following the beam is one copy per step
        self.kv = torch.empty(len(m.dec_blocks), 2, width, self.heads, n, self.dh, device=self.dev, dtype=enc.dtype)

    def restore(self, state: BeamState) -> None:
        self.kv[:, :, : state.hyps.shape[0], :, : state.length] = state.kv

    @torch.no_grad()
    def scores(self, t: int, hyps: np.ndarray, prev: np.ndarray):
        m, lin, d, heads, dh = self.model, self.fast.linear, self.d, self.heads, self.dh
        b = prev.shape[0]
        sdpa = F.scaled_dot_product_attention
        x = (m.char_emb.weight[torch.from_numpy(prev).to(self.dev)] + self.enc_in[t])[:, None]  # (B, 1, D)
        for blk, (kc, vc), (ks, vs) in zip(m.dec_blocks, self.cross, self.kv):
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
        idx, out_t = self.fast.output(self.x_ids[t])
        if idx.numel() == 0:
            return idx.cpu().numpy(), None
        return idx.cpu().numpy(), F.log_softmax((h @ out_t).float(), dim=-1).cpu().numpy()

    def follow(self, src: np.ndarray, cols: np.ndarray, t: int) -> None:
        s = torch.from_numpy(src).to(self.dev)
        self.kv[:, :, : s.shape[0], :, : t + 1] = self.kv[:, :, s, :, : t + 1]  # follow the surviving hypotheses

    def snapshot(self, k: int, t: int) -> torch.Tensor:
        return self.kv[:, :, :k, :, : t + 1].clone()


def beam_search(model: PinyinModel, x_ids: list[int], beam: int = 8, top: int = 5,
                **kw) -> list[tuple[list[int], float]]:
    """``engine.runtime.decoder``'s beam search with this model in PyTorch (``TorchBackend.beam_search``)."""
    return TorchBackend(model).beam_search(x_ids, beam, top, **kw)


@torch.no_grad()
def score_sequences(model: PinyinModel, x_ids: list[int], y: torch.Tensor, int8: bool = False,
                    fuse=None) -> torch.Tensor:
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
    if fuse is not None:  # per position, the mixed distribution (as beam_search sees it)
        ys = y.cpu().numpy()
        total = torch.zeros(k, dtype=torch.float64)
        for t in range(n):
            idx = m.allowed_ids(x_ids[t])
            lp = F.log_softmax((h[:, t] @ emb[idx].t()).float(), dim=-1).cpu().numpy()
            lp = fuse(ys[:, :t], idx.cpu().numpy(), lp)
            allowed = idx.cpu().numpy()
            pos = np.minimum(np.searchsorted(allowed, ys[:, t]), allowed.size - 1)
            ok = allowed[pos] == ys[:, t]
            total += torch.from_numpy(np.where(ok, lp[np.arange(k), pos], -np.inf))
        return total
    picked = (h * emb[y]).sum(-1)  # (k, T) logit of each target character
    total = picked.float().sum(1)
    for t in range(n):  # not through the output cache: scoring is occasional, that memory is for typing
        total -= torch.logsumexp((h[:, t] @ emb[m.allowed_ids(x_ids[t])].t()).float(), dim=-1)
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


_ALLOWED_CACHE: dict[tuple, torch.Tensor] = {}


def allowed_for(chars: list[str], model_dir: Path | str | None = None) -> torch.Tensor:
    """The allowed matrix for a model's character list, from the readings of the lexicon it decodes with
    (``engine.lexicon.lexicon_for``: the shipped one unless the model folder has its own)."""
    from engine.lexicon import lexicon_for
    from engine.runtime.model import allowed_matrix

    lexicon = lexicon_for(model_dir)
    key = (tuple(chars), id(lexicon))
    if key not in _ALLOWED_CACHE:
        _ALLOWED_CACHE[key] = allowed_matrix(chars, lexicon.readings)
    return _ALLOWED_CACHE[key]


class TorchBackend(Backend):
    """The model in PyTorch behind ``engine.ime.converter.Converter``: ``TorchSteps`` for the beam search (fp32, or
    int8 weights on a CPU), proposals scored by ``score_sequences``."""

    name = "torch"

    def __init__(self, model: PinyinModel, chars: list[str] | None = None):
        self.model, self.chars = model, chars

    @classmethod
    def load(cls, directory: Path | str, device: str = "cpu") -> "TorchBackend":
        model, meta = load_model(directory, device)
        model.set_allowed(allowed_for(meta["chars"], directory))
        return cls(model, meta["chars"])

    @property
    def max_len(self) -> int:
        return self.model.cfg.max_len

    @property
    def num_params(self) -> int:
        return self.model.num_params()

    def steps(self, x_ids: list[int], width: int, int8: bool = False) -> TorchSteps:
        return TorchSteps(self.model, x_ids, width, int8)

    @property
    def has_head(self) -> bool:
        return self.model.emit is not None

    @torch.no_grad()
    def emissions(self, x_ids: list[int], int8: bool = False) -> tuple[None, list[tuple[np.ndarray, np.ndarray]]]:
        """Per position (allowed character ids, the emission head's log-probabilities over them), for
        ``engine.runtime.two_pass`` (the encoder with the converter's weights, int8 or not; the head itself in fp32, once
        per line)."""
        m = self.model
        emit = m.emit(encode(m, x_ids, FastWeights.of(m, int8)))[0]
        out = []
        for t, tok in enumerate(x_ids):
            idx = m.allowed_ids(tok)
            out.append((idx.cpu().numpy(), F.log_softmax((emit[t] @ m.char_emb.weight[idx].t()).float(), -1).cpu().numpy()))
        return None, out

    def rank(self, encoded, x_ids: list[int], ys: np.ndarray, int8: bool = False, fuse=None) -> np.ndarray:
        """log p_model of each character sequence in ``ys`` (k, T), teacher-forced in one pass."""
        y = torch.as_tensor(np.asarray(ys), dtype=torch.long, device=self.model.allowed.device)
        return score_sequences(self.model, x_ids, y, int8=int8, fuse=fuse).double().cpu().numpy()

    def score(self, x_ids: list[int], ys: list[list[int]], int8: bool = False, fuse=None) -> list[float]:
        return self.rank(None, x_ids, ys, int8=int8, fuse=fuse).tolist()
