"""What a model is, apart from its arithmetic: vocabularies, the config dataclass, reading ``config.json``.

No PyTorch here, so the typing path (ONNX Runtime) can load a model without importing torch.
``engine.runtime.model`` re-exports all of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.pinyin import INITIALS, SYLLABLES, syllables_with_prefix

FORMAT_VERSION = 1
META = "meta.json"  # what a personal model folder says of itself (kind, version, base, how it was made)
PAD, BOS = 0, 1  # character ids; input id 0 is PAD too
N_SPECIAL_CHARS = 2


# ---------------------------------------------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------------------------------------------

def input_tokens() -> list[str]:
    """The input vocabulary: PAD, every syllable, every initial, every unfinished spelling (prefix)."""
    return list(_input_tokens())


@lru_cache(maxsize=1)
def _input_tokens() -> tuple[str, ...]:  # made once: whole-line conversion asks for it per new token
    prefixes = set()
    for syl in SYLLABLES:
        for n in range(1, len(syl)):
            prefixes.add(syl[:n])
    prefixes -= set(SYLLABLES) | set(INITIALS)
    return tuple(["<pad>"] + list(SYLLABLES) + [f"{i}-" for i in INITIALS] + sorted(f"{p}~" for p in prefixes))


def token_for(kind: str, text: str) -> str:
    """Input token name for a lattice token: full syllable as is, initial ``zh-``, unfinished ``zho~``."""
    if kind == "full":
        return text
    if kind == "initial":
        return f"{text}-"
    return f"{text}~" if text not in SYLLABLES else text


def token_syllables(token: str) -> tuple[str, ...]:
    """The syllables an input token may stand for."""
    if token.endswith("-"):
        from engine.pinyin import parse

        return parse(token[:-1]).best().tokens[0].syllables
    if token.endswith("~"):
        return syllables_with_prefix(token[:-1])
    return (token,)


@dataclass
class ModelConfig:
    n_inputs: int
    n_chars: int  # output vocabulary size, specials included
    d_model: int = 192
    n_heads: int = 4
    n_enc: int = 3
    n_dec: int = 3
    d_ff: int = 768
    max_len: int = 64
    dropout: float = 0.0
    # a per-position classifier over the encoder output (``engine.runtime.model.EmissionHead``): what whole-line
    # conversion's first pass reads (``engine.runtime.two_pass``); models without one decode by beam search alone
    emission_head: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for name in ("n_inputs", "n_chars", "d_model", "n_heads", "n_enc", "n_dec", "d_ff", "max_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 0 < v <= 1_000_000:
                raise ValueError(f"model config {name}={v!r} is not a sensible positive integer")
        if self.d_model % self.n_heads:
            raise ValueError("model config: d_model must be a multiple of n_heads")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError("model config: dropout must be in [0, 1)")
        if not isinstance(self.emission_head, bool):
            raise ValueError("model config: emission_head must be true or false")


SIZES = {  # name → overrides; "small" is what the shipped model uses
    "tiny": dict(d_model=64, n_heads=2, n_enc=1, n_dec=1, d_ff=128),
    "small": dict(d_model=192, n_heads=4, n_enc=3, n_dec=3, d_ff=768),
    "base": dict(d_model=256, n_heads=4, n_enc=4, n_dec=4, d_ff=1024),
}


def read_config(directory: Path | str) -> dict:
    path = Path(directory) / "config.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no model in {directory}: config.json is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"model config {path} is corrupt ({e}); reinstall or retrain the model") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"model in {directory} has format {meta.get('format_version') if isinstance(meta, dict) else '?'}"
                         f", this app reads format {FORMAT_VERSION}: use a model built for this version")
    chars, tokens = meta.get("chars"), meta.get("input_tokens")
    if not (isinstance(chars, list) and all(isinstance(c, str) for c in chars)):
        raise ValueError(f"model config {path}: 'chars' must be a list of strings")
    if tokens != input_tokens():
        raise ValueError(f"model config {path}: its input tokens differ from this app's pinyin inventory")
    meta["model"] = ModelConfig.from_dict(meta.get("model", {}))
    if meta["model"].n_chars != len(chars) or meta["model"].n_inputs != len(tokens):
        raise ValueError(f"model config {path}: vocabulary sizes do not match the lists")
    return meta


def char_vocab(lexicon_chars) -> list[str]:
    """The output vocabulary: specials, then the lexicon's characters in a stable (code point) order."""
    return ["<pad>", "<bos>"] + sorted(lexicon_chars)


def allowed_ids(chars: list[str], readings: dict[str, tuple[str, ...]]) -> list[np.ndarray]:
    """For each input token, the ids of the characters it may become (sorted), by any reading of them; the
    list form of ``engine.runtime.model.allowed_matrix``."""
    by_syllable: dict[str, list[int]] = {}
    for j, ch in enumerate(chars):
        if j < N_SPECIAL_CHARS:
            continue
        for syl in readings.get(ch, ()):
            by_syllable.setdefault(syl, []).append(j)
    out = [np.array([PAD], dtype=np.int64)]
    for tok in input_tokens()[1:]:
        ids = sorted({j for syl in token_syllables(tok) for j in by_syllable.get(syl, ())})
        out.append(np.array(ids, dtype=np.int64))
    return out


def read_meta(model_dir: str | Path) -> dict:
    """``meta.json`` of a personal model ({} for the factory model or when there is none)."""
    try:
        meta = json.loads((Path(model_dir) / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
