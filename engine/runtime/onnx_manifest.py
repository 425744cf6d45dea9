"""The manifest of a model's ONNX export (``model_dir/onnx/export.json``): which export format wrote it and from
which weights, so a stale or half-written export is never run. Written by ``engine.runtime.onnx_export``, read by
``engine.runtime.onnx_backend`` and ``engine.personal.files``; no torch, no ONNX Runtime here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

EXPORT_VERSION = 4  # 2: int8 graphs too; 3: the smaller step graph; 4: the whole-decoder graph, emission features


def checksum(directory: Path | str) -> str:
    h = hashlib.sha256()
    with open(Path(directory) / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def is_current(model_dir: Path | str) -> bool:
    meta = Path(model_dir) / "onnx" / "export.json"
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == EXPORT_VERSION and info.get("model") == checksum(model_dir)


def write(out_dir: Path, model_dir: Path | str) -> None:
    """The manifest of an export written into ``out_dir`` from the weights in ``model_dir`` (written last)."""
    (Path(out_dir) / "export.json").write_text(json.dumps({"version": EXPORT_VERSION, "model": checksum(model_dir)}))
