# Variant effects (docs/variants.md): each VCF of a task's species scored by every seed run of a model.


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
