"""The model on ONNX Runtime as a runtime: ``engine.runtime.decoder``'s beam search with the encoder and one decoder step
run by ONNX Runtime (``OnnxSteps``), the whole decoder for ranking — and no PyTorch import.

Why: at this model size a PyTorch decoder step is ~80 small operator calls, each with microseconds of
dispatch overhead that the arithmetic cannot hide on a laptop CPU; ONNX Runtime runs the whole step as one
call on a fused graph (2-4x faster per decode here), and a typing process that never imports torch starts
faster and uses ~200 MB less memory. ``benchmarks/latency.py --runtime onnx|torch`` measures it.

The graphs come from ``engine.runtime.onnx_export`` (run automatically, with torch, when they are missing or stale).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from engine.runtime.backend import Backend, OutputCache
from engine.runtime.decoder import BeamState
from engine.runtime.onnx_manifest import EXPORT_VERSION, checksum, is_current  # noqa: F401 (also imported from here)
from engine.runtime.model_spec import BOS, allowed_ids, read_config

class OnnxBackend(Backend):
    """A saved model run by ONNX Runtime, behind ``engine.ime.converter.Converter``: ``OnnxSteps`` for the beam
    search, with the results of ``engine.runtime.torch_backend.TorchSteps`` (within float rounding; with ``int8`` the
    int8-weight graphs, close but not equal), and ``score`` for given texts."""

    name = "onnx"

    def __init__(self, model_dir: Path | str, threads: int = 1, readings: dict | None = None):
        import onnxruntime as ort
        from safetensors import safe_open

        model_dir = Path(model_dir)
        meta = read_config(model_dir)  # validates the config before anything runs
        if not is_current(model_dir):
            from engine.runtime.onnx_export import export_dir

            export_dir(model_dir)
        if readings is None:
            from engine.lexicon import lexicon_for

            readings = lexicon_for(model_dir).readings
        self._ort, self._dir, self._threads = ort, model_dir / "onnx", threads
        self._sessions: dict[bool, tuple] = {}
        cfg = meta["model"]
        self.chars, self.max_len = meta["chars"], cfg.max_len
        with safe_open(str(model_dir / "model.safetensors"), framework="np") as f:
            self.emb = f.get_tensor("char_emb.weight").astype(np.float32)
            self.num_params = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
        if self.emb.shape != (len(self.chars), cfg.d_model):
            raise ValueError(f"model weights in {model_dir} do not match its config (char_emb {self.emb.shape})")
        self.allowed = allowed_ids(self.chars, readings)
        self.has_head = cfg.emission_head  # whole-line conversion can take the two passes (engine.runtime.two_pass)
        self.layers, self.heads = cfg.n_dec, cfg.n_heads
        self.dh = cfg.d_model // self.heads
        self.output = OutputCache(self._output).get  # token → (allowed character ids, their embeddings (D, n))

    def session(self, name: str, int8: bool):
        """The ONNX Runtime session of graph ``name`` (encoder, step or decoder), fp32 or int8 weights, created
        on first use (typing never loads the decoder graph, whole-line conversion never the step graph)."""
        key = (name, int8)
        if key not in self._sessions:
            opts = self._ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = self._threads, 1
            opts.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.enable_cpu_mem_arena = False  # the arena keeps the largest step's buffers forever (RSS)
            path = self._dir / (name + (".int8.onnx" if int8 else ".onnx"))
            self._sessions[key] = self._ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return self._sessions[key]

    def encode(self, x_ids: list[int], int8: bool = False) -> list[np.ndarray]:
        """The encoder graph's outputs for one input: [enc_in (T, D), cross, (emission features (T, D))]."""
        return self.session("encoder", int8).run(None, {"x": np.asarray([x_ids], dtype=np.int64)})

    def emissions(self, x_ids: list[int], int8: bool = False) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
        """(the encoder's outputs, per position (allowed character ids, the emission head's log-probabilities
        over them)), for ``engine.runtime.two_pass``."""
        encoded = self.encode(x_ids, int8)
        emit = encoded[2]
        outputs = [self.output(tok) for tok in x_ids]
        logits = [emit[t][None] @ out_t for t, (_, out_t) in enumerate(outputs)]
        logp = _segment_log_softmax(logits)
        return encoded, [(idx, lp[0]) for (idx, _), lp in zip(outputs, logp)]

    def rank(self, encoded: list[np.ndarray], x_ids: list[int], ys: np.ndarray, int8: bool = False,
             fuse=None) -> np.ndarray:
        """log p_model of each character sequence in ``ys`` (k, T), in one call of the whole-decoder graph; with
        ``fuse``, each position's log-probabilities go through it first (as in the beam search)."""
        y, feeds = self._decoder_feeds(encoded, ys)
        (h,) = self.session("decoder", int8).run(None, feeds)
        return self._ranked(h, x_ids, y, fuse)

    def rank_later(self, encoded: list[np.ndarray], x_ids: list[int], ys: np.ndarray, int8: bool, submit):
        """``rank`` with its decoder call run by ``submit`` (an executor's, one thread) while the caller goes
        on: returns ``finish() -> rank's answer``. The call holds no Python lock while it computes, and the
        thread enters it before this returns, so the caller's Python work and the decoder's overlap."""
        y, feeds = self._decoder_feeds(encoded, ys)
        session = self.session("decoder", int8)
        entered = threading.Event()

        def call():
            entered.set()
            return session.run(None, feeds)[0]

        done = submit(call)
        entered.wait()
        return lambda: self._ranked(done.result(), x_ids, y, None)

    def _decoder_feeds(self, encoded, ys) -> tuple[np.ndarray, dict]:
        y = np.asarray(ys, dtype=np.int64)
        k = y.shape[0]
        prev = np.concatenate([np.full((k, 1), BOS, dtype=np.int64), y[:, :-1]], axis=1)
        return y, {"x": self.emb[prev] + encoded[0][None], "cross": encoded[1]}

    def _ranked(self, h: np.ndarray, x_ids: list[int], y: np.ndarray, fuse) -> np.ndarray:
        """``rank``'s answer from the decoder's output ``h`` (k, T, D)."""
        k, n = y.shape
        if fuse is None:
            return self._ranked_alone(h, x_ids, y)
        total = np.zeros(k, dtype=np.float64)
        rows = np.arange(k)
        for t in range(n):
            idx, out_t = self.output(x_ids[t])
            if idx.size == 0:
                return np.full(k, -np.inf)
            logp = _log_softmax(h[:, t] @ out_t)
            if fuse is not None:
                logp = fuse(y[:, :t], idx, logp)
            pos = np.minimum(np.searchsorted(idx, y[:, t]), idx.size - 1)
            total += np.where(idx[pos] == y[:, t], logp[rows, pos], -np.inf)
        return total

    def _ranked_alone(self, h: np.ndarray, x_ids: list[int], y: np.ndarray) -> np.ndarray:
        """``_ranked`` without a ``fuse``: every position's log-softmax in one batched pass over the positions'
        logits side by side (a few numpy calls a line instead of a dozen a position)."""
        k, n = y.shape
        outputs = [self.output(tok) for tok in x_ids]
        if any(idx.size == 0 for idx, _ in outputs):
            return np.full(k, -np.inf)
        logp = _segment_log_softmax([h[:, t] @ out_t for t, (_, out_t) in enumerate(outputs)], joined=True)
        # each sequence's character as a column of the joined rows: position t's allowed ids, offset by t · V
        vocab = self.emb.shape[0]
        keys = np.concatenate([idx + t * vocab for t, (idx, _) in enumerate(outputs)])
        want = y + np.arange(n) * vocab
        col = np.minimum(np.searchsorted(keys, want), keys.size - 1)
        picked = np.take_along_axis(logp, col.reshape(k, n), axis=1) if k else np.zeros((0, n), np.float32)
        ok = keys[col] == want
        return np.where(ok.all(axis=1), picked.astype(np.float64).sum(axis=1), -np.inf)

    def _output(self, token: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.allowed[token]
        return idx, np.ascontiguousarray(self.emb[idx].T)

    def steps(self, x_ids: list[int], width: int, int8: bool = False) -> "OnnxSteps":
        return OnnxSteps(self, x_ids, width, int8)

    def score(self, x_ids: list[int], ys: list[list[int]], int8: bool = False, fuse=None) -> list[float]:
        """Log-probability of each character sequence in ``ys`` (each as long as ``x_ids``): the numbers
        ``beam_search`` gives those sequences (within float rounding), from one whole-decoder call."""
        return self.rank(self.encode(x_ids, int8), x_ids, np.asarray(ys, dtype=np.int64), int8, fuse).tolist()


class OnnxSteps:
    """``engine.runtime.decoder``'s Steps on ONNX Runtime for one input: the encoder graph once, then per position the
    step graph for the whole beam, its self-attention keys/values in one numpy buffer."""

    def __init__(self, backend: OnnxBackend, x_ids: list[int], width: int, int8: bool = False):
        self.backend, self.x_ids = backend, x_ids
        self.step = backend.session("step", int8)
        self.enc_in, self.cross = backend.encode(x_ids, int8)[:2]
        self.kv = np.empty((backend.layers, 2, width, backend.heads, len(x_ids), backend.dh), dtype=np.float32)

    def restore(self, state: BeamState) -> None:
        self.kv[:, :, : state.hyps.shape[0], :, : state.length] = np.asarray(state.kv)

    def scores(self, t: int, hyps: np.ndarray, prev: np.ndarray):
        idx, out_t = self.backend.output(self.x_ids[t])
        if idx.size == 0:
            return idx, None
        b = prev.shape[0]
        logp, new = self.step.run(None, {"x": self.backend.emb[prev] + self.enc_in[t],
                                         "past": self.kv[:, :, :b, :, :t].copy(), "cross": self.cross,
                                         "out_t": out_t})
        self.kv[:, :, :b, :, t] = new[:, :, :, :, 0]
        return idx, logp

    def follow(self, src: np.ndarray, cols: np.ndarray, t: int) -> None:
        self.kv[:, :, : src.shape[0], :, : t + 1] = self.kv[:, :, src, :, : t + 1]

    def snapshot(self, k: int, t: int) -> np.ndarray:
        return self.kv[:, :, :k, :, : t + 1].copy()


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    return logits - (top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)))


def _segment_log_softmax(logits: list[np.ndarray], joined: bool = False):
    """``_log_softmax`` of each block of ``logits`` (each (k, n_i), side by side along the last axis), in one
    pass over them all: a list of blocks, or (``joined``) one (k, Σ n_i) array. A block with no columns stays
    empty."""
    sizes = [b.shape[1] for b in logits]
    cat = np.concatenate(logits, axis=1)
    starts = np.cumsum([0] + sizes[:-1])
    live = np.array(sizes) > 0
    if not live.all():  # reduceat cannot take empty blocks: reduce over the others
        starts = starts[live]
    top = np.maximum.reduceat(cat, starts, axis=1) if cat.shape[1] else np.zeros((cat.shape[0], 0), cat.dtype)
    counts = np.array(sizes)[live]
    shifted = cat - np.repeat(top, counts, axis=1)
    lse = np.log(np.add.reduceat(np.exp(shifted), starts, axis=1)) if cat.shape[1] else top
    out = shifted - np.repeat(lse, counts, axis=1)
    if joined:
        return out
    bounds = np.cumsum([0] + sizes)
    return [out[:, a:b] for a, b in zip(bounds[:-1], bounds[1:])]
