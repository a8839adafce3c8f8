"""Tests for dnalm.checkpoint: loading with weights only (a checkpoint that carries another object is refused, naming
the file). Exact resume from real checkpoints is tested in test_training.py and test_pretrain.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnalm.checkpoint import UnsafeCheckpoint, load_verified, save_atomic
from helpers import Planted


def test_a_checkpoint_carrying_another_object_is_refused_naming_the_file(tmp_path):
    marker, path = tmp_path / "code_ran", tmp_path / "last.ckpt"
    save_atomic({"model": {"w": torch.zeros(2)}, "epoch": 1, "extra": Planted(marker)}, path)  # a valid checksum
    with pytest.raises(UnsafeCheckpoint, match=f"refusing to load {path}: it holds posix.mkdir"):
        load_verified(path)
    assert not marker.exists()


def test_plain_checkpoints_load_with_numpy_scalars_of_older_checkpoints(tmp_path):
    """Tensors, numbers, strings, containers and a numpy generator's state load; so do the numpy float64 values
    that histories held before they were saved as Python floats."""
    rng = np.random.default_rng([0, 1])
    state = {"model": {"w": torch.arange(3.0)}, "torch_rng": torch.get_rng_state(), "rng": rng.bit_generator.state,
             "history": [{"epoch": 1, "val_loss": np.float64(0.5), "best": True}],
             "head": {"kind": "profile", "params": {"kernel": (9,)}}, "progress": None, "fingerprint": "ab"}
    save_atomic(state, tmp_path / "last.ckpt")
    loaded = load_verified(tmp_path / "last.ckpt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["rng"] == state["rng"]
    assert loaded["history"] == state["history"] and type(loaded["history"][0]["val_loss"]) is np.float64
    assert loaded["head"] == state["head"] and loaded["fingerprint"] == "ab"
