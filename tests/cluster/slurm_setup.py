"""The real one-node Slurm cluster of tests/cluster and benchmarks/bench_cluster.py, and the reduced workflow they run.

`start()` runs tests/cluster/local_slurm.sh (Debian's slurmctld, slurmd and munge, one fake GPU) and returns the
environment in which sbatch, squeue and snakemake's slurm plugin find the cluster; `stop()` stops it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("local_slurm.sh")
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile")]


def unavailable() -> str | None:
    """Why a local Slurm cluster cannot be started here (None when it can: root and apt-get)."""
    if os.geteuid() != 0:
        return "starting a Slurm cluster needs root (it installs and starts slurmctld, slurmd and munge)"
    if shutil.which("apt-get") is None:
        return "starting a Slurm cluster needs apt-get (Debian's slurmctld, slurmd and munge packages)"
    return None


def start() -> dict[str, str]:
    """Start the cluster (installing its packages if needed) and return os.environ plus its SLURM_CONF."""
    proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{SCRIPT} start failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    conf = proc.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    return {**os.environ, "SLURM_CONF": conf}


def stop() -> None:
    """Cancel the cluster's jobs and stop slurmctld and slurmd."""
    subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)


def reduced_config() -> dict:
    """The demo's task on a few hundred windows (train on II), one BPNet trained for 2 short epochs, no LM, no QC."""
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    task = demo["tasks"]["polya"]
    task["split"]["chromosomes"]["train"] = ["II"]
    task["max_windows"] = {"train": 256, "val": 64, "test": 128}
    bpnet = demo["models"]["bpnet"]
    bpnet["bpnet"] = {"filters": 16, "layers": 3}
    bpnet["train"].update(epochs=2, patience=2, batch_size=32)
    return {"species": {"scer": demo["species"]["scer"]}, "tasks": {"polya": task}, "models": {"bpnet": bpnet},
            "qc": demo["qc"]}


def cluster_profile(directory: Path, cpus: int = 1, **settings) -> Path:
    """profiles/slurm edited as a user edits it once, for this one-node, 2-CPU cluster, written to `directory`.

    The GPU rules keep their GPU and partition `gpu` from the profile; what changes is the node's size (one CPU per
    job instead of 8, so that two jobs run side by side), short status checks, kept Slurm logs, and `settings`.
    """
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "cpu"
    for entry in profile["set-resources"].values():  # every GPU rule (tests/unit/test_slurm_profile.py)
        if "cpus_per_gpu" in entry:
            entry["cpus_per_gpu"] = cpus
    profile["set-threads"] = {rule: cpus for rule in ("train_model", "pretrain_lm", "evaluate_model", "run_busco")}
    profile.update({"slurm-init-seconds-before-status-checks": 2, "slurm-keep-successful-logs": True,
                    "latency-wait": 5, **settings})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


def command(workdir: Path) -> list[str]:
    """The snakemake command line for the workflow on `workdir`'s config.yaml (options and targets to append)."""
    return [*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")]
