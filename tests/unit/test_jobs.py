"""dnalm.jobs: the job-environment line that training logs write (the Slurm test reads it); a training job's log
keeps every attempt's lines although Snakemake deletes it before each attempt."""

import logging
import socket
from pathlib import Path

from dnalm.jobs import job_environment, kept_log, log_job_environment, open_log, parallel_resources


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


def test_a_training_log_keeps_every_attempt_and_the_lines_of_one_still_running(tmp_path: Path) -> None:
    log = tmp_path / "train_model" / "bpnet.log"
    log.parent.mkdir()
    first = open_log(log, append=True)
    first.write("attempt 1 starts\n")
    log.unlink()  # what Snakemake does before it runs the job again; the first attempt is still running
    second = open_log(log, append=True)
    first.write("attempt 1 goes on\n")
    second.write("attempt 2 starts\n")
    first.close()
    second.close()
    assert log.read_text() == "attempt 1 starts\nattempt 1 goes on\nattempt 2 starts\n"
    assert kept_log(log) == tmp_path / "train_model" / ".bpnet.log.all" and kept_log(log).samefile(log)


def test_a_log_written_before_it_was_kept_is_kept_and_other_logs_start_afresh(tmp_path: Path) -> None:
    log = tmp_path / "bpnet.log"
    log.write_text("an older attempt\n")  # no kept copy yet (a log of an earlier dnalm)
    with open_log(log, append=True) as stream:
        stream.write("this attempt\n")
    assert log.read_text() == kept_log(log).read_text() == "an older attempt\nthis attempt\n"
    with open_log(tmp_path / "windows.log") as stream:
        stream.write("one\n")
    with open_log(tmp_path / "windows.log") as stream:
        stream.write("two\n")
    assert (tmp_path / "windows.log").read_text() == "two\n"


def test_data_parallel_jobs_ask_slurm_for_one_task_per_gpu():
    assert parallel_resources({}) == {"gpu": 1}
    assert parallel_resources({"devices": 4, "nodes": 2}) == {"gres": "gpu:4", "nodes": 2, "mpi": "srun",
                                                             "tasks_per_node": 4}
    # one GPU on each of 2 nodes: --ntasks=2 --ntasks-per-gpu=1 (srun jobs need more than one task per node otherwise)
    assert parallel_resources({"devices": 1, "nodes": 2}) == {"gres": "gpu:1", "nodes": 2, "mpi": "srun", "tasks": 2,
                                                             "tasks_per_gpu": 1}
