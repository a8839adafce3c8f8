"""What each architecture gives `dnalm.pretrain`'s masked-LM loop: its objective and its setup (a leaf module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Settings of every architecture that define a run.
TRAIN_KEYS = ("steps", "batch_size", "lr", "warmup", "mask_prob", "eval_every", "val_windows", "seed")


@dataclass(frozen=True)
class Objective:
    """What one architecture's masked-LM step needs (`dnalm.pretrain.bert_objective`, `dnalm.pretrain_unet.unet_setup`).

    Attributes:
        batch: (window index, rows, rng) → (inputs, labels): the masked inputs of corpus rows, labels -100 where unmasked.
        logits: (model, inputs, labels, device, precision) → (logits (N, classes) fp32, targets (N,)) at the
            masked positions; precision as `dnalm.device.autocast` takes it (None: the rule of inference).
    """

    batch: Callable[[object, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    logits: Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Setup:
    """One architecture's part of a pretraining run (`dnalm.pretrain.bert_setup`, `dnalm.pretrain_unet.unet_setup`).

    Attributes:
        model: The masked-LM model, on the device.
        objective: Its masked inputs and logits.
        settings: What defines the run besides the corpus (fingerprint, `pretrain.json`).
        write: Writes the model directory to the output directory (model and settings).
    """

    model: nn.Module
    objective: Objective
    settings: dict
    write: Callable[[Path, dict], None]


