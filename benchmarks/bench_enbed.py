"""Encoder-decoder (ENBED) speed: transient-global attention against full attention from 1 kb to 16 kb, and
pretraining tokens/s.

Prints, each the median of `--repeats` runs:
- per window length L (`--lengths`) at a fixed number of tokens per batch (`--tokens`: batch = tokens / L), for the
  enbed encoder (`dnalm.models.enbed`: LongT5, transient-global attention, `--radius`, `--block`) and a
  full-attention `T5EncoderModel` of the same size (d_model, d_ff, heads, layers, gated GELU, relative positions):
  seconds per forward + backward pass (sum of the features as the loss), time per token relative to the shortest
  length, the activation memory (bytes of every tensor autograd saves for the backward pass, counted by
  `torch.autograd.graph.saved_tensors_hooks`: device-independent; a tensor saved by two operations counts twice, so
  it is a ceiling, the same for both models) and on CUDA the peak allocated memory of the pass.
  At the longest length: full-attention time / enbed time and full / enbed activation memory. Goals (issue #20):
  time per token at 16 kb ≤ 1.3× that at 1 kb; ≥ 4× faster and ≥ 8× less activation memory than full attention.
  Full attention is skipped (`skipped`) where its scores alone (batch × heads × L² × 4 bytes × layers) would exceed
  `--full-limit-gb`.
- pretraining: optimizer steps of the whole encoder-decoder on span-corrupted windows (`dnalm.pretrain_enbed`:
  mean span `--mean-span`, 15% masked) of `--pretrain-window` bases, batch `--pretrain-batch`, fused AdamW, in the
  precision `train.precision: auto` resolves to on the device (`dnalm.device.resolve_precision`): bases per second.

Usage: .venv/bin/python benchmarks/bench_enbed.py [--device cpu|cuda] [--threads 2] [--d-model 256] [--layers 4]
       [--heads 4] [--radius 128] [--block 128] [--tokens 16384] [--lengths 1024,2048,4096,8192,16384]
       [--pretrain-window 16384] [--pretrain-batch 1] [--repeats 3]
A CPU check at reduced size: --d-model 64 --layers 2 --tokens 4096 --lengths 512,1024,2048,4096
--pretrain-window 2048 --pretrain-batch 2.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm import tokenize_enbed
from dnalm.device import autocast, resolve_precision, set_threads
from dnalm.models.enbed import build_enbed, longt5_config
from dnalm.pretrain_enbed import corrupt, span_counts, span_mask


def encoders(args) -> dict[str, torch.nn.Module]:
    """The enbed encoder and a full-attention T5 encoder of the same size, random weights, dropout 0."""
    from transformers import LongT5EncoderModel, T5Config, T5EncoderModel

    arch = {
        "d_model": args.d_model,
        "d_ff": 2 * args.d_model,
        "heads": args.heads,
        "encoder_layers": args.layers,
        "local_radius": args.radius,
        "global_block_size": args.block,
        "dropout": 0.0,
    }
    config = longt5_config(arch, tokenize_enbed.SENTINEL_START)
    full = T5Config(
        vocab_size=config.vocab_size,
        d_model=config.d_model,
        d_kv=config.d_kv,
        d_ff=config.d_ff,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
    )
    return {"enbed": LongT5EncoderModel(config), "full": T5EncoderModel(full)}


def pass_once(model, ids: torch.Tensor, device: torch.device) -> tuple[float, int, int]:
    """Seconds of one forward + backward pass, bytes saved for backward, CUDA peak bytes (0 on the CPU)."""
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        h = model(input_ids=ids).last_hidden_state
    h.float().sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    model.zero_grad(set_to_none=True)
    return seconds, saved[0], peak


def scaling(args, device: torch.device) -> None:
    """The table of encoder passes per length and the ratios at the longest one."""
    torch.manual_seed(0)
    models = {k: m.to(device).train() for k, m in encoders(args).items()}
    print(
        f"encoders: d_model {args.d_model}, {args.layers} layers, {args.heads} heads, radius {args.radius}, "
        f"block {args.block}; {args.tokens} tokens per batch on {device}"
    )
    print(
        f"{'model':>6} {'length':>7} {'batch':>5} {'seconds':>9} {'us/token':>9} {'vs first':>8} "
        f"{'act MB':>9} {'peak MB':>9}"
    )
    rows = {}
    for name, model in models.items():
        first = None
        for length in args.lengths:
            batch = max(1, args.tokens // length)
            scores = batch * args.heads * length**2 * 4 * args.layers / 1e9
            if name == "full" and scores > args.full_limit_gb:
                print(f"{name:>6} {length:>7} {batch:>5} {'skipped':>9} (attention scores alone {scores:.1f} GB)")
                continue
            ids = torch.randint(
                tokenize_enbed.BASE_START, tokenize_enbed.BASE_START + 4, (batch, length), device=device
            )
            pass_once(model, ids, device)  # warm-up
            runs = [pass_once(model, ids, device) for _ in range(args.repeats)]
            seconds = statistics.median(r[0] for r in runs)
            per_token = seconds / (batch * length)
            first = first or per_token
            rows[name, length] = (seconds, runs[0][1])
            print(
                f"{name:>6} {length:>7} {batch:>5} {seconds:>9.3f} {1e6 * per_token:>9.2f} "
                f"{per_token / first:>8.2f} {runs[0][1] / 1e6:>9.1f} {runs[0][2] / 1e6:>9.1f}"
            )
    longest = args.lengths[-1]
    if ("full", longest) in rows and ("enbed", longest) in rows:
        (tf, mf), (te, me) = rows["full", longest], rows["enbed", longest]
        print(
            f"at {longest} bp: full attention / transient-global = {tf / te:.2f}× time, {mf / me:.2f}× "
            "activation memory"
        )


def pretraining(args, device: torch.device) -> None:
    """Bases per second of span-corruption pretraining steps in the precision `auto` resolves to."""
    precision = resolve_precision("auto", device)
    arch = {
        "d_model": args.d_model,
        "d_ff": 2 * args.d_model,
        "heads": args.heads,
        "encoder_layers": args.layers,
        "local_radius": args.radius,
        "global_block_size": args.block,
        "dropout": 0.1,
    }
    window, batch = args.pretrain_window, args.pretrain_batch
    _, n_spans = span_counts(window, 0.15, args.mean_span)
    torch.manual_seed(0)
    model = build_enbed(arch, n_spans).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    rng = np.random.default_rng(0)

    def step() -> float:
        codes = rng.integers(0, 4, (batch, window))
        pairs = [
            corrupt(row, span_mask(window, 0.15, args.mean_span, rng)) for row in tokenize_enbed.encode_codes(codes)
        ]
        inputs = torch.from_numpy(np.stack([p[0] for p in pairs])).to(device)
        labels = torch.from_numpy(np.stack([p[1] for p in pairs])).to(device)
        t0 = time.perf_counter()
        with autocast(device, precision):
            loss = model(input_ids=inputs, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    step()
    seconds = statistics.median(step() for _ in range(args.repeats))
    params = sum(p.numel() for p in model.parameters())
    print(
        f"pretraining ({params / 1e6:.2f} M parameters, {args.layers}:{-(-args.layers // 2)} layers, window {window}, "
        f"batch {batch}, {precision}): {seconds:.3f} s/step, {batch * window / seconds:,.0f} bases/s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--radius", type=int, default=128)
    parser.add_argument("--block", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument(
        "--lengths", type=lambda s: [int(x) for x in s.split(",")], default=[1024, 2048, 4096, 8192, 16384]
    )
    parser.add_argument("--full-limit-gb", type=float, default=40.0)
    parser.add_argument("--pretrain-window", type=int, default=16384)
    parser.add_argument("--pretrain-batch", type=int, default=1)
    parser.add_argument("--mean-span", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    device = torch.device(args.device)
    scaling(args, device)
    pretraining(args, device)


if __name__ == "__main__":
    main()
