# Per-base conservation from pretrained language models (conservation block): each base masked, C = 2 − H of the
# predicted nucleotide distribution, with the codon-position control on the species' CDS.


rule score_conservation:
    input:
        unpack(get_conservation_inputs),
    output:
        bigwig="results/conservation/{lm}/{species}.bw",
        scores="results/conservation/{lm}/{species}.npz",
        summary="results/conservation/{lm}/{species}.json",
    log:
        "logs/score_conservation/{lm}/{species}.log",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=grow_on_retry(4000),
    params:
        settings=get_conservation_params,
    script:
        "../scripts/score_conservation.py"
