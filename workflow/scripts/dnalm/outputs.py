"""What a run produces beyond its rules' own outputs: the report manifest (every file the report reads, with the
names it belongs to) and the final outputs a finished run holds."""

from __future__ import annotations

from dnalm import tasks
from dnalm.config import interpret_outputs, interpret_pairs, run_spec, sweep_tables, task_runs
from dnalm.config_conservation import conservation_jobs
from dnalm.config_variants import track_runs, variant_jobs
from dnalm.crossfold import comparison_units, pretraining_pairs


def report_manifest(cfg: dict) -> list[dict]:
    """Every file the report reads, as records: `kind`, `path` and the names it belongs to (`species`, `task`,
    `task_type`, `model`, `lm`, `output`, `input`, `track`, `vcf`), in config order. The report rule's input and its script both use it, so no
    section ever parses a path."""
    records = [*_input_records(cfg), *_qc_records(cfg)]
    for lm in cfg["pretrain"]:
        for kind, name in (("pretrain_summary", "pretrain.json"), ("pretrain_history", "history.tsv"),
                           ("pretrain_homology", "homology_excluded.tsv")):
            records.append({"kind": kind, "lm": lm, "path": f"results/pretrain/{lm}/{name}"})
    for lm, species in conservation_jobs(cfg):
        records += [{"kind": kind, "lm": lm, "species": species, "path": f"results/conservation/{lm}/{species}.{ext}"}
                    for kind, ext in (("conservation", "json"), ("conservation_scores", "npz"))]
    for task, spec in cfg["tasks"].items():
        task_records = [{"kind": "split_counts", "path": f"results/splits/{task}/counts.tsv"},
                        {"kind": "homology_summary", "path": f"results/splits/{task}/summary.tsv"},
                        *_model_records(cfg, task)]
        records += [{**r, "task": task, "task_type": spec["type"]} for r in task_records]
    tail = [{"kind": "sweep", "task": t, "model": m, "path": f"results/eval/{t}/sweeps/{m}.tsv"}
            for t, m in sweep_tables(cfg)]
    for task, model in interpret_pairs(cfg):
        prefix = f"results/interpret/{task}/{model}"
        tail.append({"kind": "attributions", "task": task, "model": model, "path": f"{prefix}/attributions.npz"})
        tail.append({"kind": "motifs", "task": task, "model": model, "path": f"{prefix}/motifs.tsv"})
        if tasks.get(cfg["tasks"][task]["type"]).site_centred:
            tail += [{"kind": kind, "task": task, "model": model, "path": f"{prefix}/positional.{ext}"}
                     for kind, ext in (("positional_elements", "tsv"), ("positional_profile", "npz"))]
        tail += [{"kind": "modisco", "task": task, "model": model, "output": o, "path": f"{prefix}/modisco.{o}.h5"}
                 for o in interpret_outputs(cfg, task)]
        if cfg["interpret"]["ism"]["windows"]:
            tail.append({"kind": "ism", "task": task, "model": model, "path": f"{prefix}/ism.npz"})
        if cfg["interpret"]["ism"]["regions"]:
            tail.append({"kind": "ism_regions", "task": task, "model": model, "path": f"{prefix}/ism_regions.npz"})
    for job in variant_jobs(cfg):
        prefix = f"results/variants/{job['task']}/{job['model']}/{job['vcf']}"
        tail += [{"kind": kind, "task": job["task"], "model": job["model"], "vcf": job["vcf"], "path": prefix + ext}
                 for kind, ext in (("variants", ".tsv"), ("variants_summary", ".json"), ("variants_top", ".top.npz"))]
    interpreted = set(interpret_pairs(cfg))
    for task, run in track_runs(cfg):
        tail.append({"kind": "prediction_tracks", "task": task, "model": run,
                     "path": f"results/tracks/{task}/{run}/predictions.json"})
        if (task, run) in interpreted:
            tail += [{"kind": "attribution_track", "task": task, "model": run, "output": o,
                      "path": f"results/tracks/{task}/{run}/attribution.{o}.bw"} for o in interpret_outputs(cfg, task)]
    records += [{**r, "task_type": cfg["tasks"][r["task"]]["type"]} for r in tail]
    return records + _unit_records(cfg)


def _unit_records(cfg: dict) -> list[dict]:
    """Tables across a cross-validated task's folds, and pretrained-against-scratch tables (`dnalm.crossfold`)."""
    records = []
    for unit, members in comparison_units(cfg).items():
        task_type = cfg["tasks"][members[0]]["type"]
        if not task_runs(cfg, members[0]):
            continue
        if unit not in cfg["tasks"]:
            records.append({"kind": "cross_fold", "task": unit, "task_type": task_type,
                            "path": f"results/eval/{unit}/cross_fold.tsv"})
        if pretraining_pairs(cfg, members[0]):
            records.append({"kind": "pretraining", "task": unit, "task_type": task_type,
                            "path": f"results/eval/{unit}/pretraining.tsv"})
    return records


def _input_records(cfg: dict) -> list[dict]:
    records = []
    for species, spec in cfg["species"].items():
        names = ["genome", *(["annotation"] if spec["annotation"] is not None else [])]
        records += [{"kind": "input", "species": species, "input": n, "path": f"resources/{species}/{n}.json"}
                    for n in names]
        records += [{"kind": "input", "species": species, "input": "track", "track": t,
                     "path": f"resources/{species}/tracks/{t}.json"} for t in spec["tracks"]]
        records += [{"kind": "input", "species": species, "input": "variants", "vcf": v,
                     "path": f"resources/{species}/variants/{v}.json"} for v in spec["variants"]]
    return records


def _qc_records(cfg: dict) -> list[dict]:
    if not cfg["species"]:
        return []
    records = [{"kind": "qc_genome", "species": s, "path": f"results/qc/{s}.json"} for s in cfg["species"]]
    return records + [{"kind": f"qc_{t}", "path": f"results/qc/{t}.tsv"}
                      for t in ("summary", "thresholds", "mash_distances")]


def _model_records(cfg: dict, task: str) -> list[dict]:
    runs = [r["run"] for r in task_runs(cfg, task)]
    if not runs:
        return []
    records = [{"kind": "comparison", "path": f"results/eval/{task}/comparison.tsv"}]
    kinds = [("model_info", "models/{t}/{m}/model.json"), ("history", "models/{t}/{m}/history.tsv"),
             ("counterfactual", "eval/{t}/{m}/counterfactual.tsv")]
    if cfg["tasks"][task]["type"] == "classification":
        return records + _class_records(cfg, task, kinds)
    for kind, where in [*kinds, ("prediction", "eval/{t}/{m}/predictions.h5")]:
        records += [{"kind": kind, "model": m, "path": "results/" + where.format(t=task, m=m)} for m in runs]
    if cfg["tasks"][task]["type"] == "seqerror":  # its section's per-run metrics (mean ± CI over seeds)
        records += [{"kind": "seqerror_metrics", "model": r["run"], "point": r["point"],
                     "path": f"results/eval/{task}/{r['run']}/metrics.json"} for r in task_runs(cfg, task)]
    return records


def _class_records(cfg: dict, task: str, kinds: list[tuple[str, str]]) -> list[dict]:
    """A classification task's run records (metrics, per-example predictions, projections; `point`: the run's
    model) and its test sets' comparison tables."""
    kinds = [*kinds, ("class_metrics", "eval/{t}/{m}/metrics.json"),
             ("class_predictions", "eval/{t}/{m}/predictions.tsv"), ("class_projection", "eval/{t}/{m}/projection.tsv")]
    records = [{"kind": kind, "model": r["run"], "point": r["point"],
                "path": "results/" + where.format(t=task, m=r["run"])}
               for kind, where in kinds for r in task_runs(cfg, task)]
    return records + [{"kind": "test_set_comparison", "test_set": name,
                       "path": f"results/eval/{task}/test_sets/{name}/comparison.tsv"}
                      for name in cfg["tasks"][task].get("test_sets") or {}]


def final_outputs(cfg: dict) -> list[str]:
    """What a finished run holds besides the report's inputs: the QC gate's list, every fine-tuned LM's Hugging Face
    export, every task's per-run table and the conservation bigWigs."""
    qc = ["results/qc/pretrain_genomes.txt"] if cfg["species"] else []
    exports = [f"results/models/{t}/{r['run']}/hf" for t in cfg["tasks"] for r in task_runs(cfg, t)
               if run_spec(cfg, r["run"])["arch"] in ("lm", "enbed")]
    runs = [f"results/eval/{t}/runs.tsv" for t in cfg["tasks"] if task_runs(cfg, t)]
    tracks = [f"results/conservation/{lm}/{species}.bw" for lm, species in conservation_jobs(cfg)]
    return [*qc, *exports, *runs, *tracks]
