"""Low-rank adapters (LoRA, Hu et al. 2021) for the model's linear layers, and merging them back.

``add_adapters(model, rank)`` freezes the model and wraps every attention and MLP projection ``W`` as
``W x + (B A x) · alpha / rank`` with trainable ``A`` (rank × in, small random) and ``B`` (out × rank, zero: the
wrapped model starts out identical). ``merge_adapters`` folds ``B A`` into ``W`` and puts plain ``nn.Linear``
layers back, so a fine-tuned model is saved, exported and decoded exactly like any other.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

TARGETS = ("q", "kv", "out", "up", "down")  # Attention.q/kv/out, MLP.up/down


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.a = nn.Parameter(torch.empty(rank, base.in_features))
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale

    def merged(self) -> nn.Linear:
        with torch.no_grad():
            self.base.weight += (self.b @ self.a) * self.scale
        return self.base


def add_adapters(model: nn.Module, rank: int = 8, alpha: float | None = None) -> list[nn.Parameter]:
    """Freeze ``model`` and wrap its projections with adapters; returns the adapters' parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = []
    for module in list(model.modules()):
        for name in TARGETS:
            child = getattr(module, name, None)
            if isinstance(child, nn.Linear):
                wrapped = LoRALinear(child, rank, alpha if alpha is not None else 2.0 * rank)
                wrapped.to(child.weight.device)
                setattr(module, name, wrapped)
                params += [wrapped.a, wrapped.b]
    return params


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold every adapter into its layer (in place); the model is a plain model again."""
    for module in list(model.modules()):
        for name in TARGETS:
            child = getattr(module, name, None)
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merged())
    for p in model.parameters():
        p.requires_grad_(True)
    return model
