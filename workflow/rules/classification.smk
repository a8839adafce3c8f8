# Classification tasks beyond the common path (docs/classification.md): per-example predictions and projections,
# and extra test sets (`tasks.<id>.test_sets`) evaluated with the calibration fitted on the task's validation split.


rule make_test_set:
    input:
        unpack(get_test_set_inputs),
    output:
        windows="results/windows/{task}/test_sets/{test_set}.tsv",
        fasta="results/windows/{task}/test_sets/{test_set}.fa",
        fai="results/windows/{task}/test_sets/{test_set}.fa.fai",
    log:
        "logs/make_test_set/{task}/{test_set}.log",
    conda:
        "../../envs/base.yaml"
    params:
        task=get_task,
        test_set=get_test_set,
        repo=REPO,
    script:
        "../scripts/make_test_set.py"


rule build_test_set_store:
    input:
        windows="results/windows/{task}/test_sets/{test_set}.tsv",
        classes="results/windows/{task}/train.json",
        genomes=[
            "results/windows/{task}/test_sets/{test_set}.fa",
            "results/windows/{task}/test_sets/{test_set}.fa.fai",
        ],
    output:
        seq="results/windows/{task}/test_sets/{test_set}.seq.npy",
        targets="results/windows/{task}/test_sets/{test_set}.targets.npy",
        meta="results/windows/{task}/test_sets/{test_set}.json",
    log:
        "logs/build_test_set_store/{task}/{test_set}.log",
    conda:
        "../../envs/base.yaml"
    params:
        task=get_task,
        split="test",
        genomes=lambda w: {
            get_task(w)[
                "species"
            ]: f"results/windows/{w.task}/test_sets/{w.test_set}.fa"
        },
        tracks=get_test_set_species,
    script:
        "../scripts/build_window_store.py"


rule evaluate_test_set:
    input:
        unpack(get_test_set_store()),
        unpack(get_store("val", "val_")),
        best="results/models/{task}/{model}/best.ckpt",
    output:
        predictions="results/eval/{task}/{model}/test_sets/{test_set}/predictions.h5",
        metrics="results/eval/{task}/{model}/test_sets/{test_set}/metrics.json",
    log:
        "logs/evaluate_test_set/{task}/{model}/{test_set}.log",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
    params:
        settings=get_eval_settings,
    script:
        "../scripts/evaluate_model.py"


rule compare_test_set:
    input:
        metrics=get_test_set_metrics,
    output:
        table="results/eval/{task}/test_sets/{test_set}/comparison.tsv",
        runs="results/eval/{task}/test_sets/{test_set}/runs.tsv",
    log:
        "logs/compare_test_set/{task}/{test_set}.log",
    conda:
        "../../envs/base.yaml"
    params:
        runs=get_compare_runs,
        task_type=get_task_type,
    script:
        "../scripts/compare_models.py"


rule classification_tables:
    input:
        unpack(get_store("test")),
        predictions="results/eval/{task}/{model}/predictions.h5",
        metrics="results/eval/{task}/{model}/metrics.json",
    output:
        predictions="results/eval/{task}/{model}/predictions.tsv",
        projection="results/eval/{task}/{model}/projection.tsv",
    log:
        "logs/classification_tables/{task}/{model}.log",
    conda:
        "../../envs/train.yaml"
    params:
        settings=get_eval_settings,
        seed=lambda w: get_task(w)["seed"],
    script:
        "../scripts/classification_tables.py"
