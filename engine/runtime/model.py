"""The pinyin → 汉字 model: a small Transformer encoder-decoder, in one readable file.

Input: one token per typed syllable: a full syllable (``zhong``), an initial typed alone (``zh``, an
abbreviation) or an unfinished syllable (``zho``, only last). Output: one character per input token.

* Encoder: token + position embeddings → ``n_enc`` pre-LN Transformer blocks (bidirectional).
* Decoder: at step t its input is the previous character's embedding + position t + the encoder state at t
  (input and output are aligned one-to-one, so step t is told directly which syllable it spells); then
  ``n_dec`` blocks of causal self-attention, cross-attention over the whole encoder output and an MLP.
* Output: logits over the character vocabulary (tied to the decoder's character embeddings), restricted at
  every step to the characters the input token can spell (``allowed``): a character is never proposed for a
  syllable it cannot be read as. Training can use the same restriction (``restrict_train``).
* Emission head (optional, ``cfg.emission_head``): a residual MLP over each encoder position whose output,
  against the same character embeddings, gives p(character | whole pinyin input) per position with no
  decoder: the cheap first pass of whole-line conversion (``engine.runtime.two_pass``), which the decoder then
  rescores. Trained beside the decoder (``emission_loss``), or alone on a finished model (``pretrain
  --head-only``).
* Incremental decoding: ``DecoderCache`` keeps self-attention keys/values per layer and the cross-attention
  keys/values (computed once per input), so each new character costs one position.

Weights are saved as safetensors plus ``config.json`` (with ``FORMAT_VERSION``, the input token list and the
character list), never pickled.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.runtime.model_spec import (  # noqa: F401 (re-exported: the vocabularies and config live there)
    BOS, FORMAT_VERSION, N_SPECIAL_CHARS, PAD, SIZES, ModelConfig, char_vocab, input_tokens, read_config, token_for,
    token_syllables,
)

# ---------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) → (B, H, T, D/H)
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.heads(k), self.heads(v)

    def forward(self, x, k, v, mask=None, causal=False):
        q = self.heads(self.q(x))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.down(F.gelu(self.up(x))))


class EncoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.d_model), Attention(cfg)
        self.ln2, self.mlp = nn.LayerNorm(cfg.d_model), MLP(cfg)

    def forward(self, x, pad_mask):
        h = self.ln1(x)
        k, v = self.attn.keys_values(h)
        x = x + self.attn(h, k, v, mask=pad_mask)
        return x + self.mlp(self.ln2(x))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1, self.self_attn = nn.LayerNorm(cfg.d_model), Attention(cfg)
        self.ln2, self.cross_attn = nn.LayerNorm(cfg.d_model), Attention(cfg)
        self.ln3, self.mlp = nn.LayerNorm(cfg.d_model), MLP(cfg)

    def forward(self, x, cross_kv, pad_mask, cache: "LayerCache | None" = None):
        h = self.ln1(x)
        k, v = self.self_attn.keys_values(h)
        if cache is None:
            x = x + self.self_attn(h, k, v, causal=True)
        else:  # incremental: x holds the new positions only
            cache.k = k if cache.k is None else torch.cat([cache.k, k], dim=2)
            cache.v = v if cache.v is None else torch.cat([cache.v, v], dim=2)
            x = x + self.self_attn(h, cache.k, cache.v)
        k, v = cross_kv
        if k.shape[0] != x.shape[0]:  # one input shared by every beam hypothesis: broadcast, don't copy
            k, v = k.expand(x.shape[0], -1, -1, -1), v.expand(x.shape[0], -1, -1, -1)
        x = x + self.cross_attn(self.ln2(x), k, v, mask=pad_mask)
        return x + self.mlp(self.ln3(x))


class EmissionHead(nn.Module):
    """Encoder output (B, T, D) → per-position features (B, T, D), scored against the character embeddings."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.mlp, self.ln = MLP(cfg), nn.LayerNorm(cfg.d_model)

    def forward(self, enc):
        return self.ln(enc + self.mlp(enc))


@dataclass
class LayerCache:
    k: torch.Tensor | None = None
    v: torch.Tensor | None = None


@dataclass
class DecoderCache:
    """What incremental decoding keeps between steps, for a batch (or beam) of hypotheses."""

    enc: torch.Tensor  # (B, T, D) encoder output
    cross: list[tuple[torch.Tensor, torch.Tensor]]  # per layer cross-attention K, V
    pad_mask: torch.Tensor | None
    layers: list[LayerCache] = field(default_factory=list)
    pos: int = 0

    def select(self, index: torch.Tensor) -> "DecoderCache":
        """Keep hypotheses ``index`` (beam reordering). A batch-1 encoder output is shared by all hypotheses
        of one input and is not copied."""
        pick = lambda t: t.index_select(0, index)  # noqa: E731
        shared = self.enc.shape[0] == 1
        return DecoderCache(
            enc=self.enc if shared else pick(self.enc),
            cross=self.cross if shared else [(pick(k), pick(v)) for k, v in self.cross],
            pad_mask=None if self.pad_mask is None or shared else pick(self.pad_mask),
            layers=[LayerCache(pick(c.k), pick(c.v)) for c in self.layers], pos=self.pos)


# ---------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------

class PinyinModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d = cfg.d_model
        self.in_emb = nn.Embedding(cfg.n_inputs, d, padding_idx=0)
        self.enc_pos = nn.Embedding(cfg.max_len, d)
        self.enc_blocks = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_enc))
        self.enc_ln = nn.LayerNorm(d)
        self.char_emb = nn.Embedding(cfg.n_chars, d, padding_idx=PAD)
        self.dec_pos = nn.Embedding(cfg.max_len, d)
        self.enc_to_dec = nn.Linear(d, d)
        self.dec_blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_dec))
        self.dec_ln = nn.LayerNorm(d)
        self.emit = EmissionHead(cfg) if cfg.emission_head else None
        self.drop = nn.Dropout(cfg.dropout)
        # allowed[input token, char]: which characters a token may be converted to. Set by set_allowed().
        self.register_buffer("allowed", torch.ones(cfg.n_inputs, cfg.n_chars, dtype=torch.bool), persistent=False)
        self._allowed_cache: dict[int, torch.Tensor] = {}
        self.apply(self._init)
        if self.emit is not None:  # starts as the identity plus a LayerNorm
            nn.init.zeros_(self.emit.mlp.down.weight)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def set_allowed(self, allowed: torch.Tensor) -> None:
        if allowed.shape != (self.cfg.n_inputs, self.cfg.n_chars):
            raise ValueError(f"allowed matrix has shape {tuple(allowed.shape)}, expected "
                             f"{(self.cfg.n_inputs, self.cfg.n_chars)}")
        self.allowed = allowed.to(device=self.allowed.device, dtype=torch.bool)
        self._allowed_cache = {}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- encoder -------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (B, T) input token ids (0 = padding) → encoder output (B, T, D) and the key padding mask."""
        t = x.shape[1]
        if t > self.cfg.max_len:
            raise ValueError(f"input of {t} syllables is longer than the model's {self.cfg.max_len}")
        pad = x.eq(0)
        if torch.compiler.is_compiling():  # no data-dependent branch in a compiled graph (a full mask is the same)
            mask = (~pad)[:, None, None, :]
        else:
            mask = None if not bool(pad.any()) else (~pad)[:, None, None, :]
        h = self.drop(self.in_emb(x) + self.enc_pos.weight[:t])
        for block in self.enc_blocks:
            h = block(h, mask)
        return self.enc_ln(h), mask

    def _cross_kv(self, enc: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [b.cross_attn.keys_values(enc) for b in self.dec_blocks]

    def _dec_input(self, prev: torch.Tensor, enc_slice: torch.Tensor, start: int) -> torch.Tensor:
        t = prev.shape[1]
        return self.drop(self.char_emb(prev) + self.dec_pos.weight[start:start + t] + self.enc_to_dec(enc_slice))

    def _logits(self, states: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        logits = states @ self.char_emb.weight.t()
        if x is not None:
            logits = logits.masked_fill(~self.allowed[x], float("-inf"))
        return logits

    # -- training / scoring --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, y: torch.Tensor, restrict: bool = True) -> torch.Tensor:
        """Teacher-forced logits (B, T, n_chars) for targets y (B, T); padding positions have y = PAD."""
        enc, mask = self.encode(x)
        return self.teacher_forced(enc, mask, x, y, restrict)

    def teacher_forced(self, enc: torch.Tensor, mask: torch.Tensor | None, x: torch.Tensor, y: torch.Tensor,
                       restrict: bool = True, prev: torch.Tensor | None = None) -> torch.Tensor:
        """``forward`` from an encoder output already computed. ``prev``: the decoder's input characters
        (default: BOS then ``y`` shifted, the reference)."""
        return self._logits(self.decoder_states(enc, mask, y, prev), x if restrict else None)

    def decoder_states(self, enc: torch.Tensor, mask: torch.Tensor | None, y: torch.Tensor,
                       prev: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's final (normalised) states (B, T, D) for targets ``y``, teacher-forced: what the output
        layer scores against the character embeddings (``teacher_forced``, ``nll``)."""
        if prev is None:
            prev = torch.cat([torch.full_like(y[:, :1], BOS), y[:, :-1]], dim=1)
        h = self._dec_input(prev, enc, 0)
        cross = self._cross_kv(enc)
        for block, kv in zip(self.dec_blocks, cross):
            h = block(h, kv, mask)
        return self.dec_ln(h)

    def nll(self, states: torch.Tensor, x: torch.Tensor, y: torch.Tensor, restrict: bool = True) -> torch.Tensor:
        """Mean cross-entropy of targets ``y`` (B, T; PAD = none) given output states (B, T, D) scored against the
        character embeddings. With ``restrict`` the softmax runs over the characters each input token allows,
        as decoding does; it is computed token by token (the positions reading one input token share one small
        product against that token's characters, a few dozen on average) instead of against all ``n_chars`` and
        masked: the same loss, without the full (positions × n_chars) logits that dominated a training step. A
        target its token does not allow has no probability under the restriction and is left out."""
        if not restrict or torch.compiler.is_compiling():
            # (a compiled objective takes the masked full softmax: the same loss, without the loop over tokens
            # that would be unrolled and recompiled for every batch)
            logits = self._logits(states, x if restrict else None)
            if restrict:
                y = torch.where(self.allowed[x, y], y, PAD)
            return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1), ignore_index=PAD)
        keep = y.ne(PAD) & self.allowed[x, y]
        x, y, states = x[keep], y[keep], states[keep]
        if y.numel() == 0:
            return states.sum() * 0.0
        order = torch.argsort(x, stable=True)
        x, y, states = x[order], y[order], states[order]
        tokens, counts = torch.unique_consecutive(x, return_counts=True)
        ids = [self.allowed_ids(t) for t in tokens.tolist()]
        # embedding lookups, not weight[ids]: their gradient sums the rows of a repeated character in a fixed
        # order (indexing's accumulates with atomics across threads, so a resumed run drifted from an
        # uninterrupted one)
        weights = torch.split(F.embedding(torch.cat(ids), self.char_emb.weight), [len(i) for i in ids])
        groups = torch.split(states, counts.tolist())
        norm = torch.cat([torch.logsumexp((h @ w.t()).float(), dim=-1) for h, w in zip(groups, weights)])
        target = (states * F.embedding(y, self.char_emb.weight)).sum(-1).float()
        return (norm - target).mean()

    def emissions(self, x: torch.Tensor, enc: torch.Tensor | None = None) -> torch.Tensor:
        """The emission head's logits (B, T, n_chars) for inputs x (B, T), restricted to each token's characters."""
        if enc is None:
            enc, _ = self.encode(x)
        logits = self._emission_states(enc) @ self.char_emb.weight.t()
        return logits.masked_fill(~self.allowed[x], float("-inf"))

    def _emission_states(self, enc: torch.Tensor) -> torch.Tensor:
        if self.emit is None:
            raise ValueError("this model has no emission head")
        return self.emit(enc)

    def emission_loss(self, x: torch.Tensor, y: torch.Tensor, enc: torch.Tensor | None = None) -> torch.Tensor:
        if enc is None:
            enc, _ = self.encode(x)
        return self.nll(self._emission_states(enc), x, y)

    def mlm_loss(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The encoder's masked-language-model loss (encoder pretraining): the encoder reads ``x``, an input
        with some syllables masked, and each masked position predicts its syllable ``target`` (B, T; 0 where
        nothing was masked) over the input vocabulary, scored against the input embeddings (tied, so the
        objective adds no weights)."""
        enc, _ = self.encode(x)
        logits = enc @ self.in_emb.weight.t()
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)

    def contrastive_loss(self, x: torch.Tensor, y: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
        """The seed's contrastive encoder pretraining, sentence-level InfoNCE (as CLIP pairs images and
        captions): each input's pinyin, read by the encoder and averaged over its positions, must be closer (cosine,
        over ``temperature``) to its own text's average character embedding (the tied output embeddings) than to
        every other text of the batch, and each text to its own pinyin (both directions averaged)."""
        enc, _ = self.encode(x)
        keep = (x != PAD).unsqueeze(-1).to(enc.dtype)
        reads = (enc * keep).sum(1) / keep.sum(1).clamp(min=1)
        ykeep = (y != PAD).unsqueeze(-1).to(enc.dtype)
        texts = (self.char_emb(y) * ykeep).sum(1) / ykeep.sum(1).clamp(min=1)
        sim = F.normalize(reads.float(), dim=-1) @ F.normalize(texts.float(), dim=-1).t() / temperature
        target = torch.arange(sim.shape[0], device=sim.device)
        return (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target)) / 2

    def loss(self, x: torch.Tensor, y: torch.Tensor, restrict: bool = True) -> torch.Tensor:
        enc, mask = self.encode(x)
        return self.nll(self.decoder_states(enc, mask, y), x, y, restrict)

    # -- incremental decoding ------------------------------------------------------------------------------
    def start(self, x: torch.Tensor) -> DecoderCache:
        enc, mask = self.encode(x)
        return DecoderCache(enc, self._cross_kv(enc), mask, [LayerCache() for _ in self.dec_blocks], 0)

    def _step_hidden(self, cache: DecoderCache, prev: torch.Tensor) -> torch.Tensor:
        pos = cache.pos
        h = self._dec_input(prev[:, None], cache.enc[:, pos:pos + 1], pos)
        for block, kv, lc in zip(self.dec_blocks, cache.cross, cache.layers):
            h = block(h, kv, cache.pad_mask, lc)
        cache.pos += 1
        return self.dec_ln(h[:, 0])

    def step(self, cache: DecoderCache, prev: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """One decoding step for every hypothesis: prev (B,) last chars, x_t (B,) this position's input tokens
        → log-probabilities (B, n_chars), restricted to the characters x_t may spell. Advances the cache."""
        logits = self._step_hidden(cache, prev) @ self.char_emb.weight.t()
        return F.log_softmax(logits.masked_fill(~self.allowed[x_t], float("-inf")).float(), dim=-1)

    def step_token(self, cache: DecoderCache, prev: torch.Tensor, token: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Like ``step`` when every hypothesis reads the same input token (beam search over one input): scores
        only the characters that token can spell. Returns log-probabilities (B, n) and their char ids (n,)."""
        idx = self.allowed_ids(token)
        logits = self._step_hidden(cache, prev) @ self.char_emb.weight[idx].t()
        return F.log_softmax(logits.float(), dim=-1), idx

    def allowed_ids(self, token: int) -> torch.Tensor:
        """The ids of the characters input token ``token`` may become (cached per token)."""
        cached = self._allowed_cache.get(token)
        if cached is None:
            cached = self._allowed_cache[token] = self.allowed[token].nonzero().flatten()
        return cached


# ---------------------------------------------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------------------------------------------

def save_model(model: PinyinModel, directory: Path | str, chars: list[str], extra: dict | None = None) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` atomically (temp files + rename)."""
    import os

    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    meta = {"format_version": FORMAT_VERSION, "model": asdict(model.cfg), "input_tokens": input_tokens(),
            "chars": chars, **(extra or {})}
    tmp_w, tmp_c = directory / "model.safetensors.tmp", directory / "config.json.tmp"
    save_file(state, str(tmp_w), metadata={"format_version": str(FORMAT_VERSION)})
    with open(tmp_c, "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    with open(tmp_w, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp_w, directory / "model.safetensors")
    os.replace(tmp_c, directory / "config.json")


def load_model(directory: Path | str, device: str | torch.device = "cpu") -> tuple[PinyinModel, dict]:
    """Load a saved model (safetensors only; never unpickles). Returns the model in eval mode and its config."""
    from safetensors.torch import load_file

    meta = read_config(directory)
    model = PinyinModel(meta["model"])
    state = load_file(str(Path(directory) / "model.safetensors"), device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"model weights in {directory} do not match its config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    model.to(device)
    model.eval()
    return model, meta


def allowed_matrix(chars: list[str], readings: dict[str, tuple[str, ...]]) -> torch.Tensor:
    """(n_inputs, n_chars) bool: may input token i be converted to character j (by any reading of j)."""
    tokens = input_tokens()
    by_syllable: dict[str, list[int]] = {}
    for j, ch in enumerate(chars):
        for syl in readings.get(ch, ()):
            by_syllable.setdefault(syl, []).append(j)
    allowed = torch.zeros(len(tokens), len(chars), dtype=torch.bool)
    for i, tok in enumerate(tokens[1:], start=1):
        for syl in token_syllables(tok):
            idx = by_syllable.get(syl)
            if idx:
                allowed[i, idx] = True
    allowed[:, :N_SPECIAL_CHARS] = False
    allowed[0, PAD] = True  # padding positions predict padding (never scored)
    return allowed


