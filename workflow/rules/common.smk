import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

import dnalm.config
import dnalm.config_variants
import dnalm.crossfold
import dnalm.jobs
import dnalm.outputs
import dnalm.track_tables
from dnalm import tasks
from dnalm.tasks.profile import site_target

# The config: validated against workflow/schemas/config.schema.yaml (defaults filled in), then cross-checked
# against itself (dnalm/config.py); every error names the dotted key.
REPO = str(Path(workflow.basedir).parent)
SPLITS = list(dnalm.config.SPLITS)
dnalm.config.check_config_files(
    [*workflow.overwrite_configfiles, *workflow.configfiles]
)
dnalm.track_tables.expand_tables(
    config, REPO
)  # track_table / target_table rows join the config
dnalm.config.validate(config)
dnalm.config.check(config, REPO)
dnalm.crossfold.expand_folds(config)  # a cross-validated task -> one task per fold


wildcard_constraints:
    species=r"[A-Za-z][A-Za-z0-9_]*",
    task=r"[A-Za-z][A-Za-z0-9_]*",
    model=r"[A-Za-z][A-Za-z0-9_]*(~[A-Za-z0-9_.+-]+)*",
    track=r"[A-Za-z][A-Za-z0-9_]*",
    lm=r"[A-Za-z][A-Za-z0-9_]*",
    split="train|val|test",
    shard=r"\d+",


def grow_on_retry(first):
    """Resource callable: `first` (MB of memory, or minutes) on a job's first attempt, doubled on every retry.
    A job that Slurm killed for running out of memory or time is resubmitted (`--retries`) with twice as much.
    """

    def resource(wildcards, attempt):
        return first * 2 ** (attempt - 1)

    return resource


# ---------------------------------------------------------------------------------------------------- download
def _source_entry(kind, wildcards):
    """The species' config entry of an input: its genome, annotation, proteins, a track or a VCF."""
    spec = config["species"][wildcards.species]
    if kind in ("track", "variants"):
        name = wildcards.track if kind == "track" else wildcards.vcf
        return spec["tracks" if kind == "track" else "variants"][name]
    if spec[kind] is None:
        raise ValueError(f"species.{wildcards.species}.{kind} is not configured")
    return spec[kind]


def get_source(kind):
    """Params function: the configured source (url or path) of an input (`_source_entry`)."""
    return lambda wildcards: _source_entry(kind, wildcards).get("url") or _source_entry(
        kind, wildcards
    ).get("path")


def get_md5(kind):
    """Params function: the configured md5 of an input (or None)."""
    return lambda wildcards: _source_entry(kind, wildcards)["md5"]


def get_aliases(wildcards):
    return config["species"][wildcards.species]["chrom_aliases"]


def get_track_lengths(wildcards):
    """Params function: what a track chromosome whose length differs from the genome's is (error or clip)."""
    return config["species"][wildcards.species]["track_lengths"]


# ---------------------------------------------------------------------------------------------------- genome QC
def get_qc_species(wildcards=None):
    """Every configured species, in config order: each gets a QC row."""
    return list(config["species"])


def get_qc_sketches(wildcards):
    return [f"results/qc/mash/{s}.msh" for s in get_qc_species()]


def get_qc_genomes(wildcards):
    return [f"results/qc/{s}.json" for s in get_qc_species()]


def get_busco_sequences(wildcards):
    """Input of run_busco: the proteins FASTA in proteins mode, else the genome."""
    proteins = dnalm.config.busco_mode(config, wildcards.species) == "proteins"
    return f"resources/{wildcards.species}/{'proteins' if proteins else 'genome'}.fa"


def get_busco_params(wildcards):
    return dnalm.config.busco_params(config, wildcards.species, REPO)


def get_qc_inputs(wildcards):
    """Inputs of assess_genome: genome, sketches (own and reference), annotation and BUSCO scores when configured."""
    return dnalm.config.qc_inputs(config, wildcards.species)


def get_qc_params(wildcards):
    return dnalm.config.qc_params(config, wildcards.species)


# ------------------------------------------------------------------------------------------------------ windows
def get_task(wildcards):
    """The task's config block (a cross-validated task's group: its first fold task's)."""
    return dnalm.crossfold.task_spec(config, wildcards.task)


def get_genome(wildcards):
    """The task species' genome and index (or, with a species wildcard, that species')."""
    species = getattr(wildcards, "species", None) or get_task(wildcards)["species"]
    return {
        "fasta": f"resources/{species}/genome.fa",
        "fai": f"resources/{species}/genome.fa.fai",
    }


def get_example_genome(wildcards):
    """make_examples' input: the species' genome when the examples are intervals on it (nothing otherwise)."""
    intervals = (get_task(wildcards).get("examples") or {}).get("intervals")
    return get_genome(wildcards) if intervals else {}


def get_site_tracks(wildcards):
    """The stranded bigWigs that give a profile task's sites (of the task species, or of a species wildcard)."""
    species = getattr(wildcards, "species", None) or get_task(wildcards)["species"]
    target = site_target(wildcards.task, get_task(wildcards))
    return {s: f"resources/{species}/tracks/{target[s]}.bw" for s in ("plus", "minus")}


def get_window_params(wildcards):
    """Params of the task type's window rule (make_windows, make_extra_windows or tile_windows)."""
    spec = get_task(wildcards)
    species = getattr(wildcards, "species", None) or spec["species"]
    return tasks.get(spec["type"]).window_params(spec, species)


# ------------------------------------------------------------------------------------------ splits and homology
def get_split_inputs(wildcards):
    """assign_splits' inputs: the task type's candidate windows, the genome index, the fold layout (fold tasks) and
    the extra species' windows."""
    spec = get_task(wildcards)
    candidates = tasks.get(spec["type"]).windows
    layout = dnalm.crossfold.layout_task(config, wildcards.task)  # fold tasks share it
    inputs = {
        "windows": f"results/windows/{layout}/{candidates}.tsv",
        "fai": get_genome(wildcards)["fai"],
        "extra": [
            f"results/windows/{layout}/extra/{s}.tsv"
            for s in spec["extra_train_species"]
        ],
    }
    if "folds" in spec["split"]:
        inputs["folds"] = f"results/splits/{layout}/folds.tsv"
    return inputs


def get_split_params(wildcards):
    return dnalm.config.split_params(get_task(wildcards))


def get_fold_params(wildcards):
    """make_folds' params: k, min_gap, and the step of cuts inside a chromosome (window stride or length)."""
    spec = get_task(wildcards)
    window = spec["window"]
    return {
        "k": spec["split"]["folds"]["k"],
        "min_gap": spec["split"]["folds"]["min_gap"],
        "step": window.get("stride") or window["length"],
    }


def get_task_genomes(wildcards):
    """Species id → genome FASTA of every genome feeding the task (its species, then extra train species)."""
    return dnalm.config.task_genomes(config, wildcards.task)


def get_task_fastas(wildcards):
    """FASTAs and indexes of every genome feeding the task."""
    fastas = list(get_task_genomes(wildcards).values())
    return fastas + [f"{f}.fai" for f in fastas]


def get_homology_params(wildcards):
    """filter_homology's params: target species, genomes and the split.homology settings."""
    spec = get_task(wildcards)
    return {
        "species": spec["species"],
        "fastas": get_task_genomes(wildcards),
        **spec["split"]["homology"],
    }


# ---------------------------------------------------------------------------------------------- window stores
def get_species_tracks(wildcards):
    """Species → {track name: bigWig} of every genome feeding the task."""
    names = dnalm.config.task_track_names(get_task(wildcards))
    return {
        s: {n: f"resources/{s}/tracks/{n}.bw" for n in names}
        for s in get_task_genomes(wildcards)
    }


def get_species_track_files(wildcards):
    return [p for t in get_species_tracks(wildcards).values() for p in t.values()]


def get_store(split, prefix=""):
    """Input function: the three files of one split's window store (`dnalm.store.store_paths`), keys prefixed."""

    def store(wildcards):
        base = f"results/windows/{wildcards.task}/{split}"
        files = {"seq": f"{base}.seq.npy", "targets": f"{base}.targets.npy"}
        return {prefix + k: v for k, v in {**files, "meta": f"{base}.json"}.items()}

    return store


# --------------------------------------------------------------------------------------------------- training
def get_model_params(wildcards):
    """Params of train_model: the run's arch, its trunk's config block (LMs, U-Nets, enbed: with the backbone
    directory and the species tokens resolved), its train block and seed."""
    spec = dnalm.config.run_spec(config, wildcards.model)
    params = dict(spec[spec["arch"]])
    if spec["arch"] in ("lm", "unet", "enbed"):
        species = get_task(wildcards)["species"]
        params.update(
            backbone=dnalm.config.backbone_dir(config, wildcards.model, REPO),
            species=dnalm.config.species_token(config, species),
            species_list=dnalm.config.species_tokens(config),
        )
    return {
        "arch": spec["arch"],
        "model_params": params,
        "train_params": spec["train"],
        "seed": spec["seed"],
    }


def train_resource(name):
    """train_model's resource `name` from the model's train.devices and train.nodes (`dnalm.jobs.parallel_resources`;
    None, i.e. absent, where it does not apply)."""
    return lambda wildcards: dnalm.jobs.parallel_resources(
        dnalm.config.run_spec(config, wildcards.model)["train"]
    ).get(name)


def get_backbone_files(wildcards):
    """train_model's extra input: the weights of a backbone pretrained by this workflow (nothing otherwise)."""
    spec = dnalm.config.run_spec(config, wildcards.model)
    backbone = spec[spec["arch"]].get("backbone")  # lm, unet and enbed blocks have one
    if backbone not in config["pretrain"]:
        return []
    return [f"results/pretrain/{backbone}/model.safetensors"]


# ------------------------------------------------------------------------------------------------- evaluation
def get_task_type(wildcards):
    return get_task(wildcards)["type"]


def get_eval_settings(wildcards):
    """The task type's evaluation settings (`TaskType.eval_settings`), the site threshold and the counterfactual's
    species (`evaluate.counterfactual_species`)."""
    spec = get_task(wildcards)
    species = dnalm.config.counterfactual_species(config, wildcards.task)
    settings = {
        **tasks.get(spec["type"]).eval_settings(spec),
        "counterfactual_species": species,
    }
    return {"site_threshold": spec["site_threshold"], **settings}


def get_task_metrics(wildcards):
    return [
        f"results/eval/{wildcards.task}/{r['run']}/metrics.json"
        for r in dnalm.config.task_runs(config, wildcards.task)
    ]


def get_compare_runs(wildcards):
    """Params of compare_models: run id → model (sweep point) and seed."""
    return [
        {"run": r["run"], "point": r["point"], "seed": r["seed"]}
        for r in dnalm.config.task_runs(config, wildcards.task)
    ]


def get_sweep_runs(wildcards):
    return dnalm.config.model_runs(config, wildcards.model)


def get_sweep_files(name):
    """Input function: `metrics.json` (eval) or `history.tsv` (models) of every run of a swept model."""
    stage = "eval" if name == "metrics.json" else "models"

    def files(wildcards):
        return [
            f"results/{stage}/{wildcards.task}/{r['run']}/{name}"
            for r in dnalm.config.model_runs(config, wildcards.model)
        ]

    return files


# --------------------------------------------------------------------------------------------- interpretation
def get_interpret_outputs(wildcards):
    """The outputs attributions explain on the task (`dnalm.config.interpret_outputs`)."""
    return dnalm.config.interpret_outputs(config, wildcards.task)


def get_attribute_params(wildcards):
    spec = config["interpret"]
    return {
        "n_windows": spec["windows"],
        "outputs": get_interpret_outputs(wildcards),
        "n_shuffles": spec["n_shuffles"],
        "seed": spec["seed"],
        "ig_steps": spec["ig_steps"],
        "tracks": dnalm.config.interpret_selection(config, wildcards.task),
    }


def get_match_inputs(wildcards):
    """modisco results of every interpreted output, and the known-motif files."""
    prefix = f"results/interpret/{wildcards.task}/{wildcards.model}"
    return {
        "npz": f"{prefix}/attributions.npz",
        "modisco": [
            f"{prefix}/modisco.{o}.h5" for o in get_interpret_outputs(wildcards)
        ],
        "motifs": dnalm.config.motif_files(config, REPO),
    }


# ---------------------------------------------------------------------------------------------------- report
def get_report_manifest():
    """Every file the report reads, as records of kind, path and names (`dnalm.outputs.report_manifest`)."""
    return dnalm.outputs.report_manifest(config)


def get_report_inputs(wildcards):
    """The report's manifest files, and what a finished run holds besides them (QC gate, LM exports, run tables)."""
    files = [r["path"] for r in get_report_manifest()]
    return files + dnalm.outputs.final_outputs(config)


def get_final_output():
    return ["results/report.html"]
