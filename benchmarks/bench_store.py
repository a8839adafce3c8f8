"""Window store: loader windows/s against BPNet's and an LM's training steps, peak RSS with 1x and 10x the windows and
with 1 and 100 tracks.

Builds two synthetic tracks stores of the yeast_tracks example's shape (16,384 bp windows + 64 bp flanks, 5 tracks in
32 bp bins, float32) in a temporary directory, N and 10 N windows, then per size in a fresh subprocess reads one epoch (every
window once, in random batches with bin-aligned shifts and reverse complements, as training does) with
`WindowStore.batch`, and reports windows/s and the subprocess's peak RSS (VmHWM); once more with plain
memory-map indexing, the store's former reads, for comparison. The BPNet step is the example's model (32 filters x 8 layers,
binned output, Poisson loss) on one batch of the same shape; the LM step (`--lm LAYERSxHIDDEN`, default 2x128, 0 to
skip) is a nucleotide-token BERT trunk trained from scratch with the same binned head on the same windows (16,387
tokens with the specials), attention dropout 0 as `pretrain_lm` saves its backbones (with attention dropout, the CPU
path materialises every T x T attention matrix), so the loader's margin is read against the slower trunk too. `--tracks-rss 1,100` adds two
stores of `--windows` windows with 1 and 100 tracks, each read in a fresh subprocess (peak RSS in the number of
tracks; goal: flat).

Usage: .venv/bin/python benchmarks/bench_store.py [--windows 1000] [--batch 16] [--repeats 3]
       [--threads 2] [--dir /tmp] [--lm 2x128] [--tracks-rss 1,100]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))
LENGTH, FLANK, BIN, CHANNELS = 16384, 64, 32, 5


def make_store(directory: Path, n: int, channels: int = CHANNELS) -> list[str]:
    """Write a synthetic tracks store of n windows and `channels` tracks in chunks (memory of one chunk) and return
    its three paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [str(directory / f"train.{s}") for s in ("seq.npy", "targets.npy", "json")]
    width = LENGTH + 2 * FLANK
    seq = np.lib.format.open_memmap(paths[0], mode="w+", dtype=np.uint8, shape=(n, width))
    tgt = np.lib.format.open_memmap(paths[1], mode="w+", dtype=np.float32, shape=(n, channels, width // BIN))
    rng = np.random.default_rng(0)
    for start in range(0, n, 500):
        stop = min(start + 500, n)
        seq[start:stop] = rng.integers(0, 4, size=(stop - start, width), dtype=np.uint8)
        tgt[start:stop] = rng.gamma(1.0, 5.0, size=(stop - start, channels, width // BIN)).astype(np.float32)
    seq.flush()
    tgt.flush()
    del seq, tgt
    meta = {"split": "train", "n": n, "length": LENGTH, "flank": FLANK, "channels": [f"t{i}" for i in range(channels)],
            "rc_perm": list(range(channels)), "ids": [f"w{i}" for i in range(n)], "task_type": "tracks",
            "bin_size": BIN, "aggregate": "mean", "transform": "squash"}
    Path(paths[2]).write_text(json.dumps(meta))
    return paths


def read_epoch(paths: list[str], batch: int, mode: str) -> dict:
    """In this process: read one epoch (every window once, random order, shifts and flips) as training does.

    mode `pread` is `WindowStore.batch`; `mmap` indexes the memory maps instead (the store's former reads), for
    comparison. Returns windows/s and the peak RSS in MiB.
    """
    from dnalm.store import WindowStore

    store = WindowStore(paths[2])
    rng = np.random.default_rng(1)
    order = rng.permutation(len(store))
    t0 = time.perf_counter()
    for start in range(0, len(store), batch):
        index = order[start : start + batch]
        if mode == "mmap":
            sorted_index = np.sort(index)
            _ = store.seq[sorted_index], store.targets[sorted_index]  # fancy indexing reads the rows
            continue
        shifts = rng.integers(-FLANK // BIN, FLANK // BIN + 1, size=len(index)) * BIN
        store.batch(index, shifts, rng.random(len(index)) < 0.5)
    seconds = time.perf_counter() - t0
    return {"windows_per_s": len(store) / seconds, "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over from the parent across
    fork and exec, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def build(arch: str):
    """The example's BPNet (`bpnet`) or an LM trunk `LAYERSxHIDDEN` from scratch, with the binned head."""
    from dnalm.models import build_model

    if arch == "bpnet":
        return build_model("bpnet", {"filters": 32, "layers": 8, "profile_kernel": 25}, "binned", CHANNELS,
                           {"bin_size": BIN})
    layers, hidden = (int(v) for v in arch.split("x"))
    params = {"backbone": None, "tokenizer": "nucleotide", "finetune": "scratch", "head": "conv",
              "species": "saccharomyces_cerevisiae",
              "architecture": {"layers": layers, "hidden": hidden, "heads": max(hidden // 64, 1),
                               "max_positions": LENGTH + 8}}
    model = build_model("lm", params, "binned", CHANNELS, {"bin_size": BIN})
    for module in model.modules():  # as a backbone from pretrain_lm (attention_dropout 0): the fused SDPA kernel
        if type(module).__name__ == "BertSelfAttention":
            module.dropout.p = 0.0
    return model


def train_step_rate(batch: int, threads: int, steps: int = 3, arch: str = "bpnet") -> float:
    """Samples/s of a training step of `build(arch)` on one batch of the store's shape (median of steps)."""
    import torch

    from dnalm import tasks

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(arch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (batch, LENGTH)), 4).float().transpose(1, 2)
    y = torch.rand(batch, CHANNELS, LENGTH // BIN) * 10
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = tasks.get("tracks").loss(model(x), y, 0.0)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def child(paths: list[str], batch: int, mode: str = "pread") -> dict:
    """Run `read_epoch` in a fresh interpreter, so its peak RSS is that of this store size alone."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
            "from bench_store import read_epoch;"
            "print(json.dumps(read_epoch(json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))")
    out = subprocess.run([sys.executable, "-c", code, str(SCRIPTS), str(Path(__file__).parent), json.dumps(paths),
                          str(batch), mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=1000, help="windows of the 1x store (10x gets ten times)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where the temporary stores go (default: the system's)")
    parser.add_argument("--lm", default="2x128", help="LM trunk LAYERSxHIDDEN for the LM step (0: none)")
    parser.add_argument("--tracks-rss", default="1,100", help="track counts of the peak-RSS comparison ('': none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        sizes = {"1x": args.windows, "10x": 10 * args.windows}
        stores = {name: make_store(Path(tmp) / name, n) for name, n in sizes.items()}
        gib = sum(Path(p).stat().st_size for p in stores["10x"][:2]) / 2**30
        print(f"stores: {sizes['1x']} and {sizes['10x']} windows of {LENGTH} bp + 2 x {FLANK} flank, "
              f"{CHANNELS} tracks x {(LENGTH + 2 * FLANK) // BIN} bins; 10x store {gib:.2f} GiB on disk")
        results = {name: [child(paths, args.batch) for _ in range(args.repeats)] for name, paths in stores.items()}
        mmap = {name: child(paths, args.batch, "mmap") for name, paths in stores.items()}
    for name, runs in results.items():
        rates = [r["windows_per_s"] for r in runs]
        rss = [r["peak_rss_mib"] for r in runs]
        print(f"{name} ({sizes[name]} windows): loader windows/s " + " ".join(f"{r:.0f}" for r in rates)
              + f"  median {statistics.median(rates):.0f}; peak RSS MiB " + " ".join(f"{r:.0f}" for r in rss)
              + f"  median {statistics.median(rss):.0f}")
    ratio = statistics.median(r["peak_rss_mib"] for r in results["10x"]) / statistics.median(
        r["peak_rss_mib"] for r in results["1x"])
    print(f"peak RSS 10x / 1x: {ratio:.3f} (goal <= 1.2)")
    print(f"for comparison, memory-map indexing (the former reads): peak RSS MiB 1x {mmap['1x']['peak_rss_mib']:.0f}, "
          f"10x {mmap['10x']['peak_rss_mib']:.0f}, ratio {mmap['10x']['peak_rss_mib'] / mmap['1x']['peak_rss_mib']:.2f}")
    step = train_step_rate(args.batch, args.threads)
    loader = statistics.median(r["windows_per_s"] for r in results["10x"])
    print(f"BPNet training step (32 filters x 8 layers, batch {args.batch} x {LENGTH} bp, {args.threads} threads): "
          f"{step:.2f} samples/s; loader / step = {loader / step:.0f}x")
    if args.lm != "0":
        lm = train_step_rate(1, args.threads, arch=args.lm)
        print(f"LM training step ({args.lm} nucleotide BERT from scratch, batch 1 x {LENGTH} bp, {args.threads} "
              f"threads): {lm:.3f} samples/s; BPNet / LM = {step / lm:.1f}x; loader / LM step = {loader / lm:.0f}x")
    if args.tracks_rss:
        tracks_rss(args)


def tracks_rss(args) -> None:
    """Peak RSS of an epoch's reads from stores of the same windows with each track count of `--tracks-rss`."""
    counts = [int(c) for c in args.tracks_rss.split(",")]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rss = {}
        for c in counts:
            paths = make_store(Path(tmp) / f"tracks{c}", args.windows, c)
            runs = [child(paths, args.batch) for _ in range(args.repeats)]
            rss[c] = statistics.median(r["peak_rss_mib"] for r in runs)
            rate = statistics.median(r["windows_per_s"] for r in runs)
            print(f"{c} tracks ({args.windows} windows): loader windows/s median {rate:.0f}; peak RSS MiB median "
                  f"{rss[c]:.0f}")
            shutil.rmtree(Path(tmp) / f"tracks{c}")
    print(f"peak RSS {counts[-1]} / {counts[0]} tracks: {rss[counts[-1]] / rss[counts[0]]:.3f}")


if __name__ == "__main__":
    main()
