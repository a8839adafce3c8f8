"""Overhead of the cluster path: the reduced workflow through `--profile profiles/slurm` against `--cores 2`.

Starts the local one-node Slurm cluster of tests/cluster (as root; installs Debian's Slurm packages if needed), then
runs the reduced workflow of the cluster test (a few hundred windows, one small BPNet, 2 epochs; from the demo's inputs
to results/eval/polya/comparison.tsv) in fresh working directories, alternately with `--cores 2` and through Slurm
with profiles/slurm as a user edits it for this node (partitions, one CPU per job). Prints every run and the medians.

Usage: python benchmarks/bench_cluster.py [runs=3] [init_seconds=profile's]
    init_seconds overrides slurm-init-seconds-before-status-checks (the test uses 2; the profile 20).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "cluster"))
import slurm_setup

TARGET = "results/eval/polya/comparison.tsv"


def timed_run(args: Callable[[Path], list[str]], env: dict[str, str]) -> tuple[float, int]:
    """Wall time of the reduced workflow in a fresh directory with `args(dir)`, and its number of Slurm jobs."""
    workdir = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    (workdir / "config.yaml").write_text(yaml.safe_dump(slurm_setup.reduced_config(), sort_keys=False))
    start = time.perf_counter()
    proc = subprocess.run([*slurm_setup.command(workdir), *args(workdir), TARGET], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"run in {workdir} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return elapsed, (proc.stdout + proc.stderr).count("has been submitted with SLURM jobid")


def main(runs: int = 3, init_seconds: int | None = None) -> None:
    reason = slurm_setup.unavailable()
    if reason:
        raise SystemExit(reason)
    env = slurm_setup.start()
    shipped = yaml.safe_load((slurm_setup.REPO / "profiles" / "slurm" / "config.yaml").read_text())
    key = "slurm-init-seconds-before-status-checks"
    settings = {key: shipped[key] if init_seconds is None else init_seconds}
    profile_dir = Path(tempfile.mkdtemp(prefix="bench_profile_"))
    profile = slurm_setup.cluster_profile(profile_dir, **settings)
    init = settings[key]
    modes = {"--cores 2": lambda w: ["--cores", "2"], "--profile profiles/slurm": lambda w: ["--profile", str(profile)]}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        for i in range(runs):
            for mode, args in modes.items():
                seconds, jobs = timed_run(args, env)
                times[mode].append(seconds)
                print(f"run {i + 1}, {mode}: {seconds:.0f} s" + (f" ({jobs} Slurm jobs)" if jobs else ""), flush=True)
    finally:
        slurm_setup.stop()
    local, cluster = (statistics.median(times[mode]) for mode in modes)
    print(f"reduced workflow to {TARGET}, median of {runs}: --cores 2 {local:.0f} s; through Slurm "
          f"(init {init} s before status checks) {cluster:.0f} s; overhead {cluster - local:.0f} s "
          f"({cluster / local:.1f}x)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
