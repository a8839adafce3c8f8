"""Sequence models: BPNet now; language models and heads join here."""

from __future__ import annotations

import torch

from dnalm.models.bpnet import BPNet


def build_model(arch: str, n_channels: int, params: dict) -> torch.nn.Module:
    """Build an untrained model.

    Args:
        arch: Architecture name from the config (`bpnet`).
        n_channels: Output channels of the task.
        params: The architecture's config block.

    Returns:
        The model.
    """
    if arch == "bpnet":
        return BPNet(n_channels, **params)
    raise ValueError(f"unknown model arch {arch!r}; known: bpnet")
