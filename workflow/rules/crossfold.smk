# Across folds and runs: the fold ensemble of each fold of a cross-validated task (split.folds without val and test),
# the cross-fold table of its group, and what pretraining is worth (pretrained LM against the same one from scratch).
# Input functions: rules/common_crossfold.smk.
localrules:
    cross_fold,
    pretraining_value,


rule fold_ensemble:
    input:
        unpack(get_store("test")),
        members=get_ensemble_members,
    output:
        predictions="results/eval/{task}/{model}/ensemble.h5",
        metrics="results/eval/{task}/{model}/ensemble.json",
    log:
        "logs/fold_ensemble/{task}/{model}.log",
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=grow_on_retry(4000),
    params:
        settings=get_eval_settings,
    script:
        "../scripts/evaluate_ensemble.py"


rule cross_fold:
    input:
        unpack(get_cross_fold_inputs),
    output:
        table="results/eval/{task}/cross_fold.tsv",
    log:
        "logs/cross_fold/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        folds=get_unit_folds,
        ensemble_folds=get_ensemble_folds,
    script:
        "../scripts/cross_fold.py"


rule pretraining_value:
    input:
        runs=get_unit_runs,
    output:
        table="results/eval/{task}/pretraining.tsv",
    log:
        "logs/pretraining_value/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        folds=get_unit_folds,
        pairs=get_pretraining_pairs,
    script:
        "../scripts/pretraining_value.py"
