# Input functions of the variant rules (rules/variants.smk: one job per (task, model, VCF) of
# dnalm.config_variants.variant_jobs, scoring with every seed run of the model) and of the genome-wide tracks
# (rules/prediction_tracks.smk).


def _variant_job(wildcards):
    for job in dnalm.config_variants.variant_jobs(config):
        if (job["task"], job["model"], job["vcf"]) == (
            wildcards.task,
            wildcards.model,
            wildcards.vcf,
        ):
            return job
    raise ValueError(
        f"no variant scoring of {wildcards.vcf} by {wildcards.model} on {wildcards.task} "
        "(see variants.models and species.<id>.variants)"
    )


def get_variant_inputs(wildcards):
    """The VCF's table, the genome, every seed run's best.ckpt and (classification) metrics.json."""
    job = _variant_job(wildcards)
    prefix = f"resources/{job['species']}"
    classify = config["tasks"][job["task"]]["type"] == "classification"
    return {
        "variants": f"{prefix}/variants/{job['vcf']}.tsv",
        "fasta": f"{prefix}/genome.fa",
        "fai": f"{prefix}/genome.fa.fai",
        "checkpoints": [
            f"results/models/{job['task']}/{r}/best.ckpt" for r in job["runs"]
        ],
        "metrics": [
            f"results/eval/{job['task']}/{r}/metrics.json"
            for r in job["runs"]
            if classify
        ],
    }


def get_variant_attribution(wildcards):
    """Settings of the top variants' attributions: the interpret block's references and steps."""
    return {k: config["interpret"][k] for k in ("n_shuffles", "ig_steps", "seed")}


def _bed(key, name):
    """A configured BED file found in the working directory or the repository (error naming the key otherwise)."""
    found = dnalm.config.resolve_path(name, REPO)
    if found is None or not Path(found).is_file():
        raise ValueError(
            f"{key}: BED file {name!r} not found (in the working directory or {REPO})"
        )
    return found


def get_track_regions(wildcards):
    """predict_tracks' BED of regions (prediction_tracks.regions), or nothing: every chromosome."""
    regions = config["prediction_tracks"]["regions"]
    return [_bed("prediction_tracks.regions", regions)] if regions else []


def get_ism_regions(wildcards):
    """ism_regions' BED (interpret.ism.regions)."""
    return _bed("interpret.ism.regions", config["interpret"]["ism"]["regions"])
