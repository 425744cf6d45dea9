"""The model runtimes' one interface (``engine.runtime.torch_backend.TorchBackend`` in PyTorch,
``engine.runtime.onnx_backend.OnnxBackend`` on ONNX Runtime), so ``engine.ime.converter.Converter`` and the searches use
either, and what they share: the per-token cache of the characters a token allows.

A backend implements ``steps(x_ids, width, int8)`` (the decoder's side of ``engine.runtime.decoder``'s one beam
search), ``score`` and, with an emission head, ``emissions`` and ``rank`` for ``engine.runtime.two_pass``; ``chars``,
``max_len``, ``has_head``, ``num_params`` describe the model. ``Backend.beam_search`` runs the search.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from engine.runtime import decoder
from engine.runtime.decoder import BeamState

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
        with self._lock:  # whole-line conversion ranks on two threads at once (engine.runtime.two_pass)
            hit = self._items.get(token)
            if hit is None:
                hit = self._items[token] = self.build(token)
                self._bytes += hit[1].nbytes
                while self._bytes > self.max_bytes:
                    self._bytes -= self._items.popitem(last=False)[1][1].nbytes
            else:
                self._items.move_to_end(token)
            return hit


class Backend:
    """What a runtime implements (see the module's docstring); the beam search is written once, here and in
    ``engine.runtime.decoder``."""

    name = "?"
    chars: list[str]
    has_head = False

    def steps(self, x_ids: list[int], width: int, int8: bool = False):
        """The decoder's ``engine.runtime.decoder`` Steps for one input, room for ``width`` hypotheses."""
        raise NotImplementedError

    def beam_search(self, x_ids: list[int], beam: int = 8, top: int = 5, resume: BeamState | None = None,
                    trace: dict[int, BeamState] | None = None, trace_from: int = 0, int8: bool = False,
                    fuse=None, gap: float | None = None) -> list[tuple[list[int], float]]:
        """Best ``top`` character-id sequences for input token ids ``x_ids`` with their log-probabilities
        (``engine.runtime.decoder.search``: ``resume``/``trace`` reuse beams across keystrokes, ``fuse`` mixes the LMs
        into each step, ``gap`` prunes by score). ``int8``: the int8-weight decoder."""
        if not x_ids:
            return []
        width = max(beam, 0 if resume is None else resume.hyps.shape[0])
        return decoder.beam_search(self.steps(x_ids, width, int8), len(x_ids), beam, top, resume=resume,
                                   trace=trace, trace_from=trace_from, fuse=fuse, gap=gap)
