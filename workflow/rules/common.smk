import os
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
    model=r"[A-Za-z][A-Za-z0-9_]*",
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
    return {
        **spec["split"]["chromosomes"],
        "max_windows": spec["max_windows"],
        "seed": spec["seed"],
    }


def get_model_params(wildcards):
    """Params of train_model: architecture, its config block, training config and seed."""
    spec = config["models"][wildcards.model]
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
    backbone = config["models"][model]["lm"]["backbone"]
    if backbone in config["pretrain"]:
        return f"results/pretrain/{backbone}"
    if backbone is None or os.path.isabs(backbone) or os.path.exists(backbone):
        return backbone
    return str(Path(REPO) / backbone)


def get_lm_params(model, task):
    """The `lm` config block of a model as dnalm.models.lm.build_lm takes it, for one task."""
    lm = config["models"][model]["lm"]
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
    spec = config["models"][wildcards.model]
    if spec["arch"] != "lm" or spec["lm"]["backbone"] not in config["pretrain"]:
        return []
    return [f"results/pretrain/{spec['lm']['backbone']}/model.safetensors"]


def get_pretrain_params(wildcards):
    """Hyperparameters of pretrain_lm (everything in pretrain.<lm> but the corpus)."""
    return {k: v for k, v in config["pretrain"][wildcards.lm].items() if k != "corpus"}


def get_pretrain_candidates(lm):
    """Species ids that may enter the corpus: the configured corpus, or every species (the QC gate chooses)."""
    return config["pretrain"][lm]["corpus"] or list(config["species"])


def get_pretrain_genomes(wildcards):
    """Per candidate genome: species token, FASTA, index, chromosomes never trained on, validation chromosomes."""
    genomes = []
    for species in get_pretrain_candidates(wildcards.lm):
        held_out, val = [], []
        for task in config["tasks"].values():
            if task["species"] == species:
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
    return [m for m in config["models"] if task in get_model_tasks(m)]


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
        "interpretations": get_interpret_results(),
    }


def get_lm_exports():
    """Hugging Face exports of every fine-tuned language model."""
    return [
        f"results/models/{t}/{m}/hf"
        for t in config["tasks"]
        for m in get_task_models(t)
        if config["models"][m]["arch"] == "lm"
    ]


def get_final_output():
    qc = ["results/qc/pretrain_genomes.txt"] if config["species"] else []
    return ["results/report.html", *qc, *get_lm_exports()]


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


check_config(config)
check_qc_config(config)
check_lm_config(config)


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


check_interpret_config(config)
