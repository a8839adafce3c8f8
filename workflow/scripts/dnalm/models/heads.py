"""Heads and feature stacks: what turns a trunk's per-base features (B, H, L) into a task type's outputs.

A task type asks every trunk for one head (`dnalm.tasks`): `profile` (base-resolution profile logits and log total
counts, BPNet's outputs), `binned` (a log-rate per track and bin), `pooled` (class logits) or `tagger` (per-base tag
logits). Language models put a feature stack between their hidden states and the head (`lm.head` in the config):
`conv` (SpeciesLM's shallow convolutions) or `bpnet` (BPNet's dilated tower on the LM features).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from dnalm.models.bpnet import BPNetTrunk, ProfileConv1d

#: SpeciesLM's conv head widths for its 768-wide backbone; `ConvStack` scales them by hidden / 768.
SPECIESLM_WIDTHS = (512, 256, 128)


def scaled_widths(hidden: int, min_width: int = 8) -> list[int]:
    """SpeciesLM's 512 → 256 → 128 scaled by hidden / 768 (so a 768-wide backbone gets SpeciesLM's head exactly)."""
    return [max(min_width, round(w * hidden / 768)) for w in SPECIESLM_WIDTHS]


# ----------------------------------------------------------------------------------------------------- feature stacks
class ConvStack(nn.Module):
    """SpeciesLM's shallow conv head without its output layer: dropout, then hidden → w1 → w2 → w3 convolutions
    ('same' padding), each followed by a ReLU. With a `profile` head of kernel 1 it is SpeciesLM's conv head.

    Args:
        hidden: Channels of the input features (the backbone's hidden size).
        widths: The three widths (default `scaled_widths(hidden)`: SpeciesLM's head at hidden 768).
        kernel_size: Width of the convolutions.
        dropout: Dropout on the input features.
    """

    def __init__(self, hidden: int, widths: list[int] | None = None, kernel_size: int = 5, dropout: float = 0.0):
        super().__init__()
        widths = list(widths) if widths is not None else scaled_widths(hidden)
        self.out_channels = widths[-1]
        self.dropout = nn.Dropout(dropout)
        chans = [hidden, *widths]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel_size, padding="same") for a, b in itertools.pairwise(chans))
        self.relus = nn.ModuleList(nn.ReLU() for _ in widths)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Features (B, w3, L) of features (B, hidden, L)."""
        h = self.dropout(h)
        for conv, relu in zip(self.convs, self.relus, strict=True):
            h = relu(conv(h))
        return h


def build_stack(kind: str, hidden: int, params: dict) -> tuple[nn.Module, int]:
    """A feature stack by name (`conv`, `bpnet`) and the width of the profile convolution that suits it (1 after
    the conv stack, as in SpeciesLM; `profile_kernel` after the BPNet tower, as in BPNet).

    `bpnet` defaults are smaller than BPNet's one-hot ones (features already carry context): filters 64, 6 layers,
    input kernel 3.
    """
    if kind == "conv":
        return ConvStack(hidden, **params), 1
    if kind == "bpnet":
        p = {"filters": 64, "layers": 6, "input_kernel": 3, "profile_kernel": 75, **params}
        kernel = p.pop("profile_kernel")
        return BPNetTrunk(in_channels=hidden, **p), kernel
    raise ValueError(f"unknown LM head {kind!r}; known: conv, bpnet")


# -------------------------------------------------------------------------------------------------------------- heads
class ProfileHead(nn.Module):
    """BPNet's outputs: profile logits from a `kernel`-wide convolution of the features, and log(1 + total count)
    per channel from a linear layer on their mean over positions.

    Args:
        in_channels: Channels of the features.
        n_outputs: Profile channels (e.g. 2 for a stranded target); one log count per channel.
        kernel: Width of the profile convolution (BPNet's 75; 1 after a conv stack).
    """

    def __init__(self, in_channels: int, n_outputs: int, kernel: int = 75):
        super().__init__()
        self.fconv = ProfileConv1d(in_channels, n_outputs, kernel, padding="same")
        self.linear = nn.Linear(in_channels, n_outputs)

    @property
    def count_layer(self) -> nn.Linear:
        """The layer that outputs the log counts (its bias starts at the train data's mean)."""
        return self.linear

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Profile logits (B, C, L) and log(1 + total count) (B, C) from features (B, in_channels, L)."""
        return self.fconv(h), self.linear(h.mean(dim=2))


class BinnedHead(nn.Module):
    """Log-rate per track and bin: a `kernel`-wide convolution of the features, averaged over each bin.

    Averaging a convolution of the features over a bin equals the convolution of the bin-averaged features, so this
    is a binned head on the pooled trunk; with BPNet's trunk it is BPNet's profile convolution, binned.

    Args:
        in_channels: Channels of the features.
        n_outputs: Tracks.
        kernel: Width of the convolution.
        bin_size: Bases per bin; the input length must be a multiple of it.
    """

    def __init__(self, in_channels: int, n_outputs: int, kernel: int = 75, bin_size: int = 32):
        super().__init__()
        self.fconv = ProfileConv1d(in_channels, n_outputs, kernel, padding="same")
        self.bin_size = bin_size

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Log of the predicted (transformed) signal per bin, (B, C, L / bin_size)."""
        if h.shape[-1] % self.bin_size:
            raise ValueError(f"input length {h.shape[-1]} is not a multiple of the bin size {self.bin_size}")
        return F.avg_pool1d(self.fconv(h), self.bin_size)


class PooledHead(nn.Module):
    """Classifier: the features pooled over positions, dropout, linear → logits (B, n_classes).

    Args:
        in_channels: Channels of the features.
        n_outputs: Classes.
        kernel: Unused (every head takes the trunk's preferred convolution width).
        dropout: Dropout before the linear layer.
        pool: `mean` (NT's and DNABERT's sequence embedding), `max` (Basset's: a motif anywhere counts fully) or
            `meanmax` (both, concatenated: 2 × in_channels features).
    """

    def __init__(self, in_channels: int, n_outputs: int, kernel: int = 1, dropout: float = 0.0, pool: str = "mean"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pooling {pool!r}; known: {', '.join(POOLS)}")
        self.pool = pool
        # a module, so attribution sees a max and takes integrated gradients (DeepLIFT has no rule for it here)
        self.max_pool = nn.AdaptiveMaxPool1d(1) if pool != "mean" else None
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_channels * (2 if pool == "meanmax" else 1), n_outputs)

    def pooled(self, h: torch.Tensor) -> torch.Tensor:
        """The pooled features (B, in_channels or 2 × in_channels) of features (B, in_channels, L)."""
        if self.pool == "mean":
            return h.mean(dim=2)
        top = self.max_pool(h).squeeze(2)
        return top if self.pool == "max" else torch.cat([h.mean(dim=2), top], dim=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) from features (B, in_channels, L)."""
        return self.linear(self.dropout(self.pooled(h)))


class TaggerHead(nn.Module):
    """Per-base tagger: a `kernel`-wide convolution of the features → one logit per tag and base (B, n_tags, L).

    Tags are independent (a sigmoid each, trained by binary cross-entropy): seqerror tasks' substitution, insertion
    and the two sides of a deletion, which one base can carry together.

    Args:
        in_channels: Channels of the features.
        n_outputs: Tags.
        kernel: Width of the convolution (the trunk's profile kernel: BPNet's `profile_kernel`, 1 after an LM's
            feature stack).
    """

    def __init__(self, in_channels: int, n_outputs: int, kernel: int = 1):
        super().__init__()
        self.conv = ProfileConv1d(in_channels, n_outputs, kernel, padding="same")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_tags, L) from features (B, in_channels, L)."""
        return self.conv(h)


#: Poolings of the pooled head.
POOLS = ("mean", "max", "meanmax")
HEADS = {"profile": ProfileHead, "binned": BinnedHead, "pooled": PooledHead, "tagger": TaggerHead}


def build_head(kind: str, in_channels: int, n_outputs: int, params: dict | None = None) -> nn.Module:
    """A head by name (`profile`, `binned`, `pooled`, `tagger`) with its settings as keyword arguments."""
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; known: {', '.join(HEADS)}")
    return HEADS[kind](in_channels, n_outputs, **(params or {}))
