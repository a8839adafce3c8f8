"""Training speed of the transformer U-Net against BPNet on long windows: samples/s of forward + backward + AdamW.

Both trunks with the tracks task's `binned` head (`--tracks` tracks, bins of 32 bp) on `--batch` one-hot windows of
`--length` bp (default 16,384, Borzoi's training length over 32), Poisson NLL on random counts, AdamW, `--threads`
torch threads, fp32 (and with `--bf16` under bf16 autocast as `train.precision: bf16` runs it). Prints per model the
parameters, the median seconds per step over `--repeats` timed steps (after one warm-up step) and samples/s, and
the load average before and after (the machine may be shared: say so with the figures).

Usage: .venv/bin/python benchmarks/bench_unet.py [--threads 2] [--batch 4] [--length 16384] [--repeats 5]
       [--channels 32] [--depth 4] [--layers 2] [--heads 4] [--bf16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm.device import autocast
from dnalm.models import build_model

BIN = 32


def models(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    """BPNet (64 filters × 8 layers, the default) and the U-Net of the arguments, both with a binned head."""
    unet = {"architecture": {"channels": args.channels, "depth": args.depth, "layers": args.layers,
                             "heads": args.heads, "dropout": 0.1}, "species": None}
    torch.manual_seed(0)
    return {"bpnet 64x8": build_model("bpnet", {}, "binned", args.tracks, {"bin_size": BIN}),
            f"unet c{args.channels} d{args.depth} l{args.layers}": build_model("unet", unet, "binned", args.tracks,
                                                                             {"bin_size": BIN})}


def step_times(model: torch.nn.Module, args: argparse.Namespace, precision: str) -> list[float]:
    """Seconds of each timed training step (one warm-up step first)."""
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 4, (args.batch, args.length), generator=gen)
    x = torch.nn.functional.one_hot(codes, 4).permute(0, 2, 1).float()
    y = torch.poisson(torch.full((args.batch, args.tracks, args.length // BIN), 2.0), generator=gen)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(args.repeats + 1):
        t0 = time.perf_counter()
        with autocast(torch.device("cpu"), precision):
            out = model(x)
        loss = torch.nn.functional.poisson_nll_loss(out.float(), y, log_input=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("threads", 2), ("batch", 4), ("length", 16384), ("repeats", 5), ("tracks", 2),
                          ("channels", 32), ("depth", 4), ("layers", 2), ("heads", 4)]:
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {args.batch} × {args.length} bp, {args.threads} threads")
    for name, model in models(args).items():
        params = sum(p.numel() for p in model.parameters())
        for precision in ["fp32", *(["bf16"] if args.bf16 else [])]:
            seconds = statistics.median(step_times(model.train(), args, precision))
            print(f"{name:24s} {precision}: {params / 1e6:.2f}M parameters, {seconds:.3f} s/step, "
                  f"{args.batch / seconds:.2f} samples/s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
