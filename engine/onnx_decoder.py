"""The same beam search as ``engine.decoder.beam_search``, with the encoder and one decoder step run by ONNX
Runtime and the beam's bookkeeping in numpy.

Why: at this model size a PyTorch decoder step is ~80 small operator calls, each with microseconds of
dispatch overhead that the arithmetic cannot hide on a laptop CPU; ONNX Runtime runs the whole step as one
call on a fused graph. ``benchmarks/latency.py --runtime onnx|torch`` measures the difference.

The two graphs are exported from the PyTorch model (``export``) into ``<model dir>/onnx/`` next to the
weights, with the model file's checksum, so a model changed later is re-exported rather than mismatched.
Exporting needs the ``onnx`` package; running needs only ``onnxruntime``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.decoder import OUTPUT_CACHE_BYTES, BeamState
from engine.model import BOS, PinyinModel

EXPORT_VERSION = 2  # 2: int8 graphs too


class _Encoder(nn.Module):
    """input ids (1, T) → what each decoder step adds to its input (T, D) and the cross-attention keys/values
    of every layer (layers, 2, 1, H, T, dh)."""

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
        return m.enc_to_dec(enc)[0] + m.dec_pos.weight[:t], torch.stack(kvs)


class _Step(nn.Module):
    """One decoder step for a beam: input (B, D), past self-attention keys/values (layers, 2, B, H, t, dh),
    cross keys/values, the allowed characters' embeddings (D, n) → log-probabilities (B, n) over them and
    this step's keys/values (layers, 2, B, H, 1, dh)."""

    def __init__(self, m: PinyinModel):
        super().__init__()
        self.m = m

    def forward(self, x, past, cross, out_t):
        m = self.m
        b = x.shape[0]
        d, heads = m.cfg.d_model, m.cfg.n_heads
        dh = d // heads
        x = x[:, None]
        new = []
        for i, blk in enumerate(m.dec_blocks):
            sa, ca = blk.self_attn, blk.cross_attn
            h = blk.ln1(x)
            q = sa.q(h).view(b, 1, heads, dh).transpose(1, 2)
            kv = sa.kv(h).view(b, 1, 2, heads, dh).permute(2, 0, 3, 1, 4)  # (2, B, H, 1, dh)
            new.append(kv)
            a = F.scaled_dot_product_attention(q, torch.cat([past[i, 0], kv[0]], dim=2),
                                               torch.cat([past[i, 1], kv[1]], dim=2))
            x = x + sa.out(a.transpose(1, 2).reshape(b, 1, d))
            h = blk.ln2(x)
            q = ca.q(h).view(b, 1, heads, dh).transpose(1, 2)
            a = F.scaled_dot_product_attention(q, cross[i, 0].expand(b, -1, -1, -1), cross[i, 1].expand(b, -1, -1, -1))
            x = x + ca.out(a.transpose(1, 2).reshape(b, 1, d))
            x = x + blk.mlp(blk.ln3(x))
        return F.log_softmax(m.dec_ln(x[:, 0]) @ out_t, dim=-1), torch.stack(new)


def _checksum(directory: Path) -> str:
    h = hashlib.sha256()
    with open(directory / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


@torch.no_grad()
def export(model: PinyinModel, model_dir: Path | str) -> Path:
    """Write ``encoder.onnx`` and ``step.onnx`` (and their int8-weight versions ``*.int8.onnx``) for ``model``
    (loaded from ``model_dir``) into ``model_dir/onnx`` (atomically: a half-written export is never used); returns that folder."""
    model_dir = Path(model_dir)
    out = model_dir / "onnx"
    tmp = model_dir / "onnx.tmp"
    tmp.mkdir(exist_ok=True)
    m = model.float().eval().cpu()
    L, H = len(m.dec_blocks), m.cfg.n_heads
    D = m.cfg.d_model
    dh = D // H
    warnings.filterwarnings("ignore", module="torch.onnx")
    torch.onnx.export(_Encoder(m), (torch.ones(1, 5, dtype=torch.long),), str(tmp / "encoder.onnx"),
                      input_names=["x"], output_names=["enc_in", "cross"],
                      dynamic_axes={"x": {1: "T"}, "enc_in": {0: "T"}, "cross": {4: "T"}}, dynamo=False,
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
        for name in ("encoder", "step"):  # int8 weights, per output channel: same top-1 on dev, ~1.7x faster
            quantize_dynamic(tmp / f"{name}.onnx", tmp / f"{name}.int8.onnx", weight_type=QuantType.QInt8,
                             per_channel=True)
    finally:
        root.setLevel(level)
    (tmp / "export.json").write_text(json.dumps({"version": EXPORT_VERSION, "model": _checksum(model_dir)}))
    if out.exists():
        for f in out.iterdir():
            f.unlink()
        out.rmdir()
    tmp.rename(out)
    return out


def is_current(model_dir: Path | str) -> bool:
    meta = Path(model_dir) / "onnx" / "export.json"
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == EXPORT_VERSION and info.get("model") == _checksum(Path(model_dir))


class OnnxDecoder:
    """ONNX Runtime sessions for one model, and ``beam_search`` with ``engine.decoder.beam_search``'s
    signature and results (within float rounding; with ``int8`` the int8-weight graphs, close but not equal)."""

    def __init__(self, model: PinyinModel, model_dir: Path | str, threads: int = 1):
        import onnxruntime as ort

        model_dir = Path(model_dir)
        if not is_current(model_dir):
            export(model, model_dir)
        self._ort, self._dir, self._threads = ort, model_dir / "onnx", threads
        self._sessions: dict[bool, tuple] = {}
        self.model = model
        self.emb = model.char_emb.weight.detach().float().cpu().numpy()
        self.layers, self.heads = len(model.dec_blocks), model.cfg.n_heads
        self.dh = model.cfg.d_model // self.heads
        self._out: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._out_bytes = 0

    def sessions(self, int8: bool):
        """(encoder, step) sessions, fp32 or int8-weight graphs, created on first use."""
        if int8 not in self._sessions:
            opts = self._ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = self._threads, 1
            opts.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.enable_cpu_mem_arena = False  # the arena keeps the largest step's buffers forever (RSS)
            suffix = ".int8.onnx" if int8 else ".onnx"
            self._sessions[int8] = tuple(
                self._ort.InferenceSession(str(self._dir / (name + suffix)), opts, providers=["CPUExecutionProvider"])
                for name in ("encoder", "step"))
        return self._sessions[int8]

    def output(self, token: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self._out.get(token)
        if hit is None:
            idx = self.model._allowed_ids(token).cpu().numpy()
            hit = self._out[token] = (idx, np.ascontiguousarray(self.emb[idx].T))
            self._out_bytes += hit[1].nbytes
            while self._out_bytes > OUTPUT_CACHE_BYTES:  # initials allow thousands of characters: bound it
                self._out_bytes -= self._out.popitem(last=False)[1][1].nbytes
        else:
            self._out.move_to_end(token)
        return hit

    def beam_search(self, model, x_ids: list[int], beam: int = 8, top: int = 5, resume: BeamState | None = None,
                    trace: dict[int, BeamState] | None = None, trace_from: int = 0,
                    int8: bool = False) -> list[tuple[list[int], float]]:
        if not x_ids:
            return []
        n = len(x_ids)
        encoder, step = self.sessions(int8)
        enc_in, cross = encoder.run(None, {"x": np.asarray([x_ids], dtype=np.int64)})
        width = max(beam, 0 if resume is None else resume.hyps.shape[0])
        kv = np.empty((self.layers, 2, width, self.heads, n, self.dh), dtype=np.float32)
        start = 0
        scores = np.zeros(1, dtype=np.float32)
        hyps = np.empty((1, 0), dtype=np.int64)
        prev = np.full(1, BOS, dtype=np.int64)
        if resume is not None and 0 < resume.length < n:
            start, hyps, scores = resume.length, np.asarray(resume.hyps), np.asarray(resume.scores)
            kv[:, :, : hyps.shape[0], :, :start] = np.asarray(resume.kv)
            prev = hyps[:, -1]
        for t in range(start, n):
            b = prev.shape[0]
            idx, out_t = self.output(x_ids[t])
            if idx.size == 0:
                return []
            logp, new = step.run(None, {"x": self.emb[prev] + enc_in[t], "past": kv[:, :, :b, :, :t].copy(),
                                             "cross": cross, "out_t": out_t})
            kv[:, :, :b, :, t] = new[:, :, :, :, 0]
            total = (scores[:, None] + logp).ravel()
            k = min(beam, total.size)
            flat = np.argpartition(-total, k - 1)[:k] if k < total.size else np.arange(total.size)
            flat = flat[np.argsort(-total[flat], kind="stable")]
            src, chars = flat // logp.shape[1], idx[flat % logp.shape[1]]
            kv[:, :, :k, :, : t + 1] = kv[:, :, src, :, : t + 1]
            hyps = np.concatenate([hyps[src], chars[:, None]], axis=1)
            scores, prev = total[flat], chars
            if trace is not None and trace_from <= t < n - 1:
                trace[t + 1] = BeamState(hyps, scores, kv[:, :, :k, :, : t + 1].copy())
        return [(h, float(s)) for h, s in zip(hyps[:top].tolist(), scores[:top].tolist())]
