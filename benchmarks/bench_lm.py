"""LM speed on the CPU: fine-tuning step time (LoRA, full, frozen) and MLM pretraining steps/s, as a share of matmul.

Prints, each the median of several runs on `--threads` threads:
- the fp32 matmul rate (2048 × 2048 × 2048, GFLOP/s), the reference of the ratios: sampled before every model and
  summarised by the median of all samples, so a burst of load from other processes moves it less;
- per backbone size (`--sizes`, default BERT 2 layers × hidden 128 and 4 layers × hidden 256, FFN 4 × hidden,
  one head per 64 channels) and variant: seconds per training step of an LM trunk with a profile head (6-mer tokens, conv head,
  profile + count loss, AdamW as `dnalm.training` makes it) on `--batch` windows of `--length` bp, the model FLOP/s
  and their ratio to the matmul rate (goal ≥ 60%); and MLM pretraining (`dnalm.pretrain.masked_logits`, fused
  AdamW as `pretrain_lm`) steps/s.
- Variants: `lora`, `full`, `frozen`, `pretrain` with BERT's dropouts (hidden 0.1, attention 0.1; LoRA dropout 0.1),
  `…-nodrop` with attention and LoRA dropout 0 (hidden dropout kept), each in fp32 and, with `-bf16`, under bf16
  autocast as `train.precision: bf16` runs it (the ratio's reference stays the fp32 matmul rate). On the CPU,
  dropout masks are a large share of a step: the attention-probability mask has batch × heads × T² elements per
  layer, and peft's LoRA dropout masks the input of every adapted layer. The models use the workflow's dropout
  (`dnalm.models.dropout`, 15-bit masks, four per 64-bit draw); `--torch-dropout` measures torch's instead.

Model FLOPs per step (T tokens per window incl. [CLS], species, [SEP]; N = batch × T tokens; P = weights in the
encoder's matmuls, 4·H² + 2·H·I per layer; attention = 4·T·H per token and layer forward, QKᵀ and AV):
- full:     6·P·N + 12·layers·T·H·N + 3·head           (forward 2, backward 4: input and weight gradients)
- lora:     4·P·N + 12·layers·T·H·N + 3·head + 6·A·N   (frozen weights need input gradients only; A adapter weights)
- frozen:   2·P·N +  4·layers·T·H·N + 3·head           (backbone forward only, without autograd)
- pretrain: 6·P·N + 12·layers·T·H·N + 6·(H² + H·V)·M   (M masked tokens: the MLM head runs on those only)
head = forward FLOPs of the conv head's convolutions and linear layers (2 × weights × output positions). The
`counted` column is torch's FlopCounterMode count of one step, a check of the formula (it is lower for lora and
frozen because the first layer's input gradient is not needed there).

Usage: .venv/bin/python benchmarks/bench_lm.py [--threads 2] [--repeats 3] [--batch 32] [--length 300]
       [--sizes 2x128,4x256] [--variants lora,lora-bf16,…] [--torch-dropout] [--shapes]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm import tokenize
from dnalm.device import as_float, autocast, native_bf16
from dnalm.losses import profile_count_loss
from dnalm.models import SequenceModel
from dnalm.models.backbones import apply_finetune, bert_config, load_backbone
from dnalm.models.dropout import use_fast_dropout
from dnalm.models.heads import ProfileHead, build_stack
from dnalm.models.lm import LMTrunk, parameter_counts
from dnalm.pretrain import mask_tokens, masked_logits

LORA = {"r": 8, "alpha": 16, "target_modules": ["query", "value", "dense"]}
VARIANTS = [f"{mode}{drop}{precision}" for mode in ("lora", "full", "frozen", "pretrain") for drop in ("", "-nodrop")
            for precision in ("", "-bf16") if not (mode == "frozen" and drop)]
CPU = torch.device("cpu")


def median_time(fn, repeats: int, warmup: int = 1) -> float:
    """Median wall time of fn() over `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_samples(repeats: int, n: int = 2048) -> list[float]:
    """fp32 matmul FLOP/s on n × n matrices, one sample per timed product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        samples.append(2 * n**3 / (time.perf_counter() - t0))
    return samples


#: Matrix product shapes (m, k, n) of a 4 × 256 LoRA step on 32 × 300 bp: the square reference, forward and
#: input-gradient products (inner dimension = hidden or FFN size), weight-gradient ones (inner dimension = tokens).
SHAPES = [(2048, 2048, 2048), (9664, 256, 256), (9664, 256, 1024), (9664, 1024, 256), (256, 9664, 256),
          (256, 9664, 1024)]


def shape_rates(repeats: int) -> None:
    """Print the fp32 and bf16 matmul rate (GFLOP/s, median of `repeats`) of each of SHAPES."""
    print(f"{'m x k x n':>20}{'fp32 GFLOP/s':>14}{'bf16 GFLOP/s':>14}")
    for m, k, n in SHAPES:
        rates = []
        for dtype in (torch.float32, torch.bfloat16):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            rates.append(2 * m * k * n / median_time(functools.partial(torch.mm, a, b), repeats) / 1e9)
        print(f"{f'{m} x {k} x {n}':>20}{rates[0]:>14.0f}{rates[1]:>14.0f}")


def encoder_flops(layers: int, hidden: int, n_tokens: int, batch: int, mode: str) -> float:
    """Analytic encoder FLOPs of one step (see the module docstring); FFN size 4 × hidden."""
    weights = layers * (4 * hidden**2 + 2 * hidden * 4 * hidden)
    attention = 4 * layers * n_tokens * hidden * batch * n_tokens
    factor = {"full": 6, "lora": 4, "frozen": 2, "pretrain": 6}[mode]
    return factor * weights * batch * n_tokens + (attention if mode == "frozen" else 3 * attention)


def head_flops(head: torch.nn.Module, length: int, batch: int) -> float:
    """Forward FLOPs of a head's convolutions and linear layers (2 × weights × output positions)."""
    total = 0
    for module in head.modules():
        if isinstance(module, torch.nn.Conv1d):
            total += 2 * module.weight.numel() * length * batch
        elif isinstance(module, torch.nn.Linear):
            total += 2 * module.weight.numel() * batch
    return total


def counted_flops(step) -> float:
    """FLOPs of one call of `step` as torch's FlopCounterMode counts them."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def architecture(layers: int, hidden: int) -> dict:
    return {"layers": layers, "hidden": hidden, "heads": max(1, hidden // 64), "intermediate": 4 * hidden}


def finetune_step(layers: int, hidden: int, mode: str, dropout: float, batch: int, length: int, precision: str,
                  fast_dropout: bool = True):
    """A training-step closure of an LM with SpeciesLM's conv head, its analytic FLOPs and (trainable, total)
    parameters."""
    torch.manual_seed(0)
    vocab = tokenize.vocabulary("kmer6_species", ["yeast"])
    overrides = {"attention_probs_dropout_prob": dropout}
    backbone, vocab = load_backbone(None, overrides, vocab=vocab, architecture=architecture(layers, hidden))
    backbone = apply_finetune(backbone, mode, {**LORA, "dropout": dropout})
    stack, kernel = build_stack("conv", hidden, {})
    trunk = LMTrunk(backbone, stack, vocab=vocab, species="yeast", finetune=mode)
    head = ProfileHead(stack.out_channels, 2, kernel)
    model = SequenceModel(trunk, head).train()
    if fast_dropout:
        use_fast_dropout(model)  # as dnalm.models.lm.build_lm_trunk
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)  # as dnalm.training.train
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (batch, length)), 4).float().transpose(1, 2).contiguous()
    y = torch.poisson(torch.full((batch, 2, length), 0.2))

    def step():
        with autocast(CPU, precision):  # as dnalm.training.run_epoch
            logits, counts = as_float(model(x))
        loss, _, _ = profile_count_loss(logits, counts, y, 1.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    n_tokens = trunk.n_tokens(length)
    adapters = sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)
    flops = encoder_flops(layers, hidden, n_tokens, batch, mode) + 3 * (head_flops(stack, length, batch) + head_flops(head, length, batch))
    return step, flops + 6 * adapters * batch * n_tokens, parameter_counts(model)


def pretrain_step(layers: int, hidden: int, dropout: float, batch: int, length: int, precision: str,
                  fast_dropout: bool = True):
    """An MLM pretraining-step closure, its analytic FLOPs (masked tokens of its batch) and parameters."""
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    vocab = tokenize.vocabulary("kmer6_species", ["yeast"])
    config = bert_config(len(vocab), architecture(layers, hidden), {"attention_probs_dropout_prob": dropout})
    model = BertForMaskedLM(config).train()
    if fast_dropout:
        use_fast_dropout(model)  # as pretrain_lm
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)  # as pretrain_lm
    rng = np.random.default_rng(0)
    ids = tokenize.encode(rng.integers(0, 4, (batch, length)).astype(np.uint8), "kmer6_species", species=4101)
    inputs, labels = mask_tokens(ids, "kmer6_species", 0.15, rng)

    def step():
        logits, targets = masked_logits(model, inputs, labels, CPU, precision)
        loss = torch.nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    masked = int((labels != -100).sum())
    flops = encoder_flops(layers, hidden, ids.shape[1], batch, "pretrain")
    n = sum(p.numel() for p in model.parameters())
    return step, flops + 6 * (hidden**2 + hidden * len(vocab)) * masked, (n, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--sizes", default="2x128,4x256", help="comma-separated <layers>x<hidden>")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--torch-dropout", action="store_true", help="torch's dropout instead of the workflow's")
    parser.add_argument("--shapes", action="store_true", help="only the matmul rates of the step's product shapes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.shapes:
        shape_rates(max(args.repeats, 10))
        return
    print(f"threads {args.threads}, batch {args.batch} x {args.length} bp, 6-mer tokens, conv head, native bf16 "
          f"{native_bf16(CPU)}, "
          f"{'torch' if args.torch_dropout else 'dnalm'} dropout")
    print(f"{'model':<26}{'trainable/total':>22}{'s/step':>8}{'steps/s':>8}{'GFLOP/step':>11}{'counted':>8}"
          f"{'GFLOP/s':>8}{'of matmul':>10}")
    mm, rows = [], []
    for size in args.sizes.split(","):
        layers, hidden = (int(v) for v in size.split("x"))
        for variant in args.variants.split(","):
            mode, *flags = variant.split("-")
            nodrop = "nodrop" in flags
            dropout = 0.0 if nodrop else 0.1
            precision = "bf16" if "bf16" in flags else "fp32"
            fast = not args.torch_dropout
            mm += matmul_samples(args.repeats + 2)
            if mode == "pretrain":
                step, flops, (trainable, total) = pretrain_step(layers, hidden, dropout, args.batch, args.length,
                                                                precision, fast)
            else:
                step, flops, (trainable, total) = finetune_step(layers, hidden, mode, dropout, args.batch,
                                                                args.length, precision, fast)
            counted = counted_flops(step) if not nodrop else float("nan")
            seconds = median_time(step, args.repeats, warmup=0)  # the counted step was the warm-up
            rows.append((f"BERT {size} {variant}", trainable, total, seconds, flops, counted))
    rate = statistics.median(mm)
    for name, trainable, total, seconds, flops, counted in rows:
        print(f"{name:<26}{f'{trainable:,}/{total:,}':>22}{seconds:>8.3f}{1 / seconds:>8.2f}{flops / 1e9:>11.1f}"
              f"{counted / 1e9:>8.1f}{flops / seconds / 1e9:>8.1f}{flops / seconds / rate:>10.0%}")
    print(f"fp32 matmul 2048^2: median {rate / 1e9:.1f} GFLOP/s over {len(mm)} samples "
          f"(min {min(mm) / 1e9:.1f}, max {max(mm) / 1e9:.1f})")


if __name__ == "__main__":
    main()
