rule train_model:
    input:
        unpack(get_store("train")),
        unpack(get_store("val", "val_")),
        backbone=get_backbone_files,
    output:
        best="results/models/{task}/{model}/best.ckpt",
        history=report(
            "results/models/{task}/{model}/history.tsv",
            caption="../report/history.rst",
            category="Training",
            labels={"task": "{task}", "model": "{model}"},
        ),
        info="results/models/{task}/{model}/model.json",
    log:
        "logs/train_model/{task}/{model}.log",
    conda:
        "../../envs/train.yaml"
    threads: 8
    resources:
        **{name: train_resource(name) for name in dnalm.jobs.PARALLEL_RESOURCES},
        mem_mb=grow_on_retry(8000),
        runtime=grow_on_retry(720),
    params:
        hp=get_model_params,
    script:
        "../scripts/train_model.py"
