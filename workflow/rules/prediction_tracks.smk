# Genome-wide bigWigs (prediction_tracks block): a run's predictions tiled over its task's genome, and the
# attributions of its interpreted test windows at their genomic places.


if SHARDS["prediction_tracks"] == 1:

    rule predict_tracks:
        input:
            unpack(get_genome),
            best="results/models/{task}/{model}/best.ckpt",
            regions=get_track_regions,
        output:
            tracks=directory("results/tracks/{task}/{model}/predictions"),
            summary="results/tracks/{task}/{model}/predictions.json",
        log:
            "logs/predict_tracks/{task}/{model}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=grow_on_retry(4000),
        params:
            settings=config["prediction_tracks"],
        script:
            "../scripts/predict_tracks.py"

else:

    # inference.prediction_tracks > 1: each shard predicts its batches of tiles (genome order) into spill files,
    # the merge streams them into the bigWigs predict_tracks writes (dnalm.genome_tracks).
    rule predict_tracks_shard:
        input:
            unpack(get_genome),
            best="results/models/{task}/{model}/best.ckpt",
            regions=get_track_regions,
        output:
            part=temp(directory("results/tracks/{task}/{model}/shards/{shard}")),
        log:
            "logs/predict_tracks_shard/{task}/{model}/{shard}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=grow_on_retry(4000),
        params:
            settings=config["prediction_tracks"],
            shard=get_shard("prediction_tracks"),
        script:
            "../scripts/predict_tracks_shard.py"

    rule merge_prediction_tracks:
        input:
            unpack(get_genome),
            best="results/models/{task}/{model}/best.ckpt",
            regions=get_track_regions,
            parts=get_shard_parts(
                "prediction_tracks", "results/tracks/{task}/{model}/shards/{shard}"
            ),
        output:
            tracks=directory("results/tracks/{task}/{model}/predictions"),
            summary="results/tracks/{task}/{model}/predictions.json",
        log:
            "logs/merge_prediction_tracks/{task}/{model}.log",
        conda:
            "../../envs/interpret.yaml"
        threads: 4
        script:
            "../scripts/merge_prediction_tracks.py"


rule attribution_tracks:
    input:
        unpack(get_genome),
        npz="results/interpret/{task}/{model}/attributions.npz",
        windows="results/windows/{task}/windows.tsv",
    output:
        bw="results/tracks/{task}/{model}/attribution.{output}.bw",
    log:
        "logs/attribution_tracks/{task}/{model}.{output}.log",
    wildcard_constraints:
        output="count|profile|class|tracks",
    conda:
        "../../envs/interpret.yaml"
    script:
        "../scripts/attribution_tracks.py"
