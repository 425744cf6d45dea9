"""What the model runtimes share (``engine.decoder.TorchBackend`` in PyTorch, ``engine.onnx_decoder.OnnxBackend``
on ONNX Runtime), so ``engine.converter.Converter`` and the searches can use either: the beam's state that a
keystroke resumes from, and the per-token cache of the characters a token allows.

A backend offers ``beam_search(x_ids, beam, top, resume, trace, trace_from, int8, fuse, gap)``, ``score`` and,
with an emission head, ``emissions`` and ``rank`` for ``engine.two_pass``; ``chars``, ``allowed``,
``num_params`` describe the model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

OUTPUT_CACHE_BYTES = 6 << 20  # per backend: cached embeddings of the characters each token allows


class OutputCache:
    """Per input token: (the ids of the characters it may become, their embeddings transposed (D, n)), as
    ``build(token)`` makes them (torch tensors or numpy arrays). Kept for the most recently used tokens, since
    gathering thousands of rows for an initial every step is not free; bounded in bytes, since initials
    allow thousands of characters."""

    def __init__(self, build, max_bytes: int = OUTPUT_CACHE_BYTES):
        self.build, self.max_bytes = build, max_bytes
        self._items: OrderedDict[int, tuple[Any, Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, token: int) -> tuple[Any, Any]:
        with self._lock:  # whole-line conversion ranks on two threads at once (engine.two_pass)
            hit = self._items.get(token)
            if hit is None:
                hit = self._items[token] = self.build(token)
                self._bytes += hit[1].nbytes
                while self._bytes > self.max_bytes:
                    self._bytes -= self._items.popitem(last=False)[1][1].nbytes
            else:
                self._items.move_to_end(token)
            return hit


@dataclass
class BeamState:
    """The beam after position ``len - 1``: hypotheses (k, len), their scores and the decoder's self-attention
    keys/values for those positions, all layers in one array (layers, 2, k, H, len, dh). Torch tensors or
    numpy arrays, as the backend that made it uses."""
    hyps: Any
    scores: Any
    kv: Any

    @property
    def length(self) -> int:
        return self.hyps.shape[1]
