# Splits beyond the chromosome holdout: k-fold genome folds, extra train species, and the homology filter of the
# task windows and of the pretraining corpus (docs/splits.md).


rule make_folds:
    input:
        unpack(get_genome),
    output:
        folds="results/splits/{task}/folds.tsv",
    log:
        "logs/make_folds/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        folds=get_fold_params,
    script:
        "../scripts/make_folds.py"


rule make_extra_windows:
    input:
        unpack(get_genome),
        unpack(get_site_tracks),
    output:
        windows="results/windows/{task}/extra/{species}.tsv",
    log:
        "logs/make_extra_windows/{task}/{species}.log",
    conda:
        "../../envs/base.yaml"
    params:
        window=get_window_params,
    script:
        "../scripts/make_windows.py"


rule filter_homology:
    input:
        windows="results/windows/{task}/assigned.tsv",
        genomes=get_task_fastas,
    output:
        windows="results/windows/{task}/windows.tsv",
        homology="results/splits/{task}/homology.tsv",
        summary=report(
            "results/splits/{task}/summary.tsv",
            caption="../report/homology_summary.rst",
            category="Windows and splits",
            labels={"task": "{task}", "table": "homology filter"},
        ),
    log:
        "logs/filter_homology/{task}.log",
    conda:
        "../../envs/base.yaml"
    threads: 8
    params:
        homology=get_homology_params,
    script:
        "../scripts/filter_homology.py"


rule pretrain_homology:
    input:
        unpack(get_pretrain_homology_inputs),
    output:
        excluded="results/pretrain/{lm}/homology_excluded.tsv",
    log:
        "logs/pretrain_homology/{lm}.log",
    conda:
        "../../envs/base.yaml"
    threads: 8
    params:
        genomes=get_pretrain_genomes,
        settings=get_pretrain_homology_params,
    script:
        "../scripts/pretrain_homology.py"
