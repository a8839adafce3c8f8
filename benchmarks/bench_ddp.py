"""Data-parallel training on the CPU: 2 gloo processes × 1 thread against 1 process × 1 thread (at the same
per-process batch, so the global batch doubles) and against 1 process × 2 threads (at the 2-process global batch),
with the share of a 2-process step that is communication.

The step is `dnalm.training.train_step` of the yeast_tracks example's BPNet (32 filters × 8 layers, binned head,
Poisson loss) on a synthetic tracks store of its shape (`bench_store.make_store`: 16,384 bp windows, 5 tracks, 32 bp
bins), with the shifts and flips training draws. The 2-process runs are started by `dnalm.distributed.launch` (torchrun's
engine, gloo), as `train.devices: 2` starts them. Communication share: 1 − (step time without gradient
all-reduce, under DistributedDataParallel.no_sync) / (step time with it), both in the 2-process run (an upper bound
of what overlapping hides). Goal of [scale]: ≥ 1.7× the samples/s of one single-threaded process.

Usage: .venv/bin/python benchmarks/bench_ddp.py [--batch 4] [--steps 6] [--repeats 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_store


def worker(store: str, batch: int, steps: int, sync: bool = True) -> dict:
    """Time `steps` training steps (after one warm-up step) in this process of a (possibly 1-process) group."""
    import numpy as np
    import torch

    from dnalm import distributed
    from dnalm.store import WindowStore
    from dnalm.training import train_step

    group = distributed.current()
    torch.manual_seed(0)
    model = bench_store.build("bpnet")
    parallel = distributed.wrap(model, group, torch.device("cpu"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = WindowStore(store)
    rng = np.random.default_rng(0)
    world_batch = batch * group.world
    times = []
    for step in range(steps + 1):
        index = rng.integers(0, len(data), world_batch)
        shifts = rng.integers(-2, 3, world_batch) * data.bin_size
        flips = rng.random(world_batch) < 0.5
        t0 = time.perf_counter()
        if sync:
            train_step(parallel, optimizer, data, index, shifts, flips, count_weight=0.0, device=torch.device("cpu"),
                       group=group)
        else:
            with parallel.no_sync():
                train_step(parallel, optimizer, data, index, shifts, flips, count_weight=0.0,
                           device=torch.device("cpu"), group=group)
        if step:
            times.append(time.perf_counter() - t0)
    return {"seconds_per_step": statistics.median(times), "samples_per_step": world_batch}


def launch(store: str, batch: int, steps: int, processes: int, threads: int, sync: bool = True) -> dict:
    """One measurement: `processes` processes with `threads` threads each."""
    import torch

    from dnalm import distributed

    kwargs = {"store": store, "batch": batch, "steps": steps, "sync": sync}
    if processes == 1:
        torch.set_num_threads(threads)
        return worker(**kwargs)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as run_dir:
        return distributed.launch("bench_ddp:worker", kwargs, devices=processes, nodes=1,
                                  threads=processes * threads, run_dir=run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4, help="windows per process and step")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = bench_store.make_store(Path(tmp) / "store", args.windows)[2]
        cases = {"1 process x 1 thread": (1, 1, args.batch, True),
                 "1 process x 2 threads": (1, 2, 2 * args.batch, True),
                 "2 processes x 1 thread": (2, 1, args.batch, True),
                 "2 processes x 1 thread, no all-reduce": (2, 1, args.batch, False)}
        rates = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, (processes, threads, batch, sync) in cases.items():
                out = launch(store, batch, args.steps, processes, threads, sync)
                rates[name].append(out["samples_per_step"] / out["seconds_per_step"])
    median = {name: statistics.median(r) for name, r in rates.items()}
    base = median["1 process x 1 thread"]
    synced, unsynced = median["2 processes x 1 thread"], median["2 processes x 1 thread, no all-reduce"]
    print(json.dumps({"samples_per_s": median, "runs": rates,
                      "speedup_2_processes_vs_1x1": synced / base,
                      "speedup_1x2_threads_vs_1x1": median["1 process x 2 threads"] / base,
                      "speedup_2_processes_vs_1x2_threads": synced / median["1 process x 2 threads"],
                      "communication_share": 1 - synced / unsynced,
                      "batch_per_process": args.batch, "steps": args.steps, "repeats": args.repeats}, indent=2))


if __name__ == "__main__":
    main()
