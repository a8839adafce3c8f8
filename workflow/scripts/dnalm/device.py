"""Where and in what arithmetic models run: the device, bf16 support, autocast."""

from __future__ import annotations

from contextlib import nullcontext

import torch

#: Values of `train.precision` (and `pretrain.<name>.precision`).
PRECISIONS = ("auto", "fp32", "bf16")


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the one asked for, else CUDA when available, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_threads(threads: int) -> None:
    """Use `threads` CPU threads in torch, and make this process's arithmetic that of every other run.

    The first `torch.sqrt` of a process may take another code path in MKL's vector maths (torch 2.13, MKL 2024.2:
    3 of 16 fresh processes returned a different last bit for the same input; later calls always agree). Adam's
    first step takes a square root, so one run of a seed could start from other weights than the next and end in a
    different model. One square root here, before any that counts, settles it.
    """
    torch.set_num_threads(max(int(threads), 1))
    torch.sqrt(torch.ones(64))


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 matrices natively: a CUDA GPU with bf16 support, or a CPU with AVX512-BF16 or
    AMX instructions (where oneDNN's bf16 products run ~2.3× the fp32 rate)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    return False


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """`fp32` or `bf16`: `auto` (or None) is bf16 where the device has native bf16 (`native_bf16`), else fp32."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str | None = None):
    """Autocast context of a forward pass: bf16 when `precision` is "bf16", none when "fp32".

    None is the rule of inference (evaluation, attribution): bf16 on CUDA, fp32 on the CPU, so CPU predictions are
    exact whatever precision the model was trained in. Weights, gradients, optimizer state and losses stay fp32.
    """
    if precision is None:
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def as_float(output):
    """A model output (a tensor or a tuple of tensors) in fp32, so losses are computed in full precision."""
    if isinstance(output, torch.Tensor):
        return output.float()
    return tuple(o.float() for o in output)
