"""BPNet speed on the CPU, ours against bpnet-lite's BPNet of the same size, in the same run.

Both models: 64 filters × 8 dilated residual layers, 2 profile outputs, 'same' padding (bpnet-lite with no control
tracks and no trimming, so both predict every input base), AdamW. Each trains with its own loss (ours
`dnalm.losses.profile_count_loss`, bpnet-lite's `_mixture_loss` as in its `fit`). Timings alternate between the two
models repeat by repeat, so a burst of load from other processes hits both; figures are medians.

Prints per window length: training seconds per step and samples/s, inference windows/s, and ours ÷ bpnet-lite
(goal ≥ 1.2 for training samples/s, both in fp32); the model FLOP/s of a training step (convolution and matmul FLOPs
as torch's FlopCounterMode counts one step: the profile convolution counts as the convolution it computes) as a share
of the fp32 matmul rate (2048², sampled between repeats, median; goal ≥ 60%); and our BPNet under bf16 autocast
(`dnalm-bf16`, as `train.precision: bf16` and `auto` on a CPU with native bf16 train it; its share is still of the
fp32 matmul rate).

bpnet-lite is a benchmark-only dependency: `pip install --no-deps bpnet-lite==1.1.0` (with its dependencies, it
pulls `modisco` 2.5.2, which overwrites modisco-lite's files; see benchmarks/README.md).

Usage: .venv/bin/python benchmarks/bench_bpnet.py [--repeats 5] [--threads 2] [--lengths 300,1000] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from bench_lm import matmul_samples
from torch.utils.flop_counter import FlopCounterMode

from dnalm.device import as_float, autocast, native_bf16
from dnalm.losses import profile_count_loss
from dnalm.models import build_model


def ours(precision: str = "fp32") -> tuple[torch.nn.Module, callable]:
    """Our BPNet and its training loss (the forward pass under `precision`, as `dnalm.training.run_epoch` runs it)."""
    model = build_model("bpnet", {"filters": 64, "layers": 8}, "profile", 2)

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(torch.device("cpu"), precision):
            logits, counts = as_float(model(x))
        return profile_count_loss(logits, counts, y, 1.0)[0]

    return model, loss


def bpnet_lite() -> tuple[torch.nn.Module, callable]:
    """bpnet-lite's BPNet of the same size and its training loss (`_mixture_loss`, as `BPNet.fit` uses it)."""
    from bpnetlite.bpnet import BPNet
    from bpnetlite.losses import _mixture_loss

    model = BPNet(n_filters=64, n_layers=8, n_outputs=2, n_control_tracks=0, trimming=0, verbose=False)

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits, logcounts = model(x)
        return _mixture_loss(y, logits, logcounts, model.count_loss_weight)[2]

    return model, loss


def train_time(model: torch.nn.Module, loss_fn, optimizer, x, y, steps: int) -> float:
    """Seconds per training step, averaged over `steps` steps."""
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(x, y).backward()
        optimizer.step()
    return (time.perf_counter() - t0) / steps


def infer_rate(model: torch.nn.Module, x, steps: int) -> float:
    """Windows per second at inference."""
    model.eval()
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(steps):
            model(x)
        return steps * x.shape[0] / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", default="300,1000")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {"dnalm": ours(), "bpnet-lite": bpnet_lite(), "dnalm-bf16": ours("bf16")}
    models["dnalm-bf16"][0].load_state_dict(models["dnalm"][0].state_dict())
    print(f"BPNet 64 filters x 8 layers, batch {args.batch}, {args.threads} threads, median of {args.repeats}; "
          f"CPU with native bf16: {native_bf16(torch.device('cpu'))}")
    print(f"{'length':>6} {'model':<11}{'train s/step':>13}{'train samples/s':>16}{'infer windows/s':>16}"
          f"{'GFLOP/step':>11}{'GFLOP/s':>8}{'of matmul':>10}")
    mm = []
    for length in (int(v) for v in args.lengths.split(",")):
        x = torch.nn.functional.one_hot(torch.randint(0, 4, (args.batch, length)), 4).float().transpose(1, 2)
        x = x.contiguous()
        y = torch.poisson(torch.full((args.batch, 2, length), 0.2))
        times = {name: [] for name in models}
        rates = {name: [] for name in models}
        optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, (m, _) in models.items()}
        flops = {}
        for name, (model, loss_fn) in models.items():  # warm-up: oneDNN primitive caches, allocator
            counter = FlopCounterMode(display=False)
            with counter:
                train_time(model, loss_fn, optimizers[name], x, y, 1)
            flops[name] = counter.get_total_flops()
        for _ in range(args.repeats):
            mm += matmul_samples(3)
            for name, (model, loss_fn) in models.items():
                times[name].append(train_time(model, loss_fn, optimizers[name], x, y, args.steps))
                rates[name].append(infer_rate(model, x, args.steps))
        step = {name: statistics.median(v) for name, v in times.items()}
        infer = {name: statistics.median(v) for name, v in rates.items()}
        rate = statistics.median(mm)
        for name in models:
            print(f"{length:>6} {name:<11}{step[name]:>13.3f}{args.batch / step[name]:>16.1f}{infer[name]:>16.0f}"
                  f"{flops[name] / 1e9:>11.1f}{flops[name] / step[name] / 1e9:>8.1f}"
                  f"{flops[name] / step[name] / rate:>10.0%}")
        print(f"{length:>6} {'ratio':<11}{'':>13}{step['bpnet-lite'] / step['dnalm']:>15.2f}x"
              f"{infer['dnalm'] / infer['bpnet-lite']:>15.2f}x   (dnalm / bpnet-lite; goal >= 1.2 for training)")
        print(f"{length:>6} {'ratio bf16':<11}{'':>13}{step['bpnet-lite'] / step['dnalm-bf16']:>15.2f}x"
              f"{'':>16}   (dnalm-bf16 / bpnet-lite fp32)")
    print(f"fp32 matmul 2048^2: median {statistics.median(mm) / 1e9:.1f} GFLOP/s over {len(mm)} samples "
          f"(min {min(mm) / 1e9:.1f}, max {max(mm) / 1e9:.1f})")


if __name__ == "__main__":
    main()
