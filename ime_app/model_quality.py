"""How accurate the model in use is as the user gets it, for the status bar: the model WITH its language models.

The figure is the share of whole lines converted right, top-1, the way the app converts them
(``trainer.finetune.line_accuracy``: ONNX Runtime, int8 weights, the model's corpus character LM and word LM),
on the general check set ``assets/personalize/general.tsv`` (1,000 lines). It is the measurement
personalization accepts a model by, so the factory model's figure and a personal model's compare.

The figure in a model's ``config.json`` (``training.dev``) is something else: the network ALONE, greedy,
without its LMs, measured by the trainer while it trained (44.0% for the shipped model, which scores 69% on
the check set with its LMs). ``network_only`` gives it with that label; it is never shown as the model's
accuracy.

Where the figure comes from, first found wins (``known``):

* a personal model's ``meta.json``: ``general_after`` (and ``after``, on the user's held-out text), measured
  when the model was accepted;
* ``general-check.json``: the cache ``trainer.finetune.general_accuracy`` keeps, keyed by the weights'
  checksum and the check set, so it cannot describe other weights: in ``<home>/models/`` (every
  personalization run writes it there) or shipped inside the model folder;
* else ``measure_command`` measures it once in a background process at the lowest priority
  (``python -m ime_app.model_quality MODEL_DIR CACHE_DIR``, about 15 s of one core and 330 MB for the shipped
  model) into the home's cache, where the next personalization run finds it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import lru_cache
from pathlib import Path

CACHE_NAME = "general-check.json"  # trainer.finetune.general_accuracy's cache file


@lru_cache(maxsize=1)
def _general() -> tuple[int, str]:
    """The check set as ``general_accuracy`` keys it: (lines, hash of their text)."""
    from trainer.user_text import GENERAL_FILE, read_lines

    lines = read_lines(GENERAL_FILE)
    return len(lines), hashlib.sha256("\n".join(t for t, _ in lines).encode()).hexdigest()[:12]


@lru_cache(maxsize=8)
def _checksum(path: str, size: int, mtime: float) -> str:
    from engine.runtime.onnx_backend import checksum

    return checksum(path)


def cache_key(model_dir: str | Path) -> str | None:
    """The key ``trainer.finetune.general_accuracy`` files this model's check under (None: no weights)."""
    weights = Path(model_dir) / "model.safetensors"
    try:
        st = weights.stat()
    except OSError:
        return None
    n, lines_key = _general()
    return f"{_checksum(str(model_dir), st.st_size, st.st_mtime)}-{n}-{lines_key}"


def _read_cache(path: Path) -> dict:
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def cache_dir(home: str | Path) -> Path:
    """Where personalization keeps its general-check cache (``<home>/models``)."""
    return Path(home) / "models"


def known(model_dir: str | Path | None, home: str | Path | None = None) -> dict:
    """What is known of the model's accuracy with its LMs: {"general": {sent_acc, char_acc, lines} or None,
    "yours": the same on the user's held-out text or None, "source": where it came from}."""
    from engine.runtime.model_spec import read_meta

    out: dict = {"general": None, "yours": None, "source": ""}
    if model_dir is None:
        return out
    meta = read_meta(model_dir)
    if meta.get("kind") == "personal":
        general, yours = meta.get("general_after"), meta.get("after")
        out["yours"] = yours if isinstance(yours, dict) and "sent_acc" in yours else None
        if isinstance(general, dict) and "sent_acc" in general:
            out.update(general=general, source="meta")
            return out
    key = cache_key(model_dir)
    if key is None:
        return out
    for where in ([cache_dir(home)] if home is not None else []) + [Path(model_dir)]:
        found = _read_cache(where / CACHE_NAME).get(key)
        if isinstance(found, dict) and "sent_acc" in found:
            out.update(general=found, source=str(where / CACHE_NAME))
            break
    return out


def network_only(model_dir: str | Path | None) -> dict | None:
    """The trainer's figure for the network without its LMs (config.json ``training.dev``), if recorded."""
    if model_dir is None:
        return None
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
        dev = config["training"]["dev"]
        return {"sent_acc": float(dev["sent_acc"]), "lines": int(dev.get("lines") or 0)}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def summary(model_dir: str | Path | None, home: str | Path | None = None) -> str:
    """The status bar's accuracy words: "general text 69.2%" (and "your text 79.3%" for a personal model)."""
    found = known(model_dir, home)
    parts = []
    if found["yours"]:
        parts.append(f"your text {found['yours']['sent_acc']:.1%}")
    if found["general"]:
        parts.append(f"general text {found['general']['sent_acc']:.1%}")
    return ", ".join(parts)


def explanation(model_dir: str | Path | None, home: str | Path | None = None) -> str:
    """What the figures mean (the status bar's tooltip)."""
    from engine.runtime.model_spec import read_meta

    found = known(model_dir, home)
    if found["general"]:
        text = ("Accuracy: sentences converted right (the first candidate) by this model with its language "
                f"models, as you get them while typing: on {found['general'].get('lines', 0):,} lines of general "
                "text")
        if found["yours"]:
            text += f" and on {found['yours'].get('lines', 0):,} held-out lines of your own text"
        text += "."
    else:
        text = "Its accuracy with its language models (what you get while typing) is not measured yet."
    alone = network_only(model_dir)
    if alone and read_meta(model_dir).get("kind") != "personal":
        text += (f" (The network alone, without its language models, scored {alone['sent_acc']:.1%} on "
                 f"{alone['lines']:,} dev lines while it trained.)")
    return text


def can_measure() -> bool:
    """A measuring process can be started: not from a frozen bundle (no Python to run the module with)."""
    return not getattr(sys, "frozen", False)


def measure_command(model_dir: str | Path, home: str | Path) -> list[str]:
    """argv of the background measurement of ``model_dir`` into ``<home>/models/general-check.json``."""
    return [sys.executable, "-m", "ime_app.model_quality", str(model_dir), str(cache_dir(home))]


def main(argv: list[str] | None = None) -> int:
    """``python -m ime_app.model_quality MODEL_DIR CACHE_DIR``: measure (at the lowest priority) and cache."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m ime_app.model_quality MODEL_DIR CACHE_DIR", file=sys.stderr)
        return 2
    if hasattr(os, "nice"):
        try:
            os.nice(19)  # typing in the window comes first
        except OSError:
            pass
    from trainer.finetune import general_accuracy
    from trainer.user_text import GENERAL_FILE, read_lines

    model_dir, where = Path(args[0]), Path(args[1])
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = general_accuracy(model_dir, read_lines(GENERAL_FILE), where)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
