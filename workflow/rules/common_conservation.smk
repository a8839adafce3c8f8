# Input functions of score_conservation, in rules/conservation.smk (one job per pretrained LM and species of
# dnalm.config.conservation_jobs).


def get_conservation_inputs(wildcards):
    """The pretrained LM's files, the species' genome and annotation, and the BED of conservation.regions."""
    lm, prefix = f"results/pretrain/{wildcards.lm}", f"resources/{wildcards.species}"
    regions = config["conservation"]["regions"]
    return {
        "weights": f"{lm}/model.safetensors",
        "tokenizer": f"{lm}/tokenizer.json",
        "lm_summary": f"{lm}/pretrain.json",
        "fasta": f"{prefix}/genome.fa",
        "fai": f"{prefix}/genome.fa.fai",
        "annotation": f"{prefix}/annotation.gff3",
        "regions": [_bed("conservation.regions", regions)] if regions else [],
    }


def get_conservation_params(wildcards):
    """The species' token, and the context and batch size of conservation."""
    block = config["conservation"]
    return {
        "species": dnalm.config.species_token(config, wildcards.species),
        "context": block["context"],
        "batch_size": block["batch_size"],
    }
