# A few seconds of table work: run where Snakemake runs instead of waiting in a cluster queue.
localrules:
    compare_models,


rule evaluate_model:
    input:
        unpack(get_store("test")),
        unpack(get_store("val", "val_")),
        best="results/models/{task}/{model}/best.ckpt",
    output:
        predictions="results/eval/{task}/{model}/predictions.h5",
        metrics="results/eval/{task}/{model}/metrics.json",
        counterfactual="results/eval/{task}/{model}/counterfactual.tsv",
    log:
        "logs/evaluate_model/{task}/{model}.log",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        mem_mb=grow_on_retry(4000),
    params:
        settings=get_eval_settings,
    script:
        "../scripts/evaluate_model.py"


rule compare_models:
    input:
        metrics=get_task_metrics,
    output:
        table=report(
            "results/eval/{task}/comparison.tsv",
            caption="../report/comparison.rst",
            category="Test metrics",
            labels={"task": "{task}"},
        ),
        runs="results/eval/{task}/runs.tsv",
    log:
        "logs/compare_models/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        runs=get_compare_runs,
        task_type=get_task_type,
    script:
        "../scripts/compare_models.py"


rule summarize_sweep:
    input:
        metrics=get_sweep_files("metrics.json"),
        histories=get_sweep_files("history.tsv"),
    output:
        table=report(
            "results/eval/{task}/sweeps/{model}.tsv",
            caption="../report/sweep.rst",
            category="Sweeps",
            labels={"task": "{task}", "model": "{model}"},
        ),
    log:
        "logs/summarize_sweep/{task}/{model}.log",
    conda:
        "../../envs/base.yaml"
    params:
        runs=get_sweep_runs,
        task_type=get_task_type,
    script:
        "../scripts/summarize_sweep.py"
