"""The Slurm profile on a real one-node Slurm cluster (Debian's slurmctld, slurmd, munge; two fake GPUs).

One run of `snakemake --profile <profiles/slurm, edited for this node>` trains and evaluates a small BPNet on windows
prepared by a local run, and trains the same BPNet data-parallel (train.devices: 2) as one 2-task job. While it runs, the training job is cancelled with `scancel`; a second model, whose backbone
directory is corrupt, fails every time. Snakemake must report the cancelled job and retry it with more memory, retry
the failing one and then report it, and leave no partial outputs. The cluster tests run last in the session
(tests/conftest.py) and stop the cluster at the end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import slurm_setup

from dnalm import tokenize

pytestmark = [pytest.mark.slow, pytest.mark.cluster]
TARGETS = ("results/eval/polya/bpnet/metrics.json", "results/models/polya/broken/best.ckpt",
           "results/models/polya/bpnet_ddp/best.ckpt")
RETRIES = 1  # the profile's 2 would add a third failing attempt of the broken model: time only


def jobs(env: dict[str, str], workdir: Path) -> pd.DataFrame:
    """The cluster's jobs (running or finished in the last MinJobAge) that ran in `workdir`, with rule and state."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%k|%T|%P|%Z"], env=env, capture_output=True,
                         text=True, check=True).stdout
    rows = [line.split("|") for line in out.splitlines()]
    table = pd.DataFrame(rows, columns=["id", "comment", "state", "partition", "workdir"])
    table = table[table["workdir"] == str(workdir)].astype({"id": int}).sort_values("id")
    return table.assign(rule=table["comment"].str.extract(r"^rule_(\w+?)_wildcards_")[0])


def job_detail(env: dict[str, str], job_id: int) -> str:
    """`scontrol show job` of one job, on one line."""
    return subprocess.run(["scontrol", "-o", "show", "job", str(job_id)], env=env, capture_output=True, text=True,
                          check=True).stdout


def cancel_training_once(env: dict[str, str], workdir: Path, proc: subprocess.Popen) -> int:
    """`scancel` the BPNet training job as soon as Slurm runs it; return its Slurm job id."""
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        running = jobs(env, workdir).query("comment == 'rule_train_model_wildcards_polya_bpnet' and state == 'RUNNING'")
        if len(running):
            job_id = int(running["id"].iloc[0])
            subprocess.run(["scancel", str(job_id)], env=env, check=True)
            return job_id
        time.sleep(0.2)
    raise AssertionError(f"the training job never ran:\n{(workdir / 'snakemake.log').read_text()[-3000:]}")


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory) -> dict:
    """Prepare windows locally, then train and evaluate through Slurm with one scancel and one corrupt model.

    The cluster starts while the windows are prepared, and is stopped when the module's tests are done.
    """
    reason = slurm_setup.unavailable()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("slurm")
    config = slurm_setup.reduced_config()
    corrupt = workdir / "corrupt_backbone"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{ this is not JSON")  # fails when the job loads it, not in the config check
    tokens = list(dict.fromkeys(s.get("token") or name for name, s in config["species"].items()))
    vocab = tokenize.vocabulary("nucleotide", tokens)
    (corrupt / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    config["models"]["broken"] = {"arch": "lm", "lm": {"backbone": str(corrupt), "finetune": "frozen", "head": "conv"},
                                  "train": {"epochs": 1, "max_batches_per_epoch": 1}}
    config["models"]["bpnet"]["train"]["precision"] = "fp32"  # the same arithmetic on every CPU, for the comparison
    config["models"]["bpnet_ddp"] = {**config["models"]["bpnet"],
                                     "train": {**config["models"]["bpnet"]["train"], "devices": 2}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    stores = [f"results/windows/polya/{split}.json" for split in ("train", "val", "test")]
    prep_log = workdir / "prep.log"
    with prep_log.open("w") as log:
        prep = subprocess.Popen([*slurm_setup.command(workdir), "--cores", "2", *stores], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proc = None
    try:
        env = slurm_setup.start()
        assert prep.wait(timeout=300) == 0, prep_log.read_text()[-3000:]
        profile = slurm_setup.cluster_profile(workdir / "profile", retries=RETRIES)
        run_log = workdir / "snakemake.log"
        with run_log.open("w") as log:
            proc = subprocess.Popen([*slurm_setup.command(workdir), "--profile", str(profile), "--keep-going",
                                     *TARGETS], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        cancelled = cancel_training_once(env, workdir, proc)
        proc.wait(timeout=400)
        yield {"workdir": workdir, "env": env, "returncode": proc.returncode, "output": run_log.read_text(),
               "cancelled": cancelled, "jobs": jobs(env, workdir)}
    finally:
        for process in (prep, proc):
            if process is not None and process.poll() is None:
                process.kill()
        slurm_setup.stop()


def test_jobs_went_through_slurm(slurm_run: dict) -> None:
    table = slurm_run["jobs"]
    assert {"train_model", "evaluate_model"} <= set(table["rule"]), table
    assert "compare_models" not in set(table["rule"]) and "download_genome" not in set(table["rule"])  # localrules
    evaluate = table[table["rule"] == "evaluate_model"]
    assert list(evaluate["state"]) == ["COMPLETED"] and list(evaluate["partition"]) == ["gpu"]  # a GPU rule too
    logs = slurm_run["workdir"] / ".snakemake/slurm_logs"
    assert (logs / "rule_evaluate_model/polya_bpnet" / f"{evaluate['id'].iloc[0]}.log").exists()


def test_gpu_rule_got_a_gpu(slurm_run: dict) -> None:
    train = slurm_run["jobs"].query("comment == 'rule_train_model_wildcards_polya_bpnet'")
    final = int(train["id"].iloc[-1])
    detail = job_detail(slurm_run["env"], final)
    assert "Partition=gpu" in detail and "TresPerJob=gres:gpu:1" in detail, detail
    log = (slurm_run["workdir"] / "logs/train_model/polya/bpnet.log").read_text()
    assert re.search(rf"SLURM_JOB_ID={final} SLURM_JOB_PARTITION=gpu CUDA_VISIBLE_DEVICES=[01]\b", log), log


def test_cancelled_job_is_reported_and_retried_with_more_memory(slurm_run: dict) -> None:
    train = slurm_run["jobs"].query("comment == 'rule_train_model_wildcards_polya_bpnet'")
    assert list(train["id"]) == [slurm_run["cancelled"], train["id"].iloc[-1]] and len(train) == 2, train
    assert list(train["state"]) == ["CANCELLED", "COMPLETED"]
    assert f"SLURM-job '{slurm_run['cancelled']}' failed, SLURM status is: 'CANCELLED'" in slurm_run["output"]
    first, second = (job_detail(slurm_run["env"], int(i)) for i in train["id"])
    assert "MinMemoryNode=8000M" in first and "MinMemoryNode=16000M" in second  # mem_mb doubles on a retry
    assert "TimeLimit=12:00:00" in first and "TimeLimit=1-00:00:00" in second  # and so does runtime
    history = pd.read_csv(slurm_run["workdir"] / "results/models/polya/bpnet/history.tsv", sep="\t")
    assert list(history["epoch"]) == [1, 2]
    metrics = json.loads((slurm_run["workdir"] / "results/eval/polya/bpnet/metrics.json").read_text())
    assert metrics["n_windows"] == 128 and 0 <= metrics["auroc"] <= 1


def test_failing_job_is_retried_then_reported(slurm_run: dict) -> None:
    assert slurm_run["returncode"] != 0
    broken = slurm_run["jobs"].query("comment == 'rule_train_model_wildcards_polya_broken'")
    assert list(broken["state"]) == ["FAILED"] * (1 + RETRIES), broken  # the first attempt and every retry
    assert "Error in rule train_model" in slurm_run["output"] and "wildcards: task=polya, model=broken" in \
        slurm_run["output"]
    log = (slurm_run["workdir"] / "logs/train_model/polya/broken.log").read_text()
    assert "config.json" in log
    for job_id in broken["id"]:  # Slurm keeps the logs of failed jobs
        assert (slurm_run["workdir"] / f".snakemake/slurm_logs/rule_train_model/polya_broken/{job_id}.log").exists()


def test_no_partial_outputs(slurm_run: dict) -> None:
    models = slurm_run["workdir"] / "results/models/polya"
    assert not any((models / "broken" / name).exists() for name in ("best.ckpt", "history.tsv", "model.json"))
    assert all((models / "bpnet" / name).stat().st_size > 0 for name in ("best.ckpt", "history.tsv", "model.json"))
    incomplete = slurm_run["workdir"] / ".snakemake/incomplete"
    assert not incomplete.exists() or not any(incomplete.iterdir())


def test_data_parallel_training_is_one_job_of_two_tasks_that_trains_as_one_process(slurm_run: dict) -> None:
    ddp = slurm_run["jobs"].query("comment == 'rule_train_model_wildcards_polya_bpnet_ddp'")
    assert list(ddp["state"]) == ["COMPLETED"], ddp
    detail = job_detail(slurm_run["env"], int(ddp["id"].iloc[0]))
    assert "Partition=gpu" in detail and "NumTasks=2" in detail and re.search(r"TresPerNode=gres[:/]gpu:2", detail), \
        detail
    log = (slurm_run["workdir"] / "logs/train_model/polya/bpnet_ddp.log").read_text()
    assert "srun --ntasks=2 --nodes=1 --ntasks-per-node=2" in log and "[rank 0]" in log, log
    assert "2 process(es)" in log
    single, parallel = (pd.read_csv(slurm_run["workdir"] / f"results/models/polya/{m}/history.tsv", sep="\t")
                        for m in ("bpnet", "bpnet_ddp"))
    for column in ("train_loss", "val_loss"):  # the tolerance of tests/unit/test_distributed.py
        assert np.allclose(parallel[column], single[column], rtol=1e-5), (column, single, parallel)
