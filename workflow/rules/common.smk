import copy
import itertools
import os
import re
from pathlib import Path

from snakemake.utils import validate


def validate_config(cfg):
    """Validate the config; list every problem as `dotted.key: message`, then fill in the schema's defaults."""
    import jsonschema
    import yaml

    schema_path = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    errors = jsonschema.Draft202012Validator(schema).iter_errors(cfg)
    lines = sorted(
        f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
        for e in errors
    )
    if lines:
        raise ValueError(
            f"the config does not match {schema_path} (keys are documented there and in the README):\n"
            + "\n".join(lines)
        )
    validate(cfg, schema="../schemas/config.schema.yaml", set_default=True)


validate_config(config)

REPO = str(Path(workflow.basedir).parent)
SPLITS = ["train", "val", "test"]


wildcard_constraints:
    species=r"[A-Za-z][A-Za-z0-9_]*",
    task=r"[A-Za-z][A-Za-z0-9_]*",
    model=r"[A-Za-z][A-Za-z0-9_]*(~[A-Za-z0-9_.+-]+)*",
    track=r"[A-Za-z][A-Za-z0-9_]*",
    lm=r"[A-Za-z][A-Za-z0-9_]*",
    split="train|val|test",


def check_config(cfg):
    """Cross-checks the schema cannot express; each error names the key."""
    references = [s for s, spec in cfg["species"].items() if spec["reference"]]
    if len(references) > 1:
        raise ValueError(
            f"species {references} are all marked reference: true; mark one"
        )
    for task, spec in cfg["tasks"].items():
        if spec["species"] not in cfg["species"]:
            raise ValueError(
                f"tasks.{task}.species: {spec['species']!r} is not under species (known: {sorted(cfg['species'])})"
            )
        tracks = cfg["species"][spec["species"]]["tracks"]
        for target in spec["targets"]:
            for key in ("plus", "minus", "track"):
                if key in target and target[key] not in tracks:
                    raise ValueError(
                        f"tasks.{task}.targets ({target['name']}).{key}: track {target[key]!r} is not under "
                        f"species.{spec['species']}.tracks (known: {sorted(tracks)})"
                    )
        if spec["type"] == "tracks":
            check_tracks_task(task, spec, cfg)
        else:
            get_site_target(task, cfg)
    for model, spec in cfg["models"].items():
        for task in spec["tasks"]:
            if task not in cfg["tasks"]:
                raise ValueError(
                    f"models.{model}.tasks: {task!r} is not under tasks (known: {sorted(cfg['tasks'])})"
                )
        for task in get_model_tasks(model, cfg):
            flank = cfg["tasks"][task]["window"]["flank"]
            if spec["train"]["jitter"] > flank:
                raise ValueError(
                    f"models.{model}.train.jitter ({spec['train']['jitter']}) exceeds tasks.{task}.window.flank ({flank})"
                )


def check_tracks_task(task, spec, cfg):
    """Tracks-task cross-checks: window length and flank are whole bins, and only BPNet models train on it."""
    size = spec["bins"]["size"]
    for key in ("length", "flank"):
        if spec["window"][key] % size:
            raise ValueError(
                f"tasks.{task}.window.{key} ({spec['window'][key]}) must be a multiple of tasks.{task}.bins.size ({size})"
            )
    for model, mspec in cfg["models"].items():
        if task in get_model_tasks(model, cfg) and mspec["arch"] != "bpnet":
            raise ValueError(
                f"models.{model}.tasks: tracks task {task!r} supports arch bpnet only (models.{model}.arch is "
                f"{mspec['arch']}); set models.{model}.tasks to its other tasks"
            )


def get_task_type(wildcards):
    return config["tasks"][wildcards.task]["type"]


def get_candidate_windows(wildcards):
    """Input of assign_splits: tiled windows (tracks tasks) or site-centred windows (profile tasks)."""
    name = "tiles" if get_task_type(wildcards) == "tracks" else "candidates"
    return f"results/windows/{wildcards.task}/{name}.tsv"


def get_tile_params(wildcards):
    """Params of tile_windows: the split's chromosomes (None: the whole genome) and the window keys."""
    spec = config["tasks"][wildcards.task]
    chroms = spec["split"]["chromosomes"]
    names = None
    if chroms["train"] is not None:
        names = list(dict.fromkeys(chroms["train"] + chroms["val"] + chroms["test"]))
    window = spec["window"]
    return {
        "species": spec["species"],
        "chromosomes": names,
        "length": window["length"],
        "stride": window["stride"],
        "flank": window["flank"],
        "max_n_fraction": window["max_n_fraction"],
        "gap_length": window["gap_length"],
    }


def get_bins_params(wildcards):
    """build_window_store's bins: the task's bins block for tracks tasks, None for profile tasks."""
    spec = config["tasks"][wildcards.task]
    return dict(spec["bins"]) if spec["type"] == "tracks" else None


def get_site_target(task, cfg=config):
    """The stranded target whose signal gives the task's sites."""
    spec = cfg["tasks"][task]
    stranded = [t for t in spec["targets"] if "plus" in t]
    name = spec["sites"]["target"]
    chosen = [t for t in stranded if t["name"] == name] if name else stranded[:1]
    if not chosen:
        raise ValueError(
            f"tasks.{task}.sites.target: no stranded target named {name!r} (stranded targets: {[t['name'] for t in stranded]})"
        )
    return chosen[0]


def get_model_tasks(model, cfg=config):
    """Tasks a model trains on: its `tasks`, or every task."""
    return cfg["models"][model]["tasks"] or list(cfg["tasks"])


def grow_on_retry(first):
    """Resource callable: `first` (MB of memory, or minutes) on a job's first attempt, doubled on every retry.

    A job that Slurm killed for running out of memory or time is resubmitted (`--retries`) with twice as much.
    """

    def resource(wildcards, attempt):
        return first * 2 ** (attempt - 1)

    return resource


def get_source(kind):
    """Params function: the configured source (url or path) of a genome, annotation or track."""

    def source(wildcards):
        spec = config["species"][wildcards.species]
        entry = spec["tracks"][wildcards.track] if kind == "track" else spec[kind]
        if entry is None:
            raise ValueError(f"species.{wildcards.species}.{kind} is not configured")
        return entry.get("url") or entry.get("path")

    return source


def get_md5(kind):
    """Params function: the configured md5 of a genome, annotation or track (or None)."""

    def md5(wildcards):
        spec = config["species"][wildcards.species]
        entry = spec["tracks"][wildcards.track] if kind == "track" else spec[kind]
        return entry["md5"]

    return md5


def get_aliases(wildcards):
    return config["species"][wildcards.species]["chrom_aliases"]


def get_task_species(wildcards):
    return config["tasks"][wildcards.task]["species"]


def get_genome(wildcards):
    species = get_task_species(wildcards)
    return {
        "fasta": f"resources/{species}/genome.fa",
        "fai": f"resources/{species}/genome.fa.fai",
    }


def get_genome_fai(wildcards):
    return get_genome(wildcards)["fai"]


def get_site_tracks(wildcards):
    species = get_task_species(wildcards)
    target = get_site_target(wildcards.task)
    return {
        "plus": f"resources/{species}/tracks/{target['plus']}.bw",
        "minus": f"resources/{species}/tracks/{target['minus']}.bw",
    }


def get_task_tracks(wildcards):
    """All bigWigs of a task's targets, keyed by track name."""
    species = get_task_species(wildcards)
    names = []
    for target in config["tasks"][wildcards.task]["targets"]:
        names += [target[k] for k in ("plus", "minus", "track") if k in target]
    return {
        name: f"resources/{species}/tracks/{name}.bw" for name in dict.fromkeys(names)
    }


def get_task_track_files(wildcards):
    return list(get_task_tracks(wildcards).values())


def get_targets(wildcards):
    return config["tasks"][wildcards.task]["targets"]


def get_flank(wildcards):
    return config["tasks"][wildcards.task]["window"]["flank"]


def get_site_threshold(wildcards):
    return config["tasks"][wildcards.task]["site_threshold"]


def get_window_params(wildcards):
    spec = config["tasks"][wildcards.task]
    return {
        "species": spec["species"],
        "min_reads": spec["sites"]["min_reads"],
        "length": spec["window"]["length"],
        "max_offset": spec["window"]["max_offset"],
        "flank": spec["window"]["flank"],
        "seed": spec["seed"],
    }


def get_split_params(wildcards):
    spec = config["tasks"][wildcards.task]
    if "folds" in spec["split"]:
        holdout = {"folds": spec["split"]["folds"]}
    else:
        holdout = dict(spec["split"]["chromosomes"])
    return {
        **holdout,
        "max_windows": spec["max_windows"],
        "seed": spec["seed"],
    }


def get_model_params(wildcards):
    """Params of train_model: architecture, its config block, training config and seed."""
    spec = get_run_spec(wildcards.model)
    if spec["arch"] == "lm":
        model_params = get_lm_params(wildcards.model, wildcards.task)
    else:
        model_params = spec[spec["arch"]]
    return {
        "arch": spec["arch"],
        "model_params": model_params,
        "train_params": spec["train"],
        "seed": spec["seed"],
    }


def get_species_tokens(wildcards=None):
    """Every configured species token, once each, in config order: the vocabulary of pretrained LMs."""
    tokens = [spec["token"] or species for species, spec in config["species"].items()]
    return list(dict.fromkeys(tokens))


def get_backbone(model):
    """Backbone directory of an LM model: results/pretrain/<name> for a pretrain name, else the configured path."""
    backbone = get_run_spec(model)["lm"]["backbone"]
    if backbone in config["pretrain"]:
        return f"results/pretrain/{backbone}"
    if backbone is None or os.path.isabs(backbone) or os.path.exists(backbone):
        return backbone
    return str(Path(REPO) / backbone)


def get_lm_params(model, task):
    """The `lm` config block of a model as dnalm.models.lm.build_lm takes it, for one task."""
    lm = get_run_spec(model)["lm"]
    species = config["tasks"][task]["species"]
    head = lm["head"]
    return {
        "backbone": get_backbone(model),
        "tokenizer": lm["tokenizer"],
        "finetune": lm["finetune"],
        "lora": lm["lora"],
        "head": head,
        "head_params": lm[f"{head}_head"],
        "architecture": lm["architecture"] if lm["backbone"] is None else None,
        "species": config["species"][species]["token"] or species,
        "species_list": get_species_tokens(),
    }


def get_backbone_files(wildcards):
    """train_model's extra input: the weights of a backbone pretrained by this workflow (nothing otherwise)."""
    spec = get_run_spec(wildcards.model)
    if spec["arch"] != "lm" or spec["lm"]["backbone"] not in config["pretrain"]:
        return []
    return [f"results/pretrain/{spec['lm']['backbone']}/model.safetensors"]


def get_pretrain_params(wildcards):
    """Hyperparameters of pretrain_lm (everything in pretrain.<lm> but the corpus and its homology filter)."""
    return {
        k: v
        for k, v in config["pretrain"][wildcards.lm].items()
        if k not in ("corpus", "homology")
    }


def get_pretrain_candidates(lm):
    """Species ids that may enter the corpus: the configured corpus, or every species (the QC gate chooses)."""
    return config["pretrain"][lm]["corpus"] or list(config["species"])


def get_pretrain_genomes(wildcards):
    """Per candidate genome: species token, FASTA, index, chromosomes never trained on, validation chromosomes."""
    genomes = []
    for species in get_pretrain_candidates(wildcards.lm):
        held_out, val = [], []
        for task in config["tasks"].values():
            # fold tasks: their val/test folds are excluded by rule pretrain_homology instead
            if task["species"] == species and "chromosomes" in task["split"]:
                chroms = task["split"]["chromosomes"]
                held_out += chroms["val"] + chroms["test"]
                val += chroms["val"]
        genomes.append(
            {
                "id": species,
                "species": config["species"][species]["token"] or species,
                "fasta": f"resources/{species}/genome.fa",
                "fai": f"resources/{species}/genome.fa.fai",
                "exclude": sorted(set(held_out)),
                "val": sorted(set(val)),
            }
        )
    return genomes


def get_pretrain_inputs(wildcards):
    """Genomes of the candidate corpus, and the QC gate's list when the corpus is left to the gate."""
    genomes = get_pretrain_genomes(wildcards)
    inputs = {
        "fastas": [g["fasta"] for g in genomes],
        "fais": [g["fai"] for g in genomes],
    }
    if config["pretrain"][wildcards.lm]["corpus"] is None:
        inputs["gate"] = "results/qc/pretrain_genomes.txt"
    return inputs


def get_pretrain_lm_inputs(wildcards):
    """pretrain_lm's inputs: the corpus genomes and the windows the homology filter excludes."""
    return {
        **get_pretrain_inputs(wildcards),
        "excluded": f"results/pretrain/{wildcards.lm}/homology_excluded.tsv",
    }


def get_store(split):
    """Input function: the window store files of one split of the task."""

    def store(wildcards):
        prefix = f"results/windows/{wildcards.task}/{split}"
        return {
            "seq": f"{prefix}.seq.npy",
            "targets": f"{prefix}.targets.npy",
            "meta": f"{prefix}.json",
        }

    return store


def get_task_models(task):
    """Training runs of a task: every run (sweep point × seed) of every model trained on it."""
    return [r["run"] for r in get_task_runs(task)]


def get_task_metrics(wildcards):
    return [
        f"results/eval/{wildcards.task}/{m}/metrics.json"
        for m in get_task_models(wildcards.task)
    ]


def get_qc_reference(species, cfg=config):
    """Species whose genome `species` is Mash-compared to: its qc_reference, else the reference species, else None."""
    spec = cfg["species"][species]
    if spec["qc_reference"] is not None:
        return spec["qc_reference"]
    references = [s for s, v in cfg["species"].items() if v["reference"]]
    return references[0] if references else None


def get_busco_lineage(cfg=config):
    """Absolute path of qc.busco.lineage (the working directory first, then the repository), or None."""
    lineage = cfg["qc"]["busco"]["lineage"]
    if lineage is None:
        return None
    candidates = (
        [lineage]
        if os.path.isabs(lineage)
        else [os.path.join(os.getcwd(), lineage), os.path.join(REPO, lineage)]
    )
    for candidate in candidates:
        if os.path.isdir(candidate):
            return os.path.abspath(candidate)
    raise ValueError(
        f"qc.busco.lineage: directory {lineage!r} not found (tried {', '.join(candidates)}); "
        "set it to a local *_odb10 lineage directory, or null to skip BUSCO"
    )


def get_busco_mode(species, cfg=config):
    """BUSCO mode of a species: qc.busco.mode, with auto = proteins when the species has a proteins FASTA."""
    mode = cfg["qc"]["busco"]["mode"]
    if mode == "auto":
        return "genome" if cfg["species"][species]["proteins"] is None else "proteins"
    return mode


def check_qc_config(cfg):
    """QC cross-checks: Mash references exist, proteins mode has proteins, the BUSCO lineage directory exists."""
    for species, spec in cfg["species"].items():
        reference = spec["qc_reference"]
        if reference is not None and reference not in cfg["species"]:
            raise ValueError(
                f"species.{species}.qc_reference: {reference!r} is not under species (known: {sorted(cfg['species'])})"
            )
        if (
            cfg["qc"]["busco"]["lineage"] is not None
            and get_busco_mode(species, cfg) == "proteins"
            and spec["proteins"] is None
        ):
            raise ValueError(
                f"species.{species}.proteins: qc.busco.mode is proteins, but species {species} has no proteins FASTA"
            )
    get_busco_lineage(cfg)


def get_qc_species(wildcards=None):
    """Every configured species, in config order: each gets a QC row."""
    return list(config["species"])


def get_mash_params(wildcards):
    return dict(config["qc"]["mash"])


def get_busco_sequences(wildcards):
    """Input of run_busco: the proteins FASTA in proteins mode, else the genome."""
    kind = "proteins" if get_busco_mode(wildcards.species) == "proteins" else "genome"
    return f"resources/{wildcards.species}/{kind}.fa"


def get_busco_params(wildcards):
    return {
        "lineage": get_busco_lineage(),
        "mode": get_busco_mode(wildcards.species),
        "augustus_species": config["qc"]["busco"]["augustus_species"],
    }


def get_qc_inputs(wildcards):
    """Inputs of assess_genome: genome, sketches (own and reference), annotation and BUSCO scores when configured."""
    species = wildcards.species
    inputs = {
        "fasta": f"resources/{species}/genome.fa",
        "sketch": f"results/qc/mash/{species}.msh",
    }
    reference = get_qc_reference(species)
    if reference is not None:
        inputs["reference_sketch"] = f"results/qc/mash/{reference}.msh"
    if config["species"][species]["annotation"] is not None:
        inputs["annotation"] = f"resources/{species}/annotation.gff3"
    if config["qc"]["busco"]["lineage"] is not None:
        inputs["busco"] = f"results/qc/busco/{species}.json"
    return inputs


def get_qc_params(wildcards):
    """Params of assess_genome."""
    qc = config["qc"]
    return {
        "species": wildcards.species,
        "reference": get_qc_reference(wildcards.species),
        "mash": dict(qc["mash"]),
        "repeat_method": qc["repeats"]["method"],
        "window": qc["gene_window"],
    }


def get_qc_sketches(wildcards):
    return [f"results/qc/mash/{s}.msh" for s in get_qc_species()]


def get_qc_genomes(wildcards):
    return [f"results/qc/{s}.json" for s in get_qc_species()]


def get_qc_outputs():
    """Every QC output the report reads (none without species)."""
    if not config["species"]:
        return []
    tables = ["summary.tsv", "thresholds.tsv", "mash_distances.tsv"]
    return get_qc_genomes(None) + [f"results/qc/{t}" for t in tables]


def get_report_inputs(wildcards):
    """Every file the report reads."""
    inputs = []
    for species, spec in config["species"].items():
        inputs.append(f"resources/{species}/genome.json")
        if spec["annotation"] is not None:
            inputs.append(f"resources/{species}/annotation.json")
        inputs += [f"resources/{species}/tracks/{t}.json" for t in spec["tracks"]]
    pairs = [(t, m) for t in config["tasks"] for m in get_task_models(t)]
    return {
        "inputs": inputs,
        "splits": [f"results/splits/{t}/counts.tsv" for t in config["tasks"]],
        "histories": [f"results/models/{t}/{m}/history.tsv" for t, m in pairs],
        "model_infos": [f"results/models/{t}/{m}/model.json" for t, m in pairs],
        "comparisons": [
            f"results/eval/{t}/comparison.tsv"
            for t in config["tasks"]
            if get_task_models(t)
        ],
        "predictions": [f"results/eval/{t}/{m}/predictions.h5" for t, m in pairs],
        "qc": get_qc_outputs(),
        # not read by the report: the Hugging Face exports of the fine-tuned LMs are part of a finished run
        "exports": get_lm_exports(),
        "pretrain_histories": [
            f"results/pretrain/{lm}/history.tsv" for lm in config["pretrain"]
        ],
        "pretrain_summaries": [
            f"results/pretrain/{lm}/pretrain.json" for lm in config["pretrain"]
        ],
        "counterfactuals": [
            f"results/eval/{t}/{m}/counterfactual.tsv" for t, m in pairs
        ],
        "homology": [f"results/splits/{t}/summary.tsv" for t in config["tasks"]],
        "pretrain_homology": [
            f"results/pretrain/{lm}/homology_excluded.tsv" for lm in config["pretrain"]
        ],
        "sweeps": get_sweep_tables(),
        # not read by the report: the per-run tables next to the comparisons
        "run_tables": [
            f"results/eval/{t}/runs.tsv" for t in config["tasks"] if get_task_models(t)
        ],
        "interpretations": get_interpret_results(),
    }


def get_lm_exports():
    """Hugging Face exports of every fine-tuned language model."""
    return [
        f"results/models/{t}/{m}/hf"
        for t in config["tasks"]
        for m in get_task_models(t)
        if get_run_spec(m)["arch"] == "lm"
    ]


def get_final_output():
    qc = ["results/qc/pretrain_genomes.txt"] if config["species"] else []
    return ["results/report.html", *qc, *get_lm_exports()]


# ------------------------------------------------------------------ splits: folds, extra species, homology filter


def check_split_config(cfg):
    """Fold choices and extra train species; each error names the key."""
    for task, spec in cfg["tasks"].items():
        folds = spec["split"].get("folds")
        if folds is not None:
            for key in ("val", "test"):
                if folds[key] >= folds["k"]:
                    raise ValueError(
                        f"tasks.{task}.split.folds.{key}: fold {folds[key]} does not exist with k = {folds['k']} "
                        f"(folds are numbered 0 to {folds['k'] - 1})"
                    )
            if folds["val"] == folds["test"]:
                raise ValueError(
                    f"tasks.{task}.split.folds: val and test are both fold {folds['val']}; choose two different folds"
                )
        tracks = get_task_track_names(task, cfg)
        if spec["extra_train_species"] and spec["type"] == "tracks":
            raise ValueError(
                f"tasks.{task}.extra_train_species: not available for tracks tasks yet (extra species' windows are "
                "made around sites, as for profile tasks); remove the key or use a profile task"
            )
        for species in spec["extra_train_species"]:
            if species not in cfg["species"]:
                raise ValueError(
                    f"tasks.{task}.extra_train_species: {species!r} is not under species (known: {sorted(cfg['species'])})"
                )
            if species == spec["species"]:
                raise ValueError(
                    f"tasks.{task}.extra_train_species: {species!r} is the task's own species"
                )
            missing = sorted(set(tracks) - set(cfg["species"][species]["tracks"]))
            if missing:
                raise ValueError(
                    f"tasks.{task}.extra_train_species: species {species!r} lacks the task's tracks {missing} "
                    f"(add them under species.{species}.tracks with the same names)"
                )


def get_task_track_names(task, cfg=config):
    """Track names of a task's targets, once each."""
    names = []
    for target in cfg["tasks"][task]["targets"]:
        names += [target[k] for k in ("plus", "minus", "track") if k in target]
    return list(dict.fromkeys(names))


def get_task_genomes(task):
    """Species id → genome FASTA of every genome feeding a task: its species, then its extra train species."""
    spec = config["tasks"][task]
    return {
        s: f"resources/{s}/genome.fa"
        for s in [spec["species"], *spec["extra_train_species"]]
    }


def get_task_fastas(wildcards):
    """FASTAs and indexes of every genome feeding the task."""
    fastas = list(get_task_genomes(wildcards.task).values())
    return fastas + [f"{f}.fai" for f in fastas]


def get_task_genome_map(wildcards):
    return get_task_genomes(wildcards.task)


def get_species_track_map(wildcards):
    """Species → {track name: bigWig} of every genome feeding the task."""
    names = get_task_track_names(wildcards.task)
    return {
        s: {n: f"resources/{s}/tracks/{n}.bw" for n in names}
        for s in get_task_genomes(wildcards.task)
    }


def get_store_track_files(wildcards):
    """bigWigs of every genome feeding the task."""
    return [
        p
        for tracks in get_species_track_map(wildcards).values()
        for p in tracks.values()
    ]


def get_split_inputs(wildcards):
    """assign_splits' inputs: candidates, the genome index, the fold layout (fold tasks), extra species' windows."""
    spec = config["tasks"][wildcards.task]
    inputs = {
        "windows": get_candidate_windows(wildcards),
        "fai": get_genome_fai(wildcards),
        "extra": [
            f"results/windows/{wildcards.task}/extra/{s}.tsv"
            for s in spec["extra_train_species"]
        ],
    }
    if "folds" in spec["split"]:
        inputs["folds"] = f"results/splits/{wildcards.task}/folds.tsv"
    return inputs


def get_fold_params(wildcards):
    """make_folds' params: k, min_gap, and the step of cuts inside a chromosome (window stride or length)."""
    spec = config["tasks"][wildcards.task]
    folds = spec["split"]["folds"]
    window = spec["window"]
    return {
        "k": folds["k"],
        "min_gap": folds["min_gap"],
        "step": window.get("stride") or window["length"],
    }


def get_extra_genome(wildcards):
    return {
        "fasta": f"resources/{wildcards.species}/genome.fa",
        "fai": f"resources/{wildcards.species}/genome.fa.fai",
    }


def get_extra_site_tracks(wildcards):
    target = get_site_target(wildcards.task)
    return {
        "plus": f"resources/{wildcards.species}/tracks/{target['plus']}.bw",
        "minus": f"resources/{wildcards.species}/tracks/{target['minus']}.bw",
    }


def get_extra_window_params(wildcards):
    return {**get_window_params(wildcards), "species": wildcards.species}


def get_homology_params(wildcards):
    """filter_homology's params: target species, genomes and the split.homology settings."""
    spec = config["tasks"][wildcards.task]
    return {
        "species": spec["species"],
        "fastas": get_task_genomes(wildcards.task),
        **spec["split"]["homology"],
    }


def get_pretrain_homology_inputs(wildcards):
    """Corpus genomes (and the QC gate), and every task's filtered windows, genomes and fold layout."""
    inputs = get_pretrain_inputs(wildcards)
    inputs["windows"] = [f"results/windows/{t}/windows.tsv" for t in config["tasks"]]
    inputs["task_fastas"] = sorted(
        {f"resources/{spec['species']}/genome.fa" for spec in config["tasks"].values()}
    )
    inputs["folds"] = [
        f"results/splits/{t}/folds.tsv"
        for t, spec in config["tasks"].items()
        if "folds" in spec["split"]
    ]
    return inputs


def get_pretrain_homology_params(wildcards):
    """The corpus tiling, the homology settings, and per task its species and (fold tasks) val/test folds."""
    spec = config["pretrain"][wildcards.lm]
    tasks = {}
    for task, tspec in config["tasks"].items():
        folds = tspec["split"].get("folds")
        tasks[task] = {
            "species": tspec["species"],
            "fasta": f"resources/{tspec['species']}/genome.fa",
            "windows": f"results/windows/{task}/windows.tsv",
            "folds": f"results/splits/{task}/folds.tsv" if folds else None,
            "held_out_folds": [folds["val"], folds["test"]] if folds else [],
        }
    return {
        "window": spec["window"],
        "stride": spec["stride"],
        "homology": spec["homology"],
        "tasks": tasks,
    }


def check_lm_config(cfg):
    """LM cross-checks: backbones, corpus species, scratch without a backbone; each error names the key."""
    for name, spec in cfg["pretrain"].items():
        for species in spec["corpus"] or []:
            if species not in cfg["species"]:
                raise ValueError(
                    f"pretrain.{name}.corpus: {species!r} is not under species (known: {sorted(cfg['species'])})"
                )
    for model, spec in cfg["models"].items():
        if spec["arch"] != "lm":
            continue
        backbone = spec["lm"]["backbone"]
        if backbone is None and spec["lm"]["finetune"] != "scratch":
            raise ValueError(
                f"models.{model}.lm.backbone is null: give a pretrain name ({sorted(cfg['pretrain'])}) or a local "
                "Hugging Face directory, or use finetune: scratch"
            )
        if backbone is not None and backbone not in cfg["pretrain"]:
            path = get_backbone(model)
            if not os.path.isdir(path):
                raise ValueError(
                    f"models.{model}.lm.backbone: {backbone!r} is neither a pretrain name "
                    f"({sorted(cfg['pretrain'])}) nor a directory"
                )


# ---------------------------------------------------------------------------------------- sweeps and repeated seeds

RUN_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*(~[A-Za-z0-9_.+-]+)*")


def format_sweep_value(value):
    """A swept value as it appears in run ids: numbers as written, lists joined with '-', booleans lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "-".join(format_sweep_value(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def get_sweep_labels(keys):
    """Short names of swept keys in run ids: the last part of the dotted key, or all of it ('.' → '_') when two
    swept keys share their last part."""
    last = [key.split(".")[-1] for key in keys]
    return {
        key: name if last.count(name) == 1 else key.replace(".", "_")
        for key, name in zip(keys, last)
    }


def get_sweep_points(model, cfg=config):
    """(point id, {dotted key: value}) for every point of a model's sweep grid; the model id alone without a sweep.

    A point id is the model id followed by `~<label><value>` per swept key, with a `_` between label and value
    when the value is not a number: lm_lora_conv~dropout0.3~lr0.001, lm~head_bpnet.
    """
    sweep = cfg["models"][model]["sweep"]
    labels = get_sweep_labels(list(sweep))
    points = []
    for values in itertools.product(*sweep.values()):
        name = model
        for key, value in zip(sweep, values):
            text = format_sweep_value(value)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            name += f"~{labels[key]}{'' if numeric else '_'}{text}"
        points.append((name, dict(zip(sweep, values))))
    return points


def get_model_runs(model, cfg=config):
    """Training runs of a configured model: one per sweep point and seed of `seeds` (id suffix `~seed<N>`), or one
    per point with the model's `seed` when `seeds` is not set. Dicts: run, point, model, seed, overrides.
    """
    seeds = cfg["models"][model]["seeds"]
    runs = []
    for point, overrides in get_sweep_points(model, cfg):
        for seed in seeds if seeds is not None else [cfg["models"][model]["seed"]]:
            run = f"{point}~seed{seed}" if seeds is not None else point
            runs.append(
                {
                    "run": run,
                    "point": point,
                    "model": model,
                    "seed": seed,
                    "overrides": overrides,
                }
            )
    return runs


def get_run(run):
    """The run dict of a run id (see get_model_runs)."""
    model = run.split("~")[0]
    if model not in config["models"]:
        raise ValueError(f"{run!r} is not a run of a configured model")
    for candidate in get_model_runs(model):
        if candidate["run"] == run:
            return candidate
    raise ValueError(f"{run!r} is not a run of models.{model} (its sweep and seeds)")


def set_dotted(spec, key, value):
    """Set `a.b.c` in nested dicts (every level but the last must exist)."""
    *parents, last = key.split(".")
    node = spec
    for part in parents:
        node = node[part]
    node[last] = copy.deepcopy(value)


def apply_overrides(spec, overrides, seed):
    """A model's config with swept values and the run's seed in place of its own."""
    out = copy.deepcopy(spec)
    for key, value in overrides.items():
        set_dotted(out, key, value)
    out["seed"] = seed
    return out


def get_run_spec(run):
    """The model config of a run id: its model's config with the sweep point's values and the run's seed (a
    configured model id gives its config as written)."""
    if run in config["models"]:
        return config["models"][run]
    info = get_run(run)
    return apply_overrides(
        config["models"][info["model"]], info["overrides"], info["seed"]
    )


def get_task_runs(task):
    """Run dicts of every model trained on a task, in config order."""
    return [
        r
        for m in config["models"]
        if task in get_model_tasks(m)
        for r in get_model_runs(m)
    ]


def get_compare_runs(wildcards):
    """Params of compare_models: run id → model (sweep point) and seed."""
    return [
        {"run": r["run"], "point": r["point"], "seed": r["seed"]}
        for r in get_task_runs(wildcards.task)
    ]


def get_sweep_runs(wildcards):
    """Params of summarize_sweep: the model's runs with their swept values."""
    return get_model_runs(wildcards.model)


def get_sweep_metrics(wildcards):
    return [
        f"results/eval/{wildcards.task}/{r['run']}/metrics.json"
        for r in get_model_runs(wildcards.model)
    ]


def get_sweep_histories(wildcards):
    return [
        f"results/models/{wildcards.task}/{r['run']}/history.tsv"
        for r in get_model_runs(wildcards.model)
    ]


def get_sweep_tables():
    """results/eval/<task>/sweeps/<model>.tsv of every model with a sweep, per task it trains on."""
    return [
        f"results/eval/{t}/sweeps/{m}.tsv"
        for m, spec in config["models"].items()
        if spec["sweep"]
        for t in get_model_tasks(m)
    ]


def check_sweep_config(cfg):
    """Sweep and seed cross-checks: swept keys exist and their values fit the schema; run ids are unique and
    filesystem-safe. Each error names the key."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(
        (Path(workflow.basedir) / "schemas" / "config.schema.yaml").read_text()
    )
    model_schema = schema["properties"]["models"]["additionalProperties"]
    for model, spec in cfg["models"].items():
        for key in spec["sweep"]:
            where = f"models.{model}.sweep.{key}"
            block = key.split(".")[0]
            if block not in ("train", spec["arch"]):
                raise ValueError(
                    f"{where}: model {model} is arch {spec['arch']}; sweep keys under {spec['arch']} or train"
                )
            node = spec
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise ValueError(
                        f"{where}: {part!r} is not a key of models.{model} (see the README key table)"
                    )
                node = node[part]
        seen = set()
        for run in get_model_runs(model, cfg):
            resolved = apply_overrides(spec, run["overrides"], run["seed"])
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator(model_schema).iter_errors(resolved)
            )
            if error is not None:
                path = ".".join(map(str, error.absolute_path))
                raise ValueError(
                    f"models.{model}.sweep: point {run['point']} sets {path} to an invalid value: {error.message}"
                )
            if not RUN_ID.fullmatch(run["run"]) or run["run"] in seen:
                raise ValueError(
                    f"models.{model}.sweep: run id {run['run']!r} is not unique or not filesystem-safe; use "
                    "values of letters, digits, '.', '+', '-' and '_'"
                )
            seen.add(run["run"])


def get_interpret_models(cfg=config):
    """Models to interpret: interpret.models, or every model when it is null."""
    models = cfg["interpret"]["models"]
    return list(cfg["models"]) if models is None else models


def get_interpret_pairs(cfg=config):
    """(task, model) pairs to interpret: each interpreted model on every task it trains on."""
    return [(t, m) for m in get_interpret_models(cfg) for t in get_model_tasks(m, cfg)]


def get_interpret_outputs_list(wildcards=None):
    return list(config["interpret"]["outputs"])


def get_motif_files(cfg=config):
    """Absolute paths of interpret.motifs (the working directory first, then the repository)."""
    paths = []
    for i, name in enumerate(cfg["interpret"]["motifs"]):
        candidates = [name] if os.path.isabs(name) else [name, os.path.join(REPO, name)]
        found = [c for c in candidates if os.path.isfile(c)]
        if not found:
            raise ValueError(
                f"interpret.motifs[{i}]: MEME file {name!r} not found (tried {', '.join(candidates)})"
            )
        paths.append(os.path.abspath(found[0]))
    return paths


def get_attribute_params(wildcards):
    spec = config["interpret"]
    return {
        "n_windows": spec["windows"],
        "outputs": list(spec["outputs"]),
        "n_shuffles": spec["n_shuffles"],
        "seed": spec["seed"],
        "ig_steps": spec["ig_steps"],
    }


def get_modisco_params(wildcards):
    return dict(config["interpret"]["modisco"])


def get_match_inputs(wildcards):
    """modisco results of every interpreted output, and the known-motif files."""
    prefix = f"results/interpret/{wildcards.task}/{wildcards.model}"
    return {
        "modisco": [f"{prefix}/modisco.{o}.h5" for o in get_interpret_outputs_list()],
        "motifs": get_motif_files(),
    }


def get_interpret_results(wildcards=None):
    """Every interpretation output the report reads."""
    files = []
    for task, model in get_interpret_pairs():
        prefix = f"results/interpret/{task}/{model}"
        files += [f"{prefix}/attributions.npz", f"{prefix}/motifs.tsv"]
        files += [f"{prefix}/modisco.{o}.h5" for o in get_interpret_outputs_list()]
    return files


def check_interpret_config(cfg):
    """Interpretation cross-checks: named models exist; motif files exist and parse (errors name file and line)."""
    import sys

    sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
    from dnalm.motifs import read_motif_files

    for model in cfg["interpret"]["models"] or []:
        if model not in cfg["models"]:
            raise ValueError(
                f"interpret.models: {model!r} is not under models (known: {sorted(cfg['models'])})"
            )
    if get_interpret_pairs(cfg):
        read_motif_files(get_motif_files(cfg))


# Cross-checks of the validated config, after every function they use is defined; each error names the key.
check_config(config)
check_qc_config(config)
check_lm_config(config)
check_split_config(config)
check_sweep_config(config)
check_interpret_config(config)
