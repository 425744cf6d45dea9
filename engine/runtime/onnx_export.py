"""Export a model to the ONNX graphs ``engine.runtime.onnx_backend`` runs: the encoder (with the emission head's
features when the model has one), one decoder step (beam search), and the whole decoder over given texts
(ranking candidates).

Written into ``<model dir>/onnx/`` (fp32, plus int8-weight copies made with ONNX Runtime's dynamic
quantization), with the model file's checksum in ``export.json`` so a changed model is never run with stale
graphs. Needs torch and the ``onnx`` package; ``OnnxBackend`` calls it when the export is missing or stale,
``assets/build_model.py`` when packaging the shipped model.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.runtime import onnx_manifest
from engine.runtime.model import PinyinModel, load_model


class _Encoder(nn.Module):
    """input ids (1, T) → what each decoder step adds to its input (T, D), the cross-attention keys/values
    of every layer (layers, 2, 1, H, T, dh) and, for a model with an emission head, its features (T, D)."""

    def __init__(self, m: PinyinModel):
        super().__init__()
        self.m = m

    def forward(self, x):
        m = self.m
        t = x.shape[1]
        enc, _ = m.encode(x)
        heads = m.cfg.n_heads
        dh = m.cfg.d_model // heads
        kvs = [blk.cross_attn.kv(enc).view(1, t, 2, heads, dh).permute(2, 0, 3, 1, 4) for blk in m.dec_blocks]
        out = (m.enc_to_dec(enc)[0] + m.dec_pos.weight[:t], torch.stack(kvs))
        return out if m.emit is None else (*out, m.emit(enc)[0])


class _Decoder(nn.Module):
    """The whole decoder over given texts at once (teacher-forced, causal), for ranking candidates: inputs
    (K, T, D) (each previous character's embedding + what the encoder adds) and the cross keys/values →
    the final hidden states (K, T, D), which the caller scores against each position's allowed characters.
    One call for every position of every candidate: the weights are read once, not once per step."""

    def __init__(self, m: PinyinModel):
        super().__init__()
        self.m = m

    def forward(self, x, cross):
        m = self.m
        for i, blk in enumerate(m.dec_blocks):  # the model's own blocks, as in teacher-forced training
            x = blk(x, (cross[i, 0], cross[i, 1]), None)
        return m.dec_ln(x)


class _Step(nn.Module):
    """One decoder step for a beam: input (B, D), past self-attention keys/values (layers, 2, B, H, t, dh),
    cross keys/values, the allowed characters' embeddings (D, n) → log-probabilities (B, n) over them and
    this step's keys/values (layers, 2, B, H, 1, dh).

    Written for a small graph, since at this size a step's time is mostly per-operator overhead: the query
    and key/value projections are one matrix (the 1/√dh scale folded into the query's rows), attention is
    two matmuls and a softmax (no SDPA with its runtime shape arithmetic), the query length of one makes the
    head transposes plain reshapes, and the cross-attention keys broadcast over the beam instead of being
    expanded."""

    def __init__(self, m: PinyinModel):
        super().__init__()
        self.m = m
        d = m.cfg.d_model
        scale = (d // m.cfg.n_heads) ** -0.5
        for i, blk in enumerate(m.dec_blocks):
            sa, ca = blk.self_attn, blk.cross_attn
            self.register_buffer(f"qkv_w{i}", torch.cat([sa.q.weight * scale, sa.kv.weight]).detach().clone())
            self.register_buffer(f"qkv_b{i}", torch.cat([sa.q.bias * scale, sa.kv.bias]).detach().clone())
            self.register_buffer(f"cq_w{i}", (ca.q.weight * scale).detach().clone())
            self.register_buffer(f"cq_b{i}", (ca.q.bias * scale).detach().clone())

    def forward(self, x, past, cross, out_t):
        m = self.m
        b = x.shape[0]
        d, heads = m.cfg.d_model, m.cfg.n_heads
        dh = d // heads
        new = []
        for i, blk in enumerate(m.dec_blocks):
            sa, ca = blk.self_attn, blk.cross_attn
            qkv = F.linear(blk.ln1(x), getattr(self, f"qkv_w{i}"), getattr(self, f"qkv_b{i}")).view(b, 3, heads, 1, dh)
            q = qkv[:, 0]  # (B, H, 1, dh)
            kv = qkv[:, 1:].transpose(0, 1)  # (2, B, H, 1, dh)
            new.append(kv)
            k = torch.cat([past[i, 0], kv[0]], dim=2)
            v = torch.cat([past[i, 1], kv[1]], dim=2)
            a = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v  # (B, H, 1, dh)
            x = x + sa.out(a.reshape(b, d))
            q = F.linear(blk.ln2(x), getattr(self, f"cq_w{i}"), getattr(self, f"cq_b{i}")).view(b, heads, 1, dh)
            a = torch.softmax(q @ cross[i, 0].transpose(-1, -2), dim=-1) @ cross[i, 1]  # cross (1, H, T, dh)
            x = x + ca.out(a.reshape(b, d))
            x = x + blk.mlp(blk.ln3(x))
        return F.log_softmax(m.dec_ln(x) @ out_t, dim=-1), torch.stack(new)


def export(model: PinyinModel, model_dir: Path | str) -> Path:
    """Write ``encoder.onnx``, ``step.onnx`` and ``decoder.onnx`` (and their int8-weight versions ``*.int8.onnx``) for ``model``
    (loaded from ``model_dir``) into ``model_dir/onnx`` (atomically: a half-written export is never used);
    returns that folder."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on constant shapes: single, unpadded inputs here
        return _export(model, Path(model_dir))


def _export(model: PinyinModel, model_dir: Path) -> Path:
    out = model_dir / "onnx"
    for stale in [*model_dir.glob("onnx.tmp*"), *model_dir.glob("onnx.old*")]:  # what a killed export left
        shutil.rmtree(stale, ignore_errors=True)
    tmp = model_dir / f"onnx.tmp-{os.getpid()}"
    tmp.mkdir()
    m = model.float().eval().cpu()
    L, H = len(m.dec_blocks), m.cfg.n_heads
    D = m.cfg.d_model
    dh = D // H
    enc_out, enc_axes = ["enc_in", "cross"], {"x": {1: "T"}, "enc_in": {0: "T"}, "cross": {4: "T"}}
    if m.emit is not None:
        enc_out, enc_axes = enc_out + ["emit"], {**enc_axes, "emit": {0: "T"}}
    torch.onnx.export(_Encoder(m), (torch.ones(1, 5, dtype=torch.long),), str(tmp / "encoder.onnx"),
                      input_names=["x"], output_names=enc_out, dynamic_axes=enc_axes, dynamo=False, opset_version=17)
    torch.onnx.export(_Decoder(m), (torch.zeros(3, 5, D), torch.zeros(L, 2, 1, H, 5, dh)), str(tmp / "decoder.onnx"),
                      input_names=["x", "cross"], output_names=["h"],
                      dynamic_axes={"x": {0: "K", 1: "T"}, "cross": {4: "T"}, "h": {0: "K", 1: "T"}}, dynamo=False,
                      opset_version=17)
    args = (torch.zeros(4, D), torch.zeros(L, 2, 4, H, 3, dh), torch.zeros(L, 2, 1, H, 5, dh), torch.zeros(D, 7))
    torch.onnx.export(_Step(m), args, str(tmp / "step.onnx"), input_names=["x", "past", "cross", "out_t"],
                      output_names=["logp", "kv"],
                      dynamic_axes={"x": {0: "B"}, "past": {2: "B", 4: "t"}, "cross": {4: "T"}, "out_t": {1: "n"},
                                    "logp": {0: "B", 1: "n"}, "kv": {2: "B"}}, dynamo=False, opset_version=17)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint that does not apply here
    try:
        for name in ("encoder", "step", "decoder"):  # int8 weights, per output channel: same top-1 on dev, ~1.7x faster
            quantize_dynamic(tmp / f"{name}.onnx", tmp / f"{name}.int8.onnx", weight_type=QuantType.QInt8,
                             per_channel=True)
    finally:
        root.setLevel(level)
    onnx_manifest.write(tmp, model_dir)
    # The swap: the old folder is renamed aside (one atomic step), the new one renamed in, then the old deleted,
    # so ``onnx`` is always a whole export or, between the two renames, absent (the loader then exports again,
    # or decodes with torch): never a folder whose files are half gone.
    old = None
    if out.exists():
        old = model_dir / f"onnx.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out




def export_dir(model_dir: Path | str) -> Path:
    """Load the model in ``model_dir`` and export it (see ``export``)."""
    return export(load_model(model_dir)[0], model_dir)
