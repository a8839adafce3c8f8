"""dnalm.jobs: the job-environment line that training logs write (the Slurm test reads it)."""

import logging
import socket

from dnalm.jobs import job_environment, log_job_environment


def test_job_environment_names_slurm_job_and_gpus() -> None:
    line = job_environment({"SLURM_JOB_ID": "42", "SLURM_JOB_PARTITION": "gpu", "CUDA_VISIBLE_DEVICES": "0,1"})
    assert line == f"host={socket.gethostname()} SLURM_JOB_ID=42 SLURM_JOB_PARTITION=gpu CUDA_VISIBLE_DEVICES=0,1"


def test_job_environment_outside_slurm() -> None:
    assert job_environment({}).endswith("SLURM_JOB_ID=- SLURM_JOB_PARTITION=- CUDA_VISIBLE_DEVICES=-")


def test_log_job_environment(caplog, monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    with caplog.at_level(logging.INFO):
        log_job_environment()
    assert "job environment: host=" in caplog.text and "SLURM_JOB_ID=7" in caplog.text
