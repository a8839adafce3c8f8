rule make_windows:
    input:
        unpack(get_genome),
        unpack(get_site_tracks),
    output:
        windows="results/windows/{task}/candidates.tsv",
    log:
        "logs/make_windows/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        window=get_window_params,
    script:
        "../scripts/make_windows.py"


rule tile_windows:
    input:
        unpack(get_genome),
    output:
        windows="results/windows/{task}/tiles.tsv",
    log:
        "logs/tile_windows/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        window=get_window_params,
    script:
        "../scripts/tile_windows.py"


rule assign_splits:
    input:
        unpack(get_split_inputs),
    output:
        windows="results/windows/{task}/assigned.tsv",
        counts=report(
            "results/splits/{task}/counts.tsv",
            caption="../report/split_counts.rst",
            category="Windows and splits",
            labels={"task": "{task}"},
        ),
    log:
        "logs/assign_splits/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        split=get_split_params,
    script:
        "../scripts/assign_splits.py"


rule build_window_store:
    input:
        windows="results/windows/{task}/windows.tsv",
        genomes=get_task_fastas,
        tracks=get_species_track_files,
    output:
        seq="results/windows/{task}/{split}.seq.npy",
        targets="results/windows/{task}/{split}.targets.npy",
        meta="results/windows/{task}/{split}.json",
    log:
        "logs/build_window_store/{task}/{split}.log",
    conda:
        "../../envs/base.yaml"
    resources:
        mem_mb=grow_on_retry(2000),
    params:
        task=get_task,
        genomes=get_task_genomes,
        tracks=get_species_tracks,
    script:
        "../scripts/build_window_store.py"


rule make_examples:
    input:
        unpack(get_example_genome),
    output:
        windows="results/windows/{task}/examples.tsv",
        fasta="results/windows/{task}/examples.fa",
        fai="results/windows/{task}/examples.fa.fai",
    log:
        "logs/make_examples/{task}.log",
    conda:
        "../../envs/base.yaml"
    params:
        window=get_window_params,
        repo=REPO,
    script:
        "../scripts/make_examples.py"
