"""Genome scan with a sequence classifier: windows per second over every window of a genome, both strands.

Reads the first `--bases` bases of a genome FASTA (plain or gzipped; default `resources/demo/ecoli/genome.fa.gz`, the
E. coli promoter example's genome, 200,000 bases; records in file order, windows never span two records) and scores
every `--length` bp window at stride 1 on both strands (the reverse strand's windows are the reverse complements) with
each model, as `dnalm.predict` runs a model: eval mode, `torch.no_grad`, `dnalm.device.autocast` (fp32 on the CPU,
bf16 on CUDA), batches of `--batch` one-hot windows (`dnalm.store` codes, N all zeros), the class probabilities kept
(the positive class, the last, per window and strand: what a scan writes out).

Models: trained classifiers from `--checkpoint results/models/<task>/<model>/best.ckpt` (repeatable; loaded with
`dnalm.predict.load_model`, their window length replacing `--length`; an LM's backbone directory must still exist),
or else randomly initialised ones named by `--models`: `bpnet` (`build_model("bpnet", …, "pooled", 2)` with the E. coli
example's tower, `--filters` 64 × `--layers` 4, input kernel 15) and `lm` (a random BERT of `--lm-size`, default the
example's 2 layers × hidden 64 × 4 heads, nucleotide tokens, LoRA adapters unmerged and the conv stack, as a
fine-tuned `arch: lm` model runs; see `bench_classifier_finetune.random_lm`). The random ones cost what trained ones
of the same shape cost.

Timed: the whole scan of the chunk, batch building (one-hot encoding) included, `--repeats` times per model (models
alternate, so a burst of load hits all); prints per model the windows/s of every repeat and the median, and the
projected time to scan the whole genome (every window of every record, both strands) at the median rate; and the
torch thread count (`--threads`).

Usage: .venv/bin/python benchmarks/bench_promoter_scan.py [--fasta resources/demo/ecoli/genome.fa.gz] [--bases 200000]
       [--batch 512] [--models bpnet lm] [--checkpoint best.ckpt ...] [--threads 2] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from bench_classifier_finetune import random_lm

from dnalm.device import as_float, autocast, pick_device
from dnalm.models import build_model
from dnalm.predict import load_model
from dnalm.store import CODES, COMPLEMENT, ONEHOT

#: The E. coli promoter example's BPNet tower (config/examples/ecoli_promoters.yaml, models.bpnet).
EXAMPLE_BPNET = {"input_kernel": 15}


def read_genome(path: Path, bases: int) -> tuple[list[np.ndarray], list[int]]:
    """Base codes of the first `bases` bases (one array per record they reach) and every record's length.

    Raises:
        FileNotFoundError: naming the file and the option that changes it.
        ValueError: if the file holds no FASTA record.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such genome FASTA; give one with --fasta (the default is the E. coli "
                                "promoter example's genome, resources/demo/ecoli/SOURCE.md)")
    with open(path, "rb") as handle:
        zipped = handle.read(2) == b"\x1f\x8b"
    lengths: list[int] = []
    pieces: list[list[bytes]] = []
    taken = 0
    with (gzip.open(path, "rb") if zipped else open(path, "rb")) as handle:
        for line in handle:
            if line.startswith(b">"):
                lengths.append(0)
                pieces.append([])
                continue
            if not lengths:
                raise ValueError(f"{path}: sequence before the first '>' header; not a FASTA file")
            line = line.strip()
            lengths[-1] += len(line)
            if taken < bases:
                pieces[-1].append(line[: bases - taken])
                taken += len(pieces[-1][-1])
    if not lengths:
        raise ValueError(f"{path}: no FASTA record")
    chunks = [CODES[np.frombuffer(b"".join(p), dtype=np.uint8)] for p in pieces if p]
    return chunks, lengths


def n_windows(lengths: list[int], length: int) -> int:
    """Windows of `length` bp at stride 1 on both strands of records of these lengths."""
    return 2 * sum(max(0, n - length + 1) for n in lengths)


def scan(model: torch.nn.Module, chunks: list[np.ndarray], length: int, batch: int,
         device: torch.device) -> np.ndarray:
    """The positive-class probability of every window of every chunk, forward strand then reverse, per chunk."""
    out = []
    for codes in chunks:
        for strand in (codes, COMPLEMENT[codes[::-1]]):
            if len(strand) < length:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(strand, length)
            for start in range(0, len(windows), batch):
                x = ONEHOT[windows[start : start + batch]].transpose(0, 2, 1).copy()
                with autocast(device):
                    logits = as_float(model(torch.from_numpy(x).to(device)))
                out.append(torch.softmax(logits, dim=-1)[:, -1].cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


@torch.no_grad()
def timed_scan(model: torch.nn.Module, chunks: list[np.ndarray], length: int, batch: int,
               device: torch.device) -> tuple[int, float]:
    """(windows scored, seconds) of one scan of the chunks."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    scores = scan(model, chunks, length, batch, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(scores), time.perf_counter() - t0


def random_models(args: argparse.Namespace, tmp: Path) -> dict[str, tuple[torch.nn.Module, int]]:
    """Randomly initialised pooled classifiers named by --models, with the window length they scan."""
    models = {}
    torch.manual_seed(0)
    for name in args.models:
        if name == "bpnet":
            params = {**EXAMPLE_BPNET, "filters": args.filters, "layers": args.layers}
            model = build_model("bpnet", params, "pooled", 2, {"pool": args.pool})
            label = f"bpnet {args.filters}x{args.layers} (random)"
        else:
            params = random_lm(tmp / "backbone", args.lm_size, args.lm_heads, "nucleotide", args.length)
            model = build_model("lm", params, "pooled", 2, {"pool": args.pool})
            label = f"lm {args.lm_size} lora (random)"
        models[label] = (model, args.length)
    return models


def trained_models(paths: list[str], device: torch.device) -> dict[str, tuple[torch.nn.Module, int]]:
    """Classifiers loaded from best.ckpt files (`dnalm.predict.load_model`), with their window length."""
    models = {}
    for path in paths:
        model, info = load_model(path, device)
        if info["head"]["kind"] != "pooled":
            raise ValueError(f"{path}: a {info['head']['kind']} model; the scan needs a classifier (pooled head)")
        models[f"{info['arch']} {path}"] = (model, int(info["length"]))
    return models


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fasta", type=Path, default=Path("resources/demo/ecoli/genome.fa.gz"), help="genome FASTA")
    parser.add_argument("--bases", type=int, default=200_000, help="bases read from the start (default 200,000)")
    parser.add_argument("--length", type=int, default=81, help="window length of random models (default 81)")
    parser.add_argument("--batch", type=int, default=512, help="windows per forward pass (default 512)")
    parser.add_argument("--models", nargs="+", default=["bpnet"], choices=["bpnet", "lm"],
                        help="random models to scan when no --checkpoint is given (default bpnet)")
    parser.add_argument("--checkpoint", nargs="+", default=[], help="best.ckpt file(s) of trained classifiers")
    parser.add_argument("--filters", type=int, default=64, help="random BPNet's filters (default 64)")
    parser.add_argument("--layers", type=int, default=4, help="random BPNet's dilated layers (default 4)")
    parser.add_argument("--lm-size", default="2x64", help="random LM's <layers>x<hidden> (default 2x64)")
    parser.add_argument("--lm-heads", type=int, default=4, help="random LM's attention heads (default 4)")
    parser.add_argument("--pool", default="mean", choices=["mean", "max", "meanmax"], help="random models' pooling")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed scans per model; the median is reported")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, or '' for CUDA when available")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device or None)
    chunks, lengths = read_genome(args.fasta, args.bases)
    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        models = trained_models(args.checkpoint, device) if args.checkpoint else random_models(args, Path(tmp))
        for model, length in models.values():
            model.eval().to(device)
            if not any(len(c) >= length for c in chunks):
                raise ValueError(f"{args.fasta}: no record has {length} bases within the first {args.bases:,}; "
                                 "raise --bases")
        for model, length in models.values():  # warm-up: oneDNN primitives, allocator
            timed_scan(model, [chunks[0][: length + args.batch]], length, args.batch, device)
        rates: dict[str, list[float]] = {name: [] for name in models}
        counts = {}
        for _ in range(args.repeats):
            for name, (model, length) in models.items():
                counts[name], seconds = timed_scan(model, chunks, length, args.batch, device)
                rates[name].append(counts[name] / seconds)
    print(f"{args.fasta}: first {sum(len(c) for c in chunks):,} of {sum(lengths):,} bases ({len(lengths)} records); "
          f"{device}, torch threads {torch.get_num_threads()} (--threads {args.threads}), batch {args.batch}, "
          f"median of {args.repeats}")
    print(f"{'model':<40}{'window':>7}{'windows':>10}{'median windows/s':>18}{'genome windows':>16}"
          f"{'genome time':>13}  windows/s per repeat")
    for name, (_, length) in models.items():
        rate, total = statistics.median(rates[name]), n_windows(lengths, length)
        print(f"{name:<40}{length:>7}{counts[name]:>10,}{rate:>18,.0f}{total:>16,}{total / rate / 60:>11.1f} m  "
              + " ".join(f"{r:,.0f}" for r in rates[name]))

if __name__ == "__main__":
    main()
