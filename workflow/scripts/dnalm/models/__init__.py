"""Sequence models: BPNet and BERT-style DNA language models, built from their config blocks."""

from __future__ import annotations

import torch

from dnalm.models.bpnet import BPNet


def build_model(arch: str, n_channels: int, params: dict, bin_size: int | None = None) -> torch.nn.Module:
    """Build an untrained model.

    Args:
        arch: Architecture name from the config (`bpnet` or `lm`).
        n_channels: Output channels of the task.
        params: The architecture's config block (for `lm`, as `dnalm.models.lm.build_lm` takes it).
        bin_size: Tracks tasks: the model outputs one log-rate per channel and bin (`BinnedTracks`).

    Returns:
        The model.
    """
    if bin_size is not None:
        from dnalm.models.binned import BinnedTracks

        return BinnedTracks(build_model(arch, n_channels, params), bin_size)
    if arch == "bpnet":
        return BPNet(n_channels, **params)
    if arch == "lm":
        from dnalm.models.lm import build_lm

        return build_lm(n_channels, params)
    raise ValueError(f"unknown model arch {arch!r}; known: bpnet, lm")
