"""Training checkpoints: model, optimizer and loop state, written atomically, never pickled.

A checkpoint is a folder: ``model.safetensors``, ``optim.safetensors`` (every optimizer tensor, plus the torch
RNG state as a uint8 tensor) and ``state.json`` (step, counters, optimizer hyper-parameters). It is written into
``checkpoint.tmp`` with every file fsynced, then swapped in by renames (``checkpoint`` → ``checkpoint.old``,
``checkpoint.tmp`` → ``checkpoint``), so a kill at any moment leaves a complete checkpoint: ``load`` falls
back to ``checkpoint.old`` when the swap was interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

NAME = "checkpoint"


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save(out_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> Path:
    out_dir = Path(out_dir)
    tmp, final, old = out_dir / f"{NAME}.tmp", out_dir / NAME, out_dir / f"{NAME}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    opt = optimizer.state_dict()
    tensors = {"rng.torch": torch.get_rng_state()}
    scalars: dict[str, dict] = {}
    for idx, pstate in opt["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    save_file(tensors, str(tmp / "optim.safetensors"))
    meta = {"state": state, "param_groups": opt["param_groups"], "scalars": scalars}
    with open(tmp / "state.json", "w", encoding="utf-8") as f:
        json.dump(meta, f)
    for p in tmp.iterdir():
        _fsync(p)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find(out_dir: Path) -> Path | None:
    """The newest complete checkpoint in ``out_dir``, if any."""
    for name in (NAME, f"{NAME}.old"):
        p = Path(out_dir) / name
        if (p / "state.json").exists() and (p / "model.safetensors").exists() and (p / "optim.safetensors").exists():
            return p
    return None


def load(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model and optimizer from a checkpoint folder; returns the saved loop state."""
    meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
    model.load_state_dict(load_file(str(path / "model.safetensors"), device="cpu"))
    tensors = load_file(str(path / "optim.safetensors"), device="cpu")
    torch.set_rng_state(tensors.pop("rng.torch"))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for idx, extra in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta["state"]
