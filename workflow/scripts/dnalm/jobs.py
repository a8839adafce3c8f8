"""How every entry script starts: its log, logging, and where the job runs (host, Slurm job, GPUs)."""

from __future__ import annotations

import logging
import os
import socket
import sys

JOB_VARIABLES = ("SLURM_JOB_ID", "SLURM_JOB_PARTITION", "CUDA_VISIBLE_DEVICES")


def job_environment(environ: dict[str, str] | None = None) -> str:
    """One line naming the host and the scheduler variables of this job (`-` for those not set).

    Args:
        environ: The environment to read; `os.environ` by default.

    Returns:
        E.g. `host=node1 SLURM_JOB_ID=4211 SLURM_JOB_PARTITION=gpu CUDA_VISIBLE_DEVICES=0`.
    """
    environ = os.environ if environ is None else environ
    return " ".join([f"host={socket.gethostname()}", *(f"{k}={environ.get(k, '-')}" for k in JOB_VARIABLES)])


def log_job_environment(logger: logging.Logger | None = None) -> None:
    """Write `job_environment()` to the job's log, so a log shows where the job ran and which GPU it was given."""
    (logger or logging.getLogger("dnalm")).info("job environment: %s", job_environment())


def start(snakemake, *, append: bool = False, environment: bool = False) -> logging.Logger:
    """Start a job: stderr goes to the rule's log (appended for training jobs, so a resumed job keeps the earlier
    attempt's lines), logging writes there, and `environment` also logs where the job runs.

    Args:
        snakemake: The object Snakemake injects into entry scripts.
        append: Append to the log instead of starting it afresh.
        environment: Log `job_environment()` (jobs that may run on a cluster node).

    Returns:
        The `dnalm` logger.
    """
    sys.stderr = open(snakemake.log[0], "a" if append else "w", buffering=1)  # noqa: SIM115 (open for the job's life)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger = logging.getLogger("dnalm")
    if environment:
        log_job_environment(logger)
    return logger
