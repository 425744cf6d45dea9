"""How fast training runs against what the hardware could do: model FLOPs per trained token and the device's peak,
so that tokens/s becomes a model FLOPs utilisation (MFU). Used by ``trainer.gpu_run`` and
``benchmarks/train_throughput.py``.
"""

from __future__ import annotations

import time

import torch

GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "RTX 4090": 165e12, "A10": 125e12}


def flops_per_token(cfg, src_len: int, tgt_len: int) -> float:
    """Forward matmul FLOPs per target token (2 per multiply-add), ×3 for forward + backward."""
    d, f = cfg.d_model, cfg.d_ff
    enc_layer = src_len * (2 * 4 * d * d + 2 * 2 * d * f) + 2 * 2 * src_len * src_len * d
    dec_layer = tgt_len * (2 * 4 * d * d + 2 * 2 * d * f) + 2 * 2 * tgt_len * tgt_len * d  # self-attention
    dec_layer += tgt_len * 2 * 2 * d * d + src_len * 2 * 2 * d * d + 2 * 2 * tgt_len * src_len * d  # cross
    per_sequence = cfg.n_enc * enc_layer + cfg.n_dec * dec_layer + tgt_len * 2 * d * 64  # restricted output (~64 chars)
    return 3 * per_sequence / tgt_len


def peak_flops(device: torch.device) -> tuple[float, str]:
    """The device's peak FLOP/s in the dtype a training step computes in, and where the number comes from: a
    GPU's datasheet (bf16 dense), or on a CPU measured here with a large matrix product."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in GPU_PEAK_BF16.items():
            if key in name:
                return peak, f"{name} datasheet bf16 dense"
        return float("nan"), f"{name}: peak unknown"
    from trainer.pretrain import cpu_bf16_is_fast

    dtype = torch.bfloat16 if cpu_bf16_is_fast() else torch.float32  # what a training step computes in here
    n = 2048
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b
    t0, reps = time.perf_counter(), 5
    for _ in range(reps):
        a @ b
    dt = time.perf_counter() - t0
    name = "bf16" if dtype == torch.bfloat16 else "fp32"
    return 2 * n**3 * reps / dt, f"measured: {n}×{n} {name} matmul on {torch.get_num_threads()} threads"
