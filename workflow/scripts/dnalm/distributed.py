"""Data-parallel runs with torch.distributed: how the processes start, which rank does what, and how they agree.

A run with `devices` × `nodes` > 1 processes (`train.devices`, `train.nodes`; `pretrain.<id>.devices`/`nodes`) is
started by `launch` from the one process Snakemake runs (which holds the run directory's lock):

- inside a Slurm allocation (`SLURM_JOB_ID` set), with `srun`: one Slurm task per process, `--ntasks-per-node`
  devices on each of `nodes` nodes; rank, world size and local rank come from `SLURM_PROCID`, `SLURM_NTASKS` and
  `SLURM_LOCALID`, the rendezvous address is the launching host;
- elsewhere (a workstation), with torchrun's engine (`torch.distributed.launcher.elastic_launch`, a standalone c10d
  rendezvous on localhost) on this one machine; more than one node needs Slurm.

Each process (`worker`) joins the process group — NCCL on GPUs (process `local_rank` takes GPU `local_rank` of its
node), gloo on CPUs — with `threads // devices` CPU threads (under srun: the cores Slurm bound its task to), and runs
the given function. The result of rank 0 is returned. The payload (function and arguments) travels as a pickle file in the run directory.

Helpers below (`all_sum`, `gather`, `wrap`, `no_sync`) are what the training loops need: sums of losses, weights and
stop flags over ranks, validation parts of every rank, the DistributedDataParallel model and gradient accumulation;
each is the identity in one process.
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from dnalm.checkpoint import STOP_SIGNALS

log = logging.getLogger(__name__)

#: The payload file a launch leaves in the run directory while its processes run.
PAYLOAD = ".distributed_payload.pkl"


@dataclass(frozen=True)
class Group:
    """This process's place in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes checkpoints, histories and logs (rank 0)."""
        return self.rank == 0


SINGLE = Group()


def current() -> Group:
    """The process group this process belongs to (`SINGLE` when torch.distributed is not initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return Group(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def launch(function: str, kwargs: dict, *, devices: int, nodes: int, threads: int, run_dir: str | Path,
           log_file: str | None = None):
    """Run `function(**kwargs)` in `devices` × `nodes` processes (see the module docstring); rank 0's result.

    Args:
        function: `module:name` of the function each process runs (in `worker`, inside the process group).
        kwargs: Its arguments (picklable).
        devices: Processes per node (GPUs per node, or CPU processes).
        nodes: Nodes (more than one needs a Slurm allocation).
        threads: CPU threads of the whole job; each process gets `threads // devices`.
        run_dir: Where the payload file is written (the run's directory).
        log_file: A log each process appends its lines to (rank-prefixed); None: stderr only.
    """
    world = devices * nodes
    payload = Path(run_dir) / PAYLOAD
    tmp = payload.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps({"function": function, "kwargs": kwargs, "threads": max(1, threads // devices),
                                  "log_file": log_file}))
    tmp.replace(payload)
    try:
        if os.environ.get("SLURM_JOB_ID") and shutil.which("srun"):
            return _srun(payload, devices, nodes)
        if nodes > 1:
            raise RuntimeError(f"nodes: {nodes} needs a Slurm allocation (srun); on one machine set nodes: 1")
        return _local(payload, devices)
    finally:
        payload.unlink(missing_ok=True)
        log.info("%d processes of %s ended", world, function)


def _local(payload: Path, devices: int):
    """`devices` processes on this machine with torchrun's engine (each `python -m dnalm.distributed <payload>`, a
    fresh interpreter: Snakemake's entry script is never imported again); rank 0's result."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=devices, rdzv_backend="c10d",
                          rdzv_endpoint="localhost:0", run_id=str(uuid.uuid4()), max_restarts=0,
                          monitor_interval=0.1, signals_to_handle="SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1")
    log.info("starting %d processes on this machine (torch.distributed elastic launch)", devices)
    with _result(payload) as result, _package_on_path():
        elastic_launch(config, sys.executable)("-m", "dnalm.distributed", str(payload))
        return pickle.loads(result.read_bytes())


def _srun(payload: Path, devices: int, nodes: int):
    """`devices` × `nodes` Slurm tasks with srun in the current allocation; rank 0's result."""
    world = devices * nodes
    command = ["srun", f"--ntasks={world}", f"--nodes={nodes}", f"--ntasks-per-node={devices}", "--kill-on-bad-exit=1",
               sys.executable, "-m", "dnalm.distributed", str(payload)]
    log.info("starting %d processes on %d node(s): %s", world, nodes, " ".join(command))
    with _result(payload) as result, _package_on_path():
        env = {**os.environ, "MASTER_ADDR": socket.gethostname(), "MASTER_PORT": str(_free_port())}
        proc = subprocess.Popen(command, env=env, preexec_fn=die_with_parent)  # noqa: PLW1509 (one thread here)
        forward = {sig: signal.signal(sig, lambda signum, _: proc.send_signal(signum)) for sig in STOP_SIGNALS}
        try:  # srun passes a stop signal on to the tasks, which checkpoint and stop; this process waits for them
            if proc.wait():
                raise subprocess.CalledProcessError(proc.returncode, command)
        finally:
            for sig, handler in forward.items():
                signal.signal(sig, handler)
        return pickle.loads(result.read_bytes())


@contextmanager
def _result(payload: Path) -> Iterator[Path]:
    """The file rank 0 writes its result to (removed before and after)."""
    result = payload.with_suffix(".result")
    result.unlink(missing_ok=True)
    try:
        yield result
    finally:
        result.unlink(missing_ok=True)


@contextmanager
def _package_on_path() -> Iterator[None]:
    """PYTHONPATH with the directory of the `dnalm` package first, for the processes started meanwhile."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), *filter(None, [before])])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before


def _free_port() -> int:
    """A TCP port free on this host now."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (`PR_SET_PDEATHSIG`), so the processes of a launcher
    killed with SIGKILL never train on unlocked: the rerun's lock would not see them."""
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def worker(payload_path: str):
    """One process of a launch: join the group, run the payload's function, leave the group; its result."""
    if "SLURM_PROCID" not in os.environ:  # started by this machine's launcher, which holds the run's lock
        die_with_parent()
    payload = pickle.loads(Path(payload_path).read_bytes())
    if "SLURM_PROCID" in os.environ and "RANK" not in os.environ:  # started by srun
        os.environ.update(RANK=os.environ["SLURM_PROCID"], WORLD_SIZE=os.environ["SLURM_NTASKS"],
                          LOCAL_RANK=os.environ["SLURM_LOCALID"])
    rank = int(os.environ["RANK"])
    _log_to(payload["log_file"], rank)
    # an srun task runs on the cores Slurm bound it to (cpus_per_gpu); a local process on its share of the job's
    torch.set_num_threads(len(os.sched_getaffinity(0)) if "SLURM_PROCID" in os.environ else payload["threads"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local % torch.cuda.device_count())
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        out = resolve(payload["function"])(**payload["kwargs"])
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if rank == 0:
        Path(payload_path).with_suffix(".result").write_bytes(pickle.dumps(out))
    return out


def _log_to(log_file: str | None, rank: int) -> None:
    """Logging of a worker: rank 0 at INFO, the others at WARNING, each line naming its rank."""
    stream = open(log_file, "a", buffering=1) if log_file else sys.stderr  # noqa: SIM115 (for the process's life)
    logging.basicConfig(stream=stream, level=logging.INFO if rank == 0 else logging.WARNING, force=True,
                        format=f"%(asctime)s %(levelname)s [rank {rank}] %(message)s")


def device(group: Group, preferred: str | None = None) -> torch.device:
    """The device of a rank: its node's GPU `local_rank` when there are GPUs, else the CPU (or `preferred`)."""
    if group.world > 1 and torch.cuda.is_available():
        return torch.device("cuda", group.local_rank % torch.cuda.device_count())
    from dnalm.device import pick_device

    return pick_device(preferred)


def all_sum(values: list[float], group: Group) -> list[float]:
    """Element-wise sums of `values` over ranks (float64; the values themselves in one process)."""
    if group.world == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def gather(obj, group: Group) -> list:
    """`obj` of every rank, in rank order (`[obj]` in one process)."""
    if group.world == 1:
        return [obj]
    out = [None] * group.world
    dist.all_gather_object(out, obj)
    return out


def share(n: int, group: Group, micro_batch: int | None = None) -> tuple[list[np.ndarray], bool]:
    """This process's rows of a global batch of `n` (rank, rank + world, …) in micro-batches of at most
    `micro_batch`, and whether it has none (it then takes part with row 0, to be weighted 0: every process must run
    a backward pass for the gradient all-reduce)."""
    mine = np.arange(group.rank, n, group.world)
    empty = len(mine) == 0
    if empty:
        mine = np.arange(1)
    size = micro_batch or len(mine)
    return [mine[i : i + size] for i in range(0, len(mine), size)], empty


def checkpoint_due(clock, group: Group) -> bool:
    """`clock.step()` (a `dnalm.checkpoint.Checkpointer`) agreed by every process: due when due on any, and a stop
    signal to any process stops all (each then raises in `clock.saved`)."""
    due, stop = all_sum([float(clock.step()), float(clock.signal is not None)], group)
    if stop and clock.signal is None:
        clock.signal = signal.SIGTERM  # another process was asked to stop: stop with it
    return bool(due)


def wrap(model: torch.nn.Module, group: Group, dev: torch.device) -> torch.nn.Module:
    """The model as DistributedDataParallel in a group of several processes; the model itself in one."""
    if group.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def no_sync(model: torch.nn.Module, last: bool):
    """Context of one micro-batch's backward: gradients are all-reduced only with the last one of a step."""
    from contextlib import nullcontext

    if last or not hasattr(model, "no_sync"):
        return nullcontext()
    return model.no_sync()


def resolve(function: str) -> Callable:
    """The function a `module:name` string names."""
    module, name = function.split(":")
    return getattr(importlib.import_module(module), name)


if __name__ == "__main__":  # one Slurm task of `_srun`
    worker(sys.argv[1])
