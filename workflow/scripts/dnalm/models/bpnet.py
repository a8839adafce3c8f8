"""BPNet: a dilated residual CNN with a base-resolution profile head and a total-count head."""

from __future__ import annotations

import torch
from torch import nn


class BPNet(nn.Module):
    """BPNet (Avsec et al. 2021) on one-hot DNA, 'same' padding so outputs are per input base.

    Each activation is its own `nn.ReLU` module so that DeepLIFT implementations can hook every one.

    Args:
        n_outputs: Profile channels (e.g. 2 for a stranded track); the count head predicts one log count per channel.
        filters: Channels of every convolution.
        layers: Dilated residual layers; layer i has dilation 2**i.
        input_kernel: Width of the first convolution.
        profile_kernel: Width of the profile head's convolution.
    """

    def __init__(self, n_outputs: int, filters: int = 64, layers: int = 8, input_kernel: int = 21,
                 profile_kernel: int = 75):
        super().__init__()
        self.n_outputs = n_outputs
        self.iconv = nn.Conv1d(4, filters, input_kernel, padding="same")
        self.irelu = nn.ReLU()
        self.rconvs = nn.ModuleList(
            nn.Conv1d(filters, filters, 3, padding="same", dilation=2 ** i) for i in range(1, layers + 1))
        self.rrelus = nn.ModuleList(nn.ReLU() for _ in range(layers))
        self.fconv = nn.Conv1d(filters, n_outputs, profile_kernel, padding="same")
        self.linear = nn.Linear(filters, n_outputs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict profile logits (B, C, L) and log(1 + total count) per channel (B, C) from one-hot x (B, 4, L)."""
        h = self.irelu(self.iconv(x))
        for conv, relu in zip(self.rconvs, self.rrelus):
            h = h + relu(conv(h))
        return self.fconv(h), self.linear(h.mean(dim=2))
