"""BPNet's trunk: the dilated residual convolution tower, and the fast wide profile convolution of its head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProfileConv1d(nn.Conv1d):
    """A 'same', stride-1 convolution with few output channels and a wide kernel (BPNet's 75-wide profile conv).

    oneDNN's CPU kernel is slow for this shape (2 output channels × 75 taps; its backward pass dominated a BPNet
    training step). Computed instead as one matrix product to out_channels × kernel_size channels followed by a sum
    along diagonals (an `as_strided` view), which is ~5× faster forward and backward on the CPU and identical up to
    float rounding. Parameters, state-dict keys and checkpoints are those of `nn.Conv1d`; shapes where the
    intermediate would be large (out × kernel > 4 × in channels) use `nn.Conv1d`'s kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, inp, kernel = self.weight.shape
        if out * kernel > 4 * inp or self.groups != 1 or self.stride != (1,) or self.padding != "same":
            return super().forward(x)
        batch, _, length = x.shape
        dilation = self.dilation[0]
        left = dilation * (kernel - 1) // 2  # PyTorch's 'same' puts the odd extra pad on the right
        right = dilation * (kernel - 1) - left
        taps = torch.matmul(self.weight.permute(0, 2, 1).reshape(out * kernel, inp), x)  # (B, out × kernel, L)
        taps = F.pad(taps, (left, right)).contiguous()
        padded = length + left + right
        diagonal = taps.as_strided((batch, out, length, kernel),
                                   (out * kernel * padded, kernel * padded, 1, padded + dilation))
        y = diagonal.sum(dim=-1)
        return y if self.bias is None else y + self.bias[:, None]


class BPNetTrunk(nn.Module):
    """BPNet's tower (Avsec et al. 2021): an input convolution and dilated residual convolutions, 'same' padding, so
    there is one feature vector per input base.

    Each activation is its own `nn.ReLU` module so that DeepLIFT implementations can hook every one. With
    `in_channels` other than 4 it is the same tower on other per-base features (the LMs' `bpnet` stack).

    Args:
        filters: Channels of every convolution (the features' width, `out_channels`).
        layers: Dilated residual layers; layer i has dilation 2**i.
        input_kernel: Width of the first convolution.
        in_channels: Channels of the input (4 for one-hot DNA).
    """

    def __init__(self, filters: int = 64, layers: int = 8, input_kernel: int = 21, in_channels: int = 4):
        super().__init__()
        self.out_channels = filters
        self.iconv = nn.Conv1d(in_channels, filters, input_kernel, padding="same")
        self.irelu = nn.ReLU()
        self.rconvs = nn.ModuleList(
            nn.Conv1d(filters, filters, 3, padding="same", dilation=2 ** i) for i in range(1, layers + 1))
        self.rrelus = nn.ModuleList(nn.ReLU() for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, filters, L) of x (B, in_channels, L)."""
        h = self.irelu(self.iconv(x))
        for conv, relu in zip(self.rconvs, self.rrelus, strict=True):
            h = h + relu(conv(h))
        return h
