rule pretrain_lm:
    input:
        unpack(get_pretrain_inputs),
        excluded="results/pretrain/{lm}/homology_excluded.tsv",
    output:
        config="results/pretrain/{lm}/config.json",
        weights="results/pretrain/{lm}/model.safetensors",
        tokenizer="results/pretrain/{lm}/tokenizer.json",
        summary="results/pretrain/{lm}/pretrain.json",
        history=report(
            "results/pretrain/{lm}/history.tsv",
            caption="../report/pretrain_history.rst",
            category="Language model pretraining",
            labels={"language model": "{lm}"},
        ),
    log:
        "logs/pretrain_lm/{lm}.log",
    conda:
        "../../envs/train.yaml"
    threads: 8
    resources:
        **{name: pretrain_resource(name) for name in dnalm.jobs.PARALLEL_RESOURCES},
        mem_mb=grow_on_retry(16000),
        runtime=grow_on_retry(1440),
    params:
        genomes=get_pretrain_genomes,
        species=get_species_tokens,
        hp=get_pretrain_params,
    script:
        "../scripts/pretrain_lm.py"


rule export_lm:
    input:
        best="results/models/{task}/{model}/best.ckpt",
    output:
        hf=directory("results/models/{task}/{model}/hf"),
    log:
        "logs/export_lm/{task}/{model}.log",
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=grow_on_retry(4000),
    script:
        "../scripts/export_lm.py"
