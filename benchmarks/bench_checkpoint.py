"""Checkpoint cost: save and restore time of a resumable checkpoint as a fraction of an epoch, for the demo's models.

For each model the script times, as `dnalm.training` / `dnalm.pretrain` do them:
- save: `dnalm.checkpoint.save_atomic` of the mid-epoch checkpoint (model, AdamW state after a step, for training
  also the best weights and the epoch position; with the checksum trailer, fsync and the rename keeping `.prev`);
- restore: `dnalm.checkpoint.load_verified` (checksum, then torch.load) and loading model and optimizer state;
- a training step on random windows of the demo's shape, and from it the epoch (or evaluation interval) of the demo:
  BPNet 4,000 train windows / batch 64 = 63 steps; LM fine-tuning 30 batches of 32 (max_batches_per_epoch);
  pretraining eval_every = 100 steps of 32 windows.
Each figure is the median of `--repeats` runs. The checkpoint is written to `--dir` (default: a temporary directory).

Usage: .venv/bin/python benchmarks/bench_checkpoint.py [--repeats 5] [--threads 2] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from bench_lm import median_time

from dnalm.checkpoint import load_verified, save_atomic
from dnalm.losses import profile_count_loss
from dnalm.models import build_model

LENGTH = 300
DEMO_LM = {"layers": 2, "hidden": 64, "heads": 4, "intermediate": None, "max_positions": 512}
STUDY_LM = {"layers": 4, "hidden": 256, "heads": 4, "intermediate": None, "max_positions": 512}


def profile_step(model, optimizer, batch: int) -> Callable[[], None]:
    """One training step of a profile model (BPNet or LM: both take one-hot windows) on random windows."""
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (batch, LENGTH)), 4).float().transpose(1, 2)
    y = torch.poisson(torch.full((batch, 2, LENGTH), 0.2))

    def step() -> None:
        logits, counts = model(x)
        loss, _, _ = profile_count_loss(logits, counts, y, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def mlm_step(model, optimizer, batch: int) -> Callable[[], None]:
    """One masked-LM step as `dnalm.pretrain` runs it (nucleotide tokens, 15% masked)."""
    import numpy as np

    from dnalm import tokenize
    from dnalm.pretrain import mask_tokens, masked_logits

    rng = np.random.default_rng(0)
    ids = tokenize.encode(rng.integers(0, 4, (batch, LENGTH)).astype(np.uint8), "nucleotide", species=9)
    inputs, labels = mask_tokens(ids, "nucleotide", 0.15, rng)

    def step() -> None:
        logits, targets = masked_logits(model, inputs, labels, torch.device("cpu"))
        loss = torch.nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def checkpoint_cost(model, optimizer, path: Path, training: bool, repeats: int) -> tuple[float, float, float]:
    """(save s, restore s, MB) of the checkpoint `dnalm.training` (training=True) or `dnalm.pretrain` writes."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1, "history": []}
    if training:
        state["best_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        state["progress"] = {"epoch": 1, "batch": 1, "losses": [1.0], "torch_rng": torch.get_rng_state()}
    save = median_time(lambda: save_atomic(state, path, keep_previous=True), repeats)

    def restore() -> None:
        loaded = load_verified(path)
        model.load_state_dict(loaded["model"])
        optimizer.load_state_dict(loaded["optimizer"])

    return save, median_time(restore, repeats), path.stat().st_size / 1e6


def lm_model(arch: dict):
    """An LM profile model (nucleotide tokens, conv head) with random weights, every weight trained (`scratch`,
    the largest checkpoint: AdamW state for all of them; LoRA's and frozen's are smaller)."""
    params = {"backbone": None, "tokenizer": "nucleotide", "finetune": "scratch", "architecture": arch,
              "head": "conv", "species": "saccharomyces_cerevisiae"}
    return build_model("lm", params, "profile", 2)


def cases():
    """(name, model factory, step factory, steps per epoch or interval, is training) of each benchmarked model."""
    from transformers import BertForMaskedLM

    from dnalm import tokenize
    from dnalm.models.backbones import bert_config

    vocab = tokenize.vocabulary("nucleotide", ["saccharomyces_cerevisiae"])
    return [
        ("BPNet 64 × 8 (demo), epoch of 63 steps × 64", lambda: build_model("bpnet", {"filters": 64, "layers": 8}, "profile", 2),
         64, profile_step, 63, True),
        ("LM 2 × 64 fine-tuning, all weights trained (demo size), epoch of 30 steps × 32",
         lambda: lm_model(DEMO_LM), 32, profile_step, 30, True),
        ("LM 4 × 256 fine-tuning, all weights trained (study 1 example size), epoch of 30 steps × 32",
         lambda: lm_model(STUDY_LM), 32, profile_step, 30, True),
        ("LM 2 × 64 masked-LM pretraining (demo), 100 steps × 32 between evaluations",
         lambda: BertForMaskedLM(bert_config(len(vocab), DEMO_LM, {})), 32, mlm_step, 100, False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where to write the checkpoints (default: a temporary dir)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} threads, median of {args.repeats}; fraction = (save or restore) / epoch (pretraining: "
          "the interval between evaluations)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name, make, batch, make_step, steps, training in cases():
            torch.manual_seed(0)
            model = make()
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
            step = median_time(make_step(model, optimizer, batch), args.repeats)
            save, restore, mb = checkpoint_cost(model, optimizer, Path(tmp) / "last.ckpt", training, args.repeats)
            epoch = step * steps
            unit = "epoch" if training else "interval"
            print(f"{name}: step {step:.3f} s, {unit} {epoch:.1f} s; checkpoint {mb:.1f} MB, save {save * 1e3:.0f} ms "
                  f"({save / epoch:.2%} of an {unit}), restore {restore * 1e3:.0f} ms ({restore / epoch:.2%})")


if __name__ == "__main__":
    main()
