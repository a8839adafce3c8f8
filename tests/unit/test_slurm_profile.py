"""profiles/slurm against the workflow's rules: every rule that asks for a GPU is routed to the GPU partition with
its threads as cpus_per_gpu, and the profile names no rule the workflow lacks and no CPU rule as a GPU one. Rules whose
GPUs come from the config (`devices`/`nodes`: `dnalm.jobs.parallel_resources`) get no GPU count from the profile."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILE = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
RULE = re.compile(r"^(\s*)rule (\w+):", re.MULTILINE)


def rules() -> dict[str, dict]:
    """Every rule of workflow/rules/*.smk (those inside `if`/`else` included) with its `gpu` resource and threads
    (gpu "config" where the rule takes its GPUs from the config's devices and nodes)."""
    found = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        heads = list(RULE.finditer(text))
        for i, head in enumerate(heads):
            body = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            body = re.split(r"\n(?=\S|" + head.group(1) + r"\S)", body, maxsplit=1)[0]  # up to the dedent
            gpu, threads = re.search(r"\bgpu=(\d+)", body), re.search(r"\bthreads: (\d+)", body)
            from_config = "dnalm.jobs.PARALLEL_RESOURCES" in body
            found[head.group(2)] = {"gpu": "config" if from_config else int(gpu.group(1)) if gpu else 0,
                                    "threads": int(threads.group(1)) if threads else 1, "file": smk.name}
    return found


def test_the_rule_parser_reads_resources() -> None:
    found = rules()
    assert found["train_model"]["gpu"] == "config" and found["train_model"]["threads"] == 8
    assert found["evaluate_shard"]["gpu"] == 1 and found["merge_evaluation"]["gpu"] == 0  # inside if/else
    assert found["compare_models"] == {"gpu": 0, "threads": 1, "file": "evaluate.smk"}


def test_every_gpu_rule_is_routed_to_the_gpu_partition() -> None:
    found = rules()
    gpu_rules = {name for name, rule in found.items() if rule["gpu"]}
    assert {"train_model", "pretrain_lm", "attribute", "evaluate_model", "evaluate_shard", "predict_tracks",
            "predict_tracks_shard", "score_variants", "score_variants_shard", "score_conservation"} <= gpu_rules
    routed = PROFILE["set-resources"]
    missing = sorted(gpu_rules - set(routed))
    assert not missing, f"rules with a gpu resource that profiles/slurm does not send to the GPU partition: {missing}"
    partition = routed["train_model"]["slurm_partition"]
    for name in sorted(gpu_rules):
        entry = routed[name]
        if found[name]["gpu"] == "config":  # the count comes from the config: the profile must not override it
            assert not {"gpu", "gres", "nodes", "tasks", "tasks_per_node"} & set(entry), (name, entry)
            assert entry["slurm_partition"] == partition and entry["cpus_per_gpu"] == found[name]["threads"]
            continue
        assert entry["slurm_partition"] == partition and entry["gpu"] == found[name]["gpu"], (name, entry)
        if found[name]["gpu"] == 1:
            assert entry["cpus_per_gpu"] == found[name]["threads"], (name, entry, found[name])


def test_the_profile_routes_no_cpu_rule_and_no_unknown_rule() -> None:
    found = rules()
    unknown = sorted(set(PROFILE["set-resources"]) - set(found))
    assert not unknown, f"profiles/slurm names rules the workflow does not have: {unknown}"
    cpu_rules = sorted(name for name in PROFILE["set-resources"] if not found[name]["gpu"])
    assert not cpu_rules, f"profiles/slurm gives a GPU to rules without a gpu resource: {cpu_rules}"
