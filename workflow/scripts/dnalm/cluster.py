"""What a job knows about the scheduler that runs it: Slurm job id, partition and the GPUs it was given."""

from __future__ import annotations

import logging
import os
import socket

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
