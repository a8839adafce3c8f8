"""Binned track outputs: a per-base profile model's output pooled into bins, for tracks tasks."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class BinnedTracks(nn.Module):
    """Log-rate per track and bin from a profile model: its per-base profile output averaged over each bin.

    The profile output of BPNet (or an LM head) is a convolution of the trunk's per-base features, so averaging it
    over a bin equals applying that convolution to the bin-averaged features: a binned head on the pooled trunk.
    The wrapped model's count output is not used.

    Args:
        model: A model returning (profile (B, C, L), counts (B, C)) from one-hot x (B, 4, L).
        bin_size: Bases per bin; L must be a multiple of it.
    """

    def __init__(self, model: nn.Module, bin_size: int):
        super().__init__()
        self.model = model
        self.bin_size = bin_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log of the predicted (transformed) signal per bin, (B, C, L / bin_size)."""
        profile, _ = self.model(x)
        if profile.shape[-1] % self.bin_size:
            raise ValueError(f"input length {profile.shape[-1]} is not a multiple of the bin size {self.bin_size}")
        return F.avg_pool1d(profile, self.bin_size)
