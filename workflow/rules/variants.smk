# Variant effects (docs/variants.md): each VCF of a task's species scored by every seed run of a model.


if SHARDS["variants"] == 1:

    rule score_variants:
        input:
            unpack(get_variant_inputs),
        output:
            tsv="results/variants/{task}/{model}/{vcf}.tsv",
            summary="results/variants/{task}/{model}/{vcf}.json",
            top="results/variants/{task}/{model}/{vcf}.top.npz",
        log:
            "logs/score_variants/{task}/{model}/{vcf}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=grow_on_retry(4000),
        params:
            settings=config["variants"],
            attribution=get_variant_attribution,
        script:
            "../scripts/score_variants.py"

else:

    # inference.variants > 1: each shard scores its batches of variants with every seed run, the merge joins the
    # rows and attributes the top variants as score_variants does (dnalm.variants).
    rule score_variants_shard:
        input:
            unpack(get_variant_inputs),
        output:
            part=temp("results/variants/{task}/{model}/shards/{vcf}/{shard}.pkl"),
        log:
            "logs/score_variants_shard/{task}/{model}/{vcf}/{shard}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=grow_on_retry(4000),
        params:
            settings=config["variants"],
            shard=get_shard("variants"),
        script:
            "../scripts/score_variants_shard.py"

    rule merge_variant_scores:
        input:
            unpack(get_variant_inputs),
            parts=get_shard_parts(
                "variants", "results/variants/{task}/{model}/shards/{vcf}/{shard}.pkl"
            ),
        output:
            tsv="results/variants/{task}/{model}/{vcf}.tsv",
            summary="results/variants/{task}/{model}/{vcf}.json",
            top="results/variants/{task}/{model}/{vcf}.top.npz",
        log:
            "logs/merge_variant_scores/{task}/{model}/{vcf}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=grow_on_retry(4000),
        params:
            settings=config["variants"],
            attribution=get_variant_attribution,
        script:
            "../scripts/merge_variant_scores.py"
