# A few seconds of table work: run where Snakemake runs instead of waiting in a cluster queue.
localrules:
    compare_models,


if SHARDS["evaluate"] == 1:

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
            gpu=1,
            mem_mb=grow_on_retry(4000),
        params:
            settings=get_eval_settings,
        script:
            "../scripts/evaluate_model.py"

else:

    # inference.evaluate > 1: each shard predicts its batches of the test (and validation) windows on a GPU, the
    # merge evaluates them as evaluate_model would (dnalm.evaluate_shards).
    rule evaluate_shard:
        input:
            unpack(get_store("test")),
            unpack(get_store("val", "val_")),
            best="results/models/{task}/{model}/best.ckpt",
        output:
            part=temp("results/eval/{task}/{model}/shards/{shard}.npz"),
        log:
            "logs/evaluate_shard/{task}/{model}/{shard}.log",
        conda:
            "../../envs/train.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=grow_on_retry(4000),
        params:
            settings=get_eval_settings,
            shard=get_shard("evaluate"),
        script:
            "../scripts/evaluate_shard.py"

    rule merge_evaluation:
        input:
            unpack(get_store("test")),
            unpack(get_store("val", "val_")),
            best="results/models/{task}/{model}/best.ckpt",
            parts=get_shard_parts(
                "evaluate", "results/eval/{task}/{model}/shards/{shard}.npz"
            ),
        output:
            predictions="results/eval/{task}/{model}/predictions.h5",
            metrics="results/eval/{task}/{model}/metrics.json",
            counterfactual="results/eval/{task}/{model}/counterfactual.tsv",
        log:
            "logs/merge_evaluation/{task}/{model}.log",
        conda:
            "../../envs/train.yaml"
        resources:
            mem_mb=grow_on_retry(4000),
        params:
            settings=get_eval_settings,
        script:
            "../scripts/merge_evaluation.py"


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
