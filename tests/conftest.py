"""Shared pytest set-up: make the dnalm package importable and tests deterministic and offline."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "tests"))  # tests/helpers.py

os.environ.setdefault("WANDB_MODE", "disabled")
# `make test` runs two pytest workers on two cores, each starting torch processes with 2 threads: OpenMP threads that
# spin while they wait would take the cores from the other worker's (benchmarks/bench_omp_wait.py). Sleeping instead
# changes no result, only who waits.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA; where there is none they are skipped with that reason.

    Tests marked `cluster` run last: they start a local Slurm cluster and stop it when they are done, so no other
    test's snakemake call meets installed Slurm clients whose controller has gone (each would wait ~9 s).
    """
    import pytest
    import torch

    items.sort(key=lambda item: "cluster" in item.keywords)  # stable: the rest keep their order

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
