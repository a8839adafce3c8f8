"""Heads on per-base language-model features (B, hidden, L): conv and BPNet-style profile heads, a pooled classifier."""

from __future__ import annotations

import torch
from torch import nn

from dnalm.models.bpnet import BPNet

#: SpeciesLM's conv head widths for its 768-wide backbone; `ConvHead` scales them by hidden / 768.
SPECIESLM_WIDTHS = (512, 256, 128)


def scaled_widths(hidden: int, min_width: int = 8) -> list[int]:
    """SpeciesLM's 512 → 256 → 128 scaled by hidden / 768 (so a 768-wide backbone gets SpeciesLM's head exactly)."""
    return [max(min_width, round(w * hidden / 768)) for w in SPECIESLM_WIDTHS]


class ConvHead(nn.Module):
    """Shallow 1D conv head: hidden → w1 → w2 → w3 (ReLU after each) → profile logits, plus a pooled count output.

    The widths default to SpeciesLM's 512 → 256 → 128 scaled by hidden / 768 (`scaled_widths`): the same shape of
    head at any backbone size, and exactly SpeciesLM's head at hidden 768.

    Args:
        hidden: Channels of the input features (the backbone's hidden size).
        n_outputs: Profile channels; the count output has one log count per channel.
        widths: The three hidden widths (default `scaled_widths(hidden)`).
        kernel_size: Width of the three convolutions ('same' padding).
        dropout: Dropout on the input features.
    """

    def __init__(self, hidden: int, n_outputs: int, widths: list[int] | None = None, kernel_size: int = 5,
                 dropout: float = 0.0):
        super().__init__()
        widths = list(widths) if widths is not None else scaled_widths(hidden)
        self.dropout = nn.Dropout(dropout)
        chans = [hidden, *widths]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel_size, padding="same") for a, b in zip(chans, chans[1:]))
        self.relus = nn.ModuleList(nn.ReLU() for _ in widths)
        self.profile = nn.Conv1d(widths[-1], n_outputs, 1)
        self.count = nn.Linear(widths[-1], n_outputs)

    @property
    def count_layer(self) -> nn.Linear:
        """The layer that outputs the log counts (see `dnalm.training.init_count_bias`)."""
        return self.count

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Profile logits (B, C, L) and log(1 + total count) (B, C) from features (B, hidden, L)."""
        h = self.dropout(h)
        for conv, relu in zip(self.convs, self.relus):
            h = relu(conv(h))
        return self.profile(h), self.count(h.mean(dim=2))


class BPNetHead(BPNet):
    """BPNet's dilated residual stack, profile and count outputs, on `hidden`-channel features instead of one-hot DNA.

    It is `dnalm.models.bpnet.BPNet` with its first convolution taking `hidden` channels, so forward, separate
    `nn.ReLU` instances (for DeepLIFT) and outputs are BPNet's. Defaults are smaller than BPNet's one-hot defaults:
    the features already carry context, so a short input convolution and fewer dilated layers suffice.

    Args:
        hidden: Channels of the input features.
        n_outputs: Profile channels.
        filters: Channels of every convolution.
        layers: Dilated residual layers (layer i has dilation 2**i).
        input_kernel: Width of the first convolution.
        profile_kernel: Width of the profile convolution.
    """

    def __init__(self, hidden: int, n_outputs: int, filters: int = 64, layers: int = 6, input_kernel: int = 3,
                 profile_kernel: int = 75):
        super().__init__(n_outputs, filters=filters, layers=layers, input_kernel=input_kernel,
                         profile_kernel=profile_kernel)
        self.iconv = nn.Conv1d(hidden, filters, input_kernel, padding="same")


class PooledHead(nn.Module):
    """Classifier: mean over positions of the features, dropout, linear → logits (B, n_classes).

    Args:
        hidden: Channels of the input features.
        n_classes: Output logits.
        dropout: Dropout before the linear layer.
    """

    def __init__(self, hidden: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) from features (B, hidden, L)."""
        return self.linear(self.dropout(h.mean(dim=2)))


HEADS = {"conv": ConvHead, "bpnet": BPNetHead, "pooled": PooledHead}


def build_head(kind: str, hidden: int, n_outputs: int, params: dict | None = None) -> nn.Module:
    """A head by name (`conv`, `bpnet`, `pooled`) with its config block as keyword arguments."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; known: {', '.join(HEADS)}")
    return HEADS[kind](hidden, n_outputs, **(params or {}))
