# Input functions of LM pretraining (rules/lm.smk: pretrain_homology, pretrain_lm): the corpus genomes, what
# every task holds out of it, and the pretraining settings.


def get_pretrain_genomes(wildcards):
    """Per candidate genome: species token, FASTA, index, chromosomes never trained on, validation chromosomes."""
    return dnalm.config.pretrain_genomes(config, wildcards.lm)


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


def get_pretrain_homology_inputs(wildcards):
    """Corpus genomes (and the QC gate), and every task's filtered windows, genomes and fold layout."""
    specs = config["tasks"]
    return {
        **get_pretrain_inputs(wildcards),
        "windows": [f"results/windows/{t}/windows.tsv" for t in specs],
        "task_fastas": sorted({dnalm.config.task_fasta(config, t) for t in specs}),
        "folds": [
            f"results/splits/{dnalm.crossfold.layout_task(config, t)}/folds.tsv"
            for t, s in specs.items()
            if "folds" in s["split"]
        ],
    }


def get_pretrain_homology_params(wildcards):
    """The corpus tiling, the homology settings, and per task what is held out of the corpus."""
    spec = config["pretrain"][wildcards.lm]
    return {
        "window": spec["window"],
        "stride": spec["stride"],
        "homology": spec["homology"],
        "tasks": dnalm.config.held_out_windows(config),
    }


def get_species_tokens(wildcards):
    """Every configured species token, once each: the vocabulary of pretrained LMs."""
    return dnalm.config.species_tokens(config)


def pretrain_resource(name):
    """pretrain_lm's resource `name` from pretrain.<lm>.devices and nodes (`dnalm.jobs.parallel_resources`)."""
    return lambda wildcards: dnalm.jobs.parallel_resources(
        config["pretrain"][wildcards.lm]
    ).get(name)


def get_pretrain_params(wildcards):
    """The pretrain.<lm> block without the corpus and its homology filter (rules of their own)."""
    spec = config["pretrain"][wildcards.lm]
    return {k: v for k, v in spec.items() if k not in ("corpus", "homology")}
