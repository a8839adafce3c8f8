"""Masked-LM pretraining of the transformer U-Net (`pretrain.<name>.arch: unet`): its objective, model and directory.

The corpus, training loop, checkpoints, signals and seeded batches are `dnalm.pretrain`'s; this module gives its
`Setup` for the U-Net (`dnalm.models.unet`):

- Inputs: each window's bases as nucleotide ids `[CLS] <species> A C G T … [SEP]` masked exactly as the BERT path
  masks nucleotide tokens (`dnalm.pretrain.mask_tokens`): `mask_prob` of the bases are selected one by one, each
  selected base becomes `[MASK]` (80%), a random base (10%) or stays (10%). The U-Net reads the one-hot bases, a
  `[MASK]` as N (an all-zero column). Bases are masked singly, not in spans: the U-Net reads bases, so no other input
  spells out a masked base (the reason 6-mer tokens are masked in spans of 6), and a tandem copy elsewhere in the
  window is information a model is meant to use.
- Species: the genome's species token picks a row of the U-Net's species embedding, added at its bottom (the
  species order is the vocabulary's: every configured species token).
- Output: a 1×1 convolution (`mlm`) from the per-base features to 4 logits; cross-entropy on the selected bases only.
- Directory (`dnalm.models.unet.save_checkpoint`): `config.json` (`model_type: dnalm_unet`, `architecture`,
  `species`, `window`), `model.safetensors` (`trunk.*`, `mlm.*`), and the nucleotide tokenizer files with the species
  tokens (`dnalm.tokenize.save_tokenizer`), besides `history.tsv` and `pretrain.json` as for BERT. A model reads it
  with `unet.backbone: <name>`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnalm import tokenize
from dnalm.device import autocast
from dnalm.models.unet import UNetTrunk, save_checkpoint
from dnalm.pretrain_setup import TRAIN_KEYS, Objective, Setup
from dnalm.schema import block_defaults

#: Tokenizer layout of the U-Net's masked inputs.
KIND = "nucleotide"


class UNetMLM(nn.Module):
    """The U-Net trunk with a 4-way output layer: logits (B, 4, L) of one-hot x (B, 4, L) and species rows (B,)."""

    def __init__(self, trunk: UNetTrunk):
        super().__init__()
        self.trunk = trunk
        self.mlm = nn.Conv1d(trunk.out_channels, 4, 1)

    def forward(self, x: torch.Tensor, species: torch.Tensor | None = None) -> torch.Tensor:
        """Base logits (B, 4, L)."""
        return self.mlm(self.trunk(x, species))


def onehot_inputs(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-hot bases (B, 4, L) float32 (`[MASK]` → N, all zeros) and species embedding rows (B,) of masked
    nucleotide ids `[CLS] <species> body [SEP]` (B, L + 3)."""
    body = inputs[:, 2:-1] - tokenize.BASE_START
    onehot = (body[:, None, :] == np.arange(4)[None, :, None]).astype(np.float32)
    return onehot, (inputs[:, 1] - tokenize.species_start(KIND)).astype(np.int64)


def unet_logits(model: UNetMLM, inputs: np.ndarray, labels: np.ndarray, device: torch.device,
                precision: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Base logits (N, 4) at the selected positions (fp32) and their bases (N,) (0–3: A, C, G, T)."""
    onehot, species = onehot_inputs(inputs)
    body = torch.from_numpy(labels[:, 2:-1]).to(device)
    chosen = body != -100
    with autocast(device, precision):
        logits = model(torch.from_numpy(onehot).to(device), torch.from_numpy(species).to(device))
        picked = logits.transpose(1, 2)[chosen]
    return picked.float(), body[chosen] - tokenize.BASE_START


def unet_setup(genomes: list[dict], p: dict, species: list[str], masked: Callable[[str, np.ndarray], Callable],
               dev: torch.device) -> Setup:
    """The U-Net of `p['unet']` with a species embedding of every species, its objective and its directory.

    `masked(kind, species_ids)` is the BERT path's masked batch of a tokenizer kind (`dnalm.pretrain.bert_objective`).
    """
    vocab = tokenize.vocabulary(KIND, species)
    species_ids = np.array([tokenize.species_id(vocab, g["species"]) for g in genomes], dtype=np.int64)
    architecture = {**block_defaults("pretrain")["unet"], **p["unet"]}
    model = UNetMLM(UNetTrunk(**architecture, species=list(species))).to(dev)
    settings = {"arch": "unet", "species": list(species), "window": p["window"], "stride": p["stride"],
                "unet": architecture, **{k: p[k] for k in TRAIN_KEYS}}

    def write(out: Path, _settings: dict) -> None:
        save_checkpoint(out, model.state_dict(), architecture, list(species), {"window": p["window"]})
        tokenize.save_tokenizer(vocab, out, max_length=p["window"] + 3)

    objective = Objective(masked(KIND, species_ids), unet_logits)
    return Setup(model, objective, settings, write)
