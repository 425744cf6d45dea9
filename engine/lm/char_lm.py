"""The corpus character n-gram model, mixed into every step of the Transformer's beam search (shallow fusion).

The Transformer ranks; this remembers. It is a Kneser-Ney character 4-gram over the same corpus the model
was trained on (built by ``trainer.ngram``, shipped as ``assets/model/char_lm.safetensors``), stored in
backoff form as sorted int64 keys, so one step's lookup for every order × hypothesis × allowed character is
one ``np.searchsorted`` call (and one more for the contexts' backoff weights). At each step

    score(c) = log p_model(c | pinyin, prefix) + weight · log p_lm(c | last 3 characters)

(``normalize`` would renormalise ``p_lm`` over the characters the position's pinyin allows, so it only
reorders what the keys allow; off, since on dev the raw probability, which also says how likely the position
is as a whole after the prefix, is 9 points better). numpy only: the typing path
loads it without torch. It keeps its own character list, mapped onto the model's at load, so any model
(personal, retrained) can use it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.runtime.model_spec import BOS

FORMAT = "pinyin-ime-char-lm-2"
WEIGHT = 0.8  # held-out shards (crosswoz, leetcode, thucnews titles; LM without the shard, word LM on): top-1 0.5: 60.4, 0.65: 61.0, 0.8: 61.2, 1.0: 60.5, 1.2: 60.2% on average
NORMALIZE = False  # raw log p_lm: 61.5% top-1 on 400 dev lines against 52.3% renormalised over the allowed characters
FILE_NAME = "char_lm.safetensors"
CACHE_ROWS = 20_000  # beam-step answers kept between steps and keystrokes (a few MB)


class _Table:
    """One order as stored: sorted keys, uint8 codes of the log-probabilities and (below the top order) of the
    backoff weights, each decoded by a 256-entry table. ``CharLM`` merges the orders into its combined arrays
    at load."""

    def __init__(self, tensors: dict[str, np.ndarray], k: int, top: bool):
        self.keys = tensors[f"keys{k}"]  # int32 or int64 as stored: widened where they are copied
        self.logp_codes, self.logp_lut = tensors[f"logp{k}"], self._lut(tensors[f"logp{k}_scale"])
        self.bow_codes = None if top else tensors[f"bow{k}"]
        self.bow_lut = None if top else self._lut(tensors[f"bow{k}_scale"])

    def __len__(self) -> int:
        return self.keys.size

    @staticmethod
    def _lut(scale: np.ndarray) -> np.ndarray:
        lo, step = (float(v) for v in scale)
        return (lo + step * np.arange(256)).astype(np.float32)


class CharLM:
    """The LM in memory, ready for one beam step's lookups. Every order's n-grams live in one sorted array
    (the order in the key's top bits), so a step looks up all orders × hypotheses × allowed characters in one
    ``np.searchsorted``, and all contexts' backoff weights in another: a handful of numpy calls a step, not a
    few per order."""

    TAG = 58  # the order sits above this bit in a combined key

    def __init__(self, tensors: dict[str, np.ndarray], lm_chars: list[str], model_chars: list[str],
                 order: int, bits: int, weight: float = WEIGHT, normalize: bool = NORMALIZE):
        self.order, self.bits = order, bits
        self.weight, self.normalize = weight, normalize
        tables = {k: _Table(tensors, k, k == order) for k in range(1, order + 1)}
        ids = tables[1].keys
        self.floor = tables[1].logp_lut[0]
        self.uni = np.full(len(lm_chars), self.floor, dtype=np.float32)
        self.uni[ids] = tables[1].logp_lut[tables[1].logp_codes]
        self.uni_bow = np.zeros(len(lm_chars), dtype=np.float32)  # unigram contexts: dense
        self.uni_bow[ids] = tables[1].bow_lut[tables[1].bow_codes]
        self.uni_bow[BOS] = float(tensors["bos_bow"][0])
        higher, mid = range(2, order + 1), range(2, order)
        # n-grams of orders 2..N: combined keys, and per key an index into one table of decoded log-probs;
        # contexts of orders 3..N, i.e. n-grams of orders 2..N-1, with their backoff weights. Filled in place,
        # order by order, so that loading holds no second copy of the big arrays; a sentinel key last, so a
        # search never runs off the end.
        self.keys = np.empty(sum(len(tables[k]) for k in higher) + 1, dtype=np.int64)
        self.codes = np.empty(self.keys.size, dtype=np.uint16)
        self.ctx_keys = np.empty(sum(len(tables[k]) for k in mid) + 1, dtype=np.int64)
        self.ctx_bow = np.empty(self.ctx_keys.size, dtype=np.float32)
        at = ctx_at = 0
        for i, k in enumerate(higher):
            t = tables[k]
            part = slice(at, at + len(t))
            self.keys[part] = t.keys
            self.keys[part] |= np.int64(k) << self.TAG
            self.codes[part] = t.logp_codes
            self.codes[part] += i * 256
            at += len(t)
            if k in mid:
                part = slice(ctx_at, ctx_at + len(t))
                self.ctx_keys[part] = self.keys[at - len(t):at]
                np.take(t.bow_lut, t.bow_codes, out=self.ctx_bow[part])
                ctx_at += len(t)
        self.keys[at] = self.ctx_keys[ctx_at] = np.iinfo(np.int64).max
        self.codes[at], self.ctx_bow[ctx_at] = 0, 0.0
        self.lut = np.concatenate([tables[k].logp_lut for k in higher])
        # per context length m (1 .. order-1): masks for the last 1..m characters and the orders' key tags
        self._masks = {m: np.array([(1 << (bits * j)) - 1 for j in range(1, m + 1)], dtype=np.int64)
                       for m in range(1, order)}
        self._tags = {m: np.arange(2, m + 2, dtype=np.int64) << self.TAG for m in range(1, order)}
        index = {c: i for i, c in enumerate(lm_chars)}
        # model id → LM id (0: unknown to the LM; specials map to themselves)
        self.to_lm = np.array([i if i < 2 else index.get(c, 0) for i, c in enumerate(model_chars)], dtype=np.int64)
        self._allowed_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._row_cache: dict[int, tuple[np.ndarray, dict[int, np.ndarray]]] = {}  # see ``logprobs``
        self._cached_rows = 0

    @classmethod
    def load(cls, path: Path | str, model_chars: list[str], **kw) -> "CharLM":
        from safetensors import safe_open
        from safetensors.numpy import load_file

        path = Path(path)
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a character LM of format {FORMAT} (found {meta.get('format')!r})")
        order, bits = int(meta["order"]), int(meta["bits"])
        if order < 2 or order * bits > cls.TAG:
            raise ValueError(f"{path}: order {order} with {bits}-bit tokens does not fit the LM's keys")
        lm_chars = json.loads(meta["chars"])
        tensors = load_file(str(path))
        return cls(tensors, lm_chars, model_chars, order, bits, **kw)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.keys, self.codes, self.ctx_keys, self.ctx_bow, self.uni, self.uni_bow))

    def _allowed(self, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(``allowed`` as LM ids, the columns the LM does not know or None), cached per array (the backends
        reuse one array per input token)."""
        hit = self._allowed_cache.get(id(allowed))
        if hit is not None and hit[0] is allowed:
            return hit[1]
        if len(self._allowed_cache) > 1024:
            self._allowed_cache.clear()
        mapped = self.to_lm[allowed]
        unknown = np.flatnonzero(mapped == 0)
        self._allowed_cache[id(allowed)] = (allowed, (mapped, unknown if unknown.size else None))
        return mapped, (unknown if unknown.size else None)

    def logprobs(self, hyps: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """log p_lm(c | each hypothesis's last characters) for every c in ``allowed`` (model ids): (B, n).

        The context is the last ``order - 1`` characters (``<bos>`` included when the sentence start is within
        reach). Lowest order first: where an order holds the n-gram its log-probability replaces the lower
        orders' answer, else that answer pays the context's backoff weight."""
        b, t = hyps.shape
        lm_allowed, unknown = self._allowed(allowed)
        keep = min(self.order - 1, t + 1)
        hist = self.to_lm[hyps[:, t - min(keep, t):]]
        if hist.shape[1] < keep:  # the sentence start is within reach: <bos> is part of the context
            hist = np.concatenate([np.full((b, 1), BOS, dtype=np.int64), hist], axis=1)
        m = hist.shape[1]
        full = hist[:, 0]
        for j in range(1, m):
            full = (full << self.bits) | hist[:, j]
        # Hypotheses that differ only before their last order - 1 characters share one answer, and so do the
        # steps a keystroke decodes again (the same beams before the changed syllable): answers are kept per
        # allowed set and context, and only new contexts are looked up.
        rows = self._rows_for(allowed)
        keys = [k * 8 + m for k in full.tolist()]
        new = sorted({k for k in keys if k not in rows})
        if new:
            found = self._lookup(np.array([k >> 3 for k in new], dtype=np.int64), m, lm_allowed, unknown)
            rows.update(zip(new, found))
            self._cached_rows += len(new)
        return np.stack([rows[k] for k in keys])

    def _rows_for(self, allowed: np.ndarray) -> dict[int, np.ndarray]:
        """The answers kept for one allowed set (context · 8 + its length → log-probabilities), all dropped
        together when more than ``CACHE_ROWS`` are kept."""
        if self._cached_rows > CACHE_ROWS:
            self._row_cache.clear()
            self._cached_rows = 0
        hit = self._row_cache.get(id(allowed))
        if hit is None or hit[0] is not allowed:
            hit = self._row_cache[id(allowed)] = (allowed, {})
        return hit[1]

    def _lookup(self, full: np.ndarray, m: int, lm_allowed: np.ndarray, unknown: np.ndarray | None) -> np.ndarray:
        """``logprobs`` for contexts packed into ``full`` (B,), each of its last ``m`` characters."""
        ctx = full[None, :] & self._masks[m][:, None]  # (m, B): the last 1 .. m characters
        tags = self._tags[m]
        q = (tags[:, None, None] | (ctx[:, :, None] << self.bits)) | lm_allowed
        pos = np.searchsorted(self.keys, q)
        hit = self.keys[pos] == q
        lp = self.lut[self.codes[pos]]
        bow = np.empty(ctx.shape, dtype=np.float32)
        bow[0] = self.uni_bow[ctx[0]]
        if m > 1:  # contexts of 2+ characters: kept n-grams of orders 2 .. m
            cq = (tags[:-1, None] | ctx[1:])
            cpos = np.searchsorted(self.ctx_keys, cq)
            bow[1:] = np.where(self.ctx_keys[cpos] == cq, self.ctx_bow[cpos], np.float32(0))
        out = self.uni[lm_allowed]
        for i in range(m):
            out = np.where(hit[i], lp[i], out + bow[i][:, None])
        if unknown is not None:
            out[:, unknown] = self.floor
        return out

    def pair_logprobs(self, ctx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """log p(w[i] | ctx[i]) for each row, in LM ids: ``ctx`` (N, m ≤ order-1), oldest first (``BOS``
        where the sentence start is; 0 where nothing is, which ends the context there); ``w`` (N,), 0 for a
        token the LM does not know (it gets ``floor``, as in ``_lookup``). The one-target-per-row form of
        ``_lookup`` (which scores every allowed character after each context)."""
        bits = self.bits
        n, m = ctx.shape
        out = self.uni[w].astype(np.float64)
        full = np.zeros(n, dtype=np.int64)
        valid = np.ones(n, dtype=bool)
        for j in range(m):  # most recent first: ctx[:, m-1], ctx[:, m-2], ...
            c = ctx[:, m - 1 - j]
            valid &= c != 0
            if not valid.any():
                break
            full = full | (c.astype(np.int64) << (bits * j))
            packed = full & ((1 << (bits * (j + 1))) - 1)
            q = (np.int64(j + 2) << self.TAG) | (packed << bits) | w
            pos = np.searchsorted(self.keys, q)
            hit = (self.keys[pos] == q) & valid
            if j == 0:
                bow = self.uni_bow[c]
            else:
                cq = (np.int64(j + 1) << self.TAG) | packed
                cpos = np.searchsorted(self.ctx_keys, cq)
                bow = np.where(self.ctx_keys[cpos] == cq, self.ctx_bow[cpos], 0.0)
            out = np.where(hit, self.lut[self.codes[pos]], np.where(valid, out + bow, out))
        out[w == 0] = self.floor
        return out

    def sequence_logprobs(self, ys: np.ndarray) -> np.ndarray:
        """``weight`` · log p_lm of whole character sequences ``ys`` (k, T) in model ids: what ``fuse`` adds
        along each of them, in one batched lookup instead of one per position (no user cache: its mix needs
        each position's whole allowed set)."""
        k, t = ys.shape
        lm_ids = self.to_lm[ys]
        m = self.order - 1
        padded = np.concatenate([np.zeros((k, m - 1), dtype=np.int64), np.full((k, 1), BOS, dtype=np.int64), lm_ids],
                                axis=1)
        ctx = np.stack([padded[:, i:i + m] for i in range(t)], axis=1).reshape(k * t, m)
        return self.weight * self.pair_logprobs(ctx, lm_ids.reshape(-1)).reshape(k, t).sum(axis=1)

    def fuse(self, hyps: np.ndarray, allowed: np.ndarray, logp: np.ndarray, mix=None) -> np.ndarray:
        """One beam-search step (the ``fuse`` hook of the backends): ``logp`` (B, n) plus the LM's share.
        ``mix(hyps, allowed, lm_logp) -> lm_logp``: adapts the LM's answer first (the user's n-gram cache,
        ``engine.lm.user_lm.UserLM.mix``)."""
        if not self.weight or allowed.size == 0:
            return logp
        hyps = np.asarray(hyps)
        lm = self.logprobs(hyps, allowed)
        if mix is not None:
            lm = mix(hyps, allowed, lm)
        if self.normalize:
            m = lm.max(axis=1, keepdims=True)
            lm = lm - (m + np.log(np.exp(lm - m).sum(axis=1, keepdims=True)))
        return (logp + self.weight * lm).astype(logp.dtype, copy=False)


def find(model_dir: Path | str, file_name: str = FILE_NAME) -> Path | None:
    """The LM a model uses (``file_name``: this one, or ``engine.lm.word_lm``'s): the one next to it; for a
    fine-tuned (personal) model, its base model's, or the factory model's when the base has moved; None when
    there is none (the model decodes alone)."""
    model_dir = Path(model_dir)
    if (model_dir / file_name).is_file():
        return model_dir / file_name
    try:
        meta = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = (meta.get("finetune") or {}).get("base") if isinstance(meta, dict) else None
    if not base:
        return None
    from engine.lexicon import factory_model_dir

    for candidate in (Path(base), factory_model_dir()):
        if (candidate / file_name).is_file():
            return candidate / file_name
    return None


def load_for(model_dir: Path | str, model_chars: list[str]) -> tuple["CharLM | None", str]:
    """(The LM for the model in ``model_dir``, or None; a note saying why not when one exists but cannot be
    read). A damaged LM file never stops the model: it decodes alone."""
    path = find(model_dir)
    if path is None:
        return None, ""
    try:
        return CharLM.load(path, model_chars), ""
    except Exception as e:  # noqa: BLE001 — any unreadable file: decode without it, and say so
        return None, f"character LM {path} could not be read ({e}); decoding without it"
