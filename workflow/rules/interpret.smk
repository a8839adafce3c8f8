if SHARDS["attribute"] == 1:

    rule attribute:
        input:
            unpack(get_store("test")),
            best="results/models/{task}/{model}/best.ckpt",
        output:
            npz="results/interpret/{task}/{model}/attributions.npz",
        log:
            "logs/attribute/{task}/{model}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 8
        resources:
            gpu=1,
            mem_mb=8000,
            runtime=720,
        params:
            hp=get_attribute_params,
        script:
            "../scripts/attribute.py"

else:

    # inference.attribute > 1: each shard explains its passes of the windows on a GPU, the merge joins them into
    # the attributions.npz attribute writes (dnalm.attribution_shards).
    rule attribute_shard:
        input:
            unpack(get_store("test")),
            best="results/models/{task}/{model}/best.ckpt",
        output:
            part=temp("results/interpret/{task}/{model}/shards/{shard}.npz"),
        log:
            "logs/attribute_shard/{task}/{model}/{shard}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 8
        resources:
            gpu=1,
            mem_mb=8000,
            runtime=720,
        params:
            hp=get_attribute_params,
            shard=get_shard("attribute"),
        script:
            "../scripts/attribute_shard.py"

    rule merge_attributions:
        input:
            unpack(get_store("test")),
            parts=get_shard_parts(
                "attribute", "results/interpret/{task}/{model}/shards/{shard}.npz"
            ),
        output:
            npz="results/interpret/{task}/{model}/attributions.npz",
        log:
            "logs/merge_attributions/{task}/{model}.log",
        conda:
            "../../envs/interpret.yaml"
        resources:
            mem_mb=8000,
        params:
            hp=get_attribute_params,
        script:
            "../scripts/merge_attributions.py"


rule run_modisco:
    input:
        npz="results/interpret/{task}/{model}/attributions.npz",
    output:
        h5="results/interpret/{task}/{model}/modisco.{output}.h5",
    log:
        "logs/run_modisco/{task}/{model}.{output}.log",
    wildcard_constraints:
        output="count|profile|class|tracks",
    conda:
        "../../envs/interpret.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        settings=config["interpret"]["modisco"],
    script:
        "../scripts/run_modisco.py"


rule match_motifs:
    input:
        unpack(get_match_inputs),
    output:
        tsv="results/interpret/{task}/{model}/motifs.tsv",
    log:
        "logs/match_motifs/{task}/{model}.log",
    conda:
        "../../envs/interpret.yaml"
    threads: 2
    params:
        outputs=get_interpret_outputs,
        q_threshold=config["interpret"]["q_threshold"],
        reverse_complement=config["interpret"]["reverse_complement"],
        min_support=config["interpret"]["min_support"],
    script:
        "../scripts/match_motifs.py"


rule positional_elements:
    input:
        npz="results/interpret/{task}/{model}/attributions.npz",
    output:
        tsv="results/interpret/{task}/{model}/positional.tsv",
        profile="results/interpret/{task}/{model}/positional.npz",
    log:
        "logs/positional_elements/{task}/{model}.log",
    conda:
        "../../envs/interpret.yaml"
    threads: 1
    params:
        outputs=get_interpret_outputs,
        settings=config["interpret"]["positional"],
        seed=config["interpret"]["seed"],
    script:
        "../scripts/positional_elements.py"


rule ism:
    input:
        npz="results/interpret/{task}/{model}/attributions.npz",
        best="results/models/{task}/{model}/best.ckpt",
    output:
        npz="results/interpret/{task}/{model}/ism.npz",
    log:
        "logs/ism/{task}/{model}.log",
    conda:
        "../../envs/interpret.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=grow_on_retry(4000),
    params:
        outputs=get_interpret_outputs,
        windows=config["interpret"]["ism"]["windows"],
        span=config["interpret"]["ism"]["span"],
    script:
        "../scripts/ism.py"


rule ism_regions:
    input:
        unpack(get_genome),
        best="results/models/{task}/{model}/best.ckpt",
        bed=get_ism_regions,
    output:
        npz="results/interpret/{task}/{model}/ism_regions.npz",
    log:
        "logs/ism_regions/{task}/{model}.log",
    conda:
        "../../envs/interpret.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=grow_on_retry(4000),
    params:
        outputs=get_interpret_outputs,
        hp=get_attribute_params,
    script:
        "../scripts/ism_regions.py"
