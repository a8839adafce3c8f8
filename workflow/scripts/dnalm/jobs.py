"""How every entry script starts: its log, logging, and where the job runs (host, Slurm job, GPUs)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import TextIO

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


#: Slurm resources of a data-parallel job (`parallel_resources`), as the rules name them.
PARALLEL_RESOURCES = ("gpu", "gres", "nodes", "tasks", "tasks_per_node", "tasks_per_gpu", "mpi")


def world_size(block: dict) -> tuple[int, int]:
    """(devices per node, nodes) of a `train` or `pretrain` block, checked."""
    devices, nodes = int(block.get("devices") or 1), int(block.get("nodes") or 1)
    if devices < 1 or nodes < 1:
        raise ValueError(f"devices ({devices}) and nodes ({nodes}) must be at least 1")
    return devices, nodes


def parallel_resources(block: dict) -> dict:
    """Snakemake resources of a job that trains with `devices` processes on each of `nodes` nodes (a `train` or
    `pretrain` block), as snakemake-executor-plugin-slurm reads them.

    One process: one GPU (`--gpus=1`). Several: `devices` GPUs on each node (`--gres=gpu:<devices>`), `--nodes`, one
    Slurm task per GPU (`--ntasks-per-node`), and `mpi: srun`, by which the plugin runs the job's script in the allocation without
    wrapping it in a one-task srun, so that `dnalm.distributed` starts the tasks with srun itself. Resources that
    do not apply are absent.
    """
    devices, nodes = world_size(block)
    if devices * nodes == 1:
        return {"gpu": 1}
    # the plugin takes tasks_per_node (--ntasks-per-node, which sbatch refuses beside --ntasks-per-gpu) or tasks
    # (--ntasks, and --ntasks-per-gpu of tasks_per_gpu, else of tasks) and, for srun, only more than one per node
    spread = {"tasks_per_node": devices} if devices > 1 else {"tasks": nodes, "tasks_per_gpu": 1}
    return {"gres": f"gpu:{devices}", "nodes": nodes, "mpi": "srun", **spread}


def kept_log(log: str | Path) -> Path:
    """The second name under which a training job's log keeps every attempt: `.<name>.all` beside it."""
    log = Path(log)
    return log.with_name(f".{log.name}.all")


def open_log(log: str | Path, append: bool = False) -> TextIO:
    """Open a job's log for writing (line-buffered); with `append`, one that keeps every attempt's lines.

    Snakemake deletes a job's log before it runs the job again, so appending alone keeps nothing. An appended log is
    therefore a hard link to `kept_log(log)`, which Snakemake does not know: each attempt links the log to it again
    and appends, and a process of an earlier attempt that still runs (a training left behind by a Snakemake that was
    killed) keeps appending to the same file. Where the file system has no hard links the log is only appended to.

    Args:
        log: The rule's log file.
        append: Keep earlier attempts' lines (training jobs); otherwise the log starts afresh.

    Returns:
        The open log.
    """
    log = Path(log)
    if not append:
        return open(log, "w", buffering=1)
    kept = kept_log(log)
    try:
        if log.exists() and not (kept.exists() and os.path.samefile(log, kept)):
            with open(kept, "ab") as handle:  # a log written without the link: keep its lines too
                handle.write(log.read_bytes())
            log.unlink()
        if not log.exists():
            kept.touch()
            os.link(kept, log)
    except OSError as err:
        stream = open(log, "a", buffering=1)  # noqa: SIM115 (open for the job's life)
        stream.write(f"(earlier attempts' lines are not kept: cannot link {log} to {kept}: {err})\n")
        return stream
    return open(log, "a", buffering=1)


def start(snakemake, *, append: bool = False, environment: bool = False) -> logging.Logger:
    """Start a job: stderr goes to the rule's log (for training jobs one that keeps every attempt's lines, see
    `open_log`), logging writes there, and `environment` also logs where the job runs.

    Args:
        snakemake: The object Snakemake injects into entry scripts.
        append: Keep the lines of earlier attempts (and of a process of one that still runs) in the log.
        environment: Log `job_environment()` (jobs that may run on a cluster node).

    Returns:
        The `dnalm` logger.
    """
    sys.stderr = open_log(snakemake.log[0], append)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger = logging.getLogger("dnalm")
    if environment:
        log_job_environment(logger)
    return logger
