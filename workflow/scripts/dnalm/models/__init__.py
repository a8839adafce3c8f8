"""Sequence models as a trunk × a head: any trunk (BPNet's tower, a BERT-style LM, a U-Net, an encoder-decoder's
encoder) serves any task's head.

A trunk maps one-hot DNA (B, 4, L) — rows A, C, G, T, N all zeros — to per-base features (B, H, L); the head the
task type asks for (`dnalm.tasks`) maps them to that type's outputs. Trunks are registered in `TRUNKS` by their
config `arch`; heads in `dnalm.models.heads.HEADS`.
"""

from __future__ import annotations

import torch
from torch import nn

from dnalm.models.bpnet import BPNetTrunk
from dnalm.models.heads import build_head


class SequenceModel(nn.Module):
    """A trunk and a head: `forward(x) = head(trunk(x))`.

    Args:
        trunk: One-hot DNA (B, 4, L) → features (B, trunk.out_channels, L).
        head: Features → the task type's outputs.
        head_spec: How the head was built (`kind`, `params`, `n_outputs`), for exports and checkpoints.
    """

    def __init__(self, trunk: nn.Module, head: nn.Module, head_spec: dict | None = None):
        super().__init__()
        self.trunk = trunk
        self.head = head
        self.head_spec = dict(head_spec or {})

    @property
    def count_layer(self) -> nn.Linear | None:
        """The head's log-count layer, if it has one (its bias starts at the train data's mean log count)."""
        return getattr(self.head, "count_layer", None)

    def forward(self, x: torch.Tensor):
        """The head's outputs on one-hot x (B, 4, L)."""
        return self.head(self.trunk(x))


def bpnet_trunk(params: dict) -> tuple[nn.Module, int]:
    """BPNet's tower from the `bpnet` config block, and its profile kernel (the width its head's convolution
    takes)."""
    p = dict(params)
    kernel = p.pop("profile_kernel", 75)
    return BPNetTrunk(**p), kernel


def lm_trunk(params: dict) -> tuple[nn.Module, int]:
    """A language-model trunk from its config block (`dnalm.models.lm.build_lm_trunk`)."""
    from dnalm.models.lm import build_lm_trunk

    return build_lm_trunk(params)


def unet_trunk(params: dict) -> tuple[nn.Module, int]:
    """A transformer U-Net trunk from its config block (`dnalm.models.unet.build_unet_trunk`)."""
    from dnalm.models.unet import build_unet_trunk

    return build_unet_trunk(params)


def enbed_trunk(params: dict) -> tuple[nn.Module, int]:
    """The encoder of a byte-level encoder-decoder from its config block (`dnalm.models.enbed.build_enbed_trunk`)."""
    from dnalm.models.enbed import build_enbed_trunk

    return build_enbed_trunk(params)


#: Trunks by config `arch`: a function of the arch's config block returning (trunk, profile kernel).
TRUNKS = {"bpnet": bpnet_trunk, "lm": lm_trunk, "unet": unet_trunk, "enbed": enbed_trunk}


def build_model(arch: str, params: dict, head: str, n_outputs: int, head_params: dict | None = None) -> SequenceModel:
    """Build an untrained model (call under the run's torch seed).

    Args:
        arch: Trunk name (`bpnet`, `lm`, `unet` or `enbed`).
        params: The trunk's config block (for `lm`, as `dnalm.models.lm.build_lm_trunk` takes it).
        head: Head name the task type asks for (`profile`, `binned`, `pooled`).
        n_outputs: Output channels (profile channels, tracks or classes).
        head_params: The head's settings besides its convolution width (e.g. `bin_size`).

    Returns:
        The model, in train mode.
    """
    if arch not in TRUNKS:
        raise ValueError(f"unknown model arch {arch!r}; known: {', '.join(TRUNKS)}")
    trunk, kernel = TRUNKS[arch](params)
    settings = {"kernel": kernel, **(head_params or {})}
    model = SequenceModel(trunk, build_head(head, trunk.out_channels, n_outputs, settings),
                          {"kind": head, "params": settings, "n_outputs": n_outputs})
    return model.train()


def bpnet(n_outputs: int, filters: int = 64, layers: int = 8, input_kernel: int = 21,
          profile_kernel: int = 75) -> SequenceModel:
    """BPNet (Avsec et al. 2021): BPNet's tower with profile and count outputs."""
    params = {"filters": filters, "layers": layers, "input_kernel": input_kernel, "profile_kernel": profile_kernel}
    return build_model("bpnet", params, "profile", n_outputs)
