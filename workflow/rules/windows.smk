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
        window=get_tile_params,
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
        unpack(get_genome),
        windows="results/windows/{task}/windows.tsv",
        tracks=get_task_track_files,
        genomes=get_task_fastas,
        species_tracks=get_store_track_files,
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
        tracks=get_task_tracks,
        targets=get_targets,
        flank=get_flank,
        genomes=get_task_genome_map,
        species_tracks=get_species_track_map,
        bins=get_bins_params,
        species=get_task_species,
    script:
        "../scripts/build_window_store.py"
