"""Sharded inference: 2 shards run at the same time against 1 job, the same prediction tracks (the same total work).

A random BPNet of the demo's shape (config/config.yaml: `models.bpnet.bpnet`, the profile task's window length, two
stranded outputs) is saved as a best.ckpt; its prediction tracks over the first `--bases` bases of the demo's R64
genome (written as a FASTA, as bench_genome_tracks.py does) are made in two ways, each job in a fresh Python process:

- one job: `dnalm.prediction_tracks.write_prediction_tracks` with `--threads` threads (rule predict_tracks);
- two shards started together, each with `--shard-threads` threads (rule predict_tracks_shard; default `--threads`
  / 2, so both use the cores of the one job; `--shard-threads` = `--threads` gives each shard the one job's cores,
  as Slurm gives each shard job its own), then the merge (`merge_prediction_tracks`, rule merge_prediction_tracks,
  writing `--threads` bigWigs at a time).

Per repeat it prints the wall times (process start, imports and model loading included, as each Slurm job pays
them), the time inside the predicting call, and the speed-up one job ÷ (slowest shard + merge). The bigWigs of the
two ways are compared byte for byte. On a machine with as many free cores as the two shards' threads the speed-up
measures the overhead of sharding (process starts, the merge); across GPUs or nodes the shards add capacity.

Usage: .venv/bin/python benchmarks/bench_shards.py [--bases 1000000] [--threads 2] [--shard-threads 1] [--repeats 1]
       [--batch 64] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: Run in a child process: one job of the step, its wall time inside the call printed as JSON.
CHILD = """
import json, sys, time
sys.path.insert(0, {scripts!r})
args = json.loads(sys.argv[1])
from dnalm import prediction_tracks as pt
settings = {{"overlap": None, "scan_stride": None, "class": None, "batch_size": args["batch"]}}
start = time.perf_counter()
if args["kind"] == "one":
    out = pt.write_prediction_tracks(args["ckpt"], args["fasta"], args["out"], args["summary"], settings=settings,
                                     threads=args["threads"], device="cpu")
elif args["kind"] == "shard":
    out = pt.write_prediction_track_shard(args["ckpt"], args["fasta"], args["out"], settings=settings,
                                          shard=args["shard"], shards=args["shards"], threads=args["threads"],
                                          device="cpu")
else:
    out = pt.merge_prediction_tracks(args["parts"], args["ckpt"], args["fasta"], args["out"], args["summary"],
                                     threads=args["threads"])
print(json.dumps({{"seconds": time.perf_counter() - start, "windows": out["windows"]}}))
"""


def start_child(**args) -> subprocess.Popen:
    """Start one job in a fresh Python process."""
    code = CHILD.format(scripts=str(SCRIPTS))
    return subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen) -> dict:
    """Wait for a child and return its JSON line."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def checkpoint(path: Path) -> str:
    """A random BPNet of the demo's shape, saved as a best.ckpt of a profile task."""
    import torch
    from bench_genome_tracks import demo_bpnet

    from dnalm.checkpoint import save_atomic
    from dnalm.models import build_model

    params, length = demo_bpnet()
    torch.manual_seed(0)
    model = build_model("bpnet", params, "profile", 2)
    save_atomic(
        {
            "arch": "bpnet",
            "model_params": params,
            "head": model.head_spec,
            "task_type": "profile",
            "channels": ["polya/+", "polya/-"],
            "length": length,
            "state_dict": model.state_dict(),
        },
        path,
    )
    return str(path)


def one_repeat(work: Path, ckpt: str, fasta: str, threads: int, shard_threads: int, batch: int) -> dict:
    """One job, then two shards at once and their merge; wall times and the bigWigs compared."""
    common = {"ckpt": ckpt, "fasta": fasta, "batch": batch}
    t0 = time.perf_counter()
    one = finish(
        start_child(kind="one", out=str(work / "one"), summary=str(work / "one.json"), threads=threads, **common)
    )
    one_wall = time.perf_counter() - t0
    parts = [str(work / f"part{i}") for i in range(2)]
    t0 = time.perf_counter()
    procs = [
        start_child(kind="shard", out=part, shard=i, shards=2, threads=shard_threads, **common)
        for i, part in enumerate(parts)
    ]
    shards = [finish(p) for p in procs]
    shards_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    merge = finish(
        start_child(
            kind="merge", parts=parts, out=str(work / "two"), summary=str(work / "two.json"), threads=threads, **common
        )
    )
    merge_wall = time.perf_counter() - t0
    same = all(
        filecmp.cmp(work / "one" / name, work / "two" / name, shallow=False)
        for name in ("polya.plus.bw", "polya.minus.bw")
    )
    return {
        "windows": one["windows"],
        "one_wall": one_wall,
        "one_call": one["seconds"],
        "shards_wall": shards_wall,
        "shard_calls": [s["seconds"] for s in shards],
        "shard_windows": [s["windows"] for s in shards],
        "merge_wall": merge_wall,
        "merge_call": merge["seconds"],
        "identical": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bases", type=int, default=1_000_000, help="bases of R64 predicted")
    parser.add_argument("--threads", type=int, default=2, help="threads of the one job (each shard: half)")
    parser.add_argument("--shard-threads", type=int, default=None, help="threads of each shard (default: half)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64, help="windows per forward pass")
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    args = parser.parse_args()

    from bench_genome_tracks import write_chunk

    shard_threads = args.shard_threads or max(args.threads // 2, 1)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench_shards.") as tmp:
        tmp = Path(tmp)
        fasta = tmp / "genome.fa"
        bases = write_chunk(fasta, args.bases)
        ckpt = checkpoint(tmp / "best.ckpt")
        print(
            f"prediction tracks of a random demo BPNet over {bases:,} bp; one job: {args.threads} threads; "
            f"2 shards at once: {shard_threads} thread(s) each, then the merge"
        )
        speedups = []
        for repeat in range(args.repeats):
            work = tmp / f"r{repeat}"
            work.mkdir()
            r = one_repeat(work, ckpt, str(fasta), args.threads, shard_threads, args.batch)
            speedup = r["one_wall"] / (r["shards_wall"] + r["merge_wall"])
            speedups.append(speedup)
            print(
                f"repeat {repeat}: {r['windows']:,} windows; one job {r['one_wall']:.1f} s (call {r['one_call']:.1f} s)"
                f" | 2 shards at once {r['shards_wall']:.1f} s (calls {r['shard_calls'][0]:.1f} and "
                f"{r['shard_calls'][1]:.1f} s, windows {r['shard_windows'][0]:,} + {r['shard_windows'][1]:,}) "
                f"+ merge {r['merge_wall']:.1f} s (call {r['merge_call']:.1f} s) | speed-up {speedup:.2f}x "
                f"(without the merge {r['one_wall'] / r['shards_wall']:.2f}x) | bigWigs identical: "
                f"{r['identical']}"
            )
        print(
            f"median speed-up of 2 shards against 1 job: {statistics.median(speedups):.2f}x "
            f"over {args.repeats} repeat(s)"
        )


if __name__ == "__main__":
    main()
