"""The workflow's genome-wide tracks: a trained model's predictions and its test windows' attributions as bigWigs
(rules predict_tracks and attribution_tracks; the tiling and writing are `dnalm.genome_tracks`')."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def track_name(channel: str) -> str:
    """A bigWig file name for an output channel: `polya/+` → `polya.plus`, `polya/-` → `polya.minus`."""
    return channel.replace("/+", ".plus").replace("/-", ".minus").replace("/", "_")


def write_prediction_tracks(checkpoint: str, fasta: str, out_dir: str, summary_json: str, *, settings: dict,
                            regions: str | None = None, threads: int = 1, device: str | None = None) -> dict:
    """Predict a model over the genome (or the BED `regions`) into `out_dir`/<output>.bw.

    Profile and tracks models write one bigWig per output channel (`track_name`); a classifier writes
    `<class>.probability.bw`, the probability of `settings["class"]` (default: the last class) along the genome.

    Args:
        checkpoint: The run's best.ckpt.
        fasta: The species' genome (indexed).
        out_dir: Directory of the bigWigs (created).
        summary_json: The summary (`dnalm.genome_tracks.predict_tracks`'s, with the files and the model's run).
        settings: The config's `prediction_tracks` block (`overlap`, `scan_stride`, `class`, `batch_size`).
        regions: A BED file of regions to predict; None: every chromosome.
        threads: CPU threads for torch.
        device: Torch device, or None to choose.
    """
    from dnalm.genome_tracks import predict_tracks

    model, names, options = _track_run(checkpoint, fasta, settings, regions, threads, device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [str(out / f"{name}.bw") for name in names]
    summary = predict_tracks(model, fasta, paths, **options)
    return _write_summary(summary, names, checkpoint, regions, summary_json, out_dir)


def write_prediction_track_shard(checkpoint: str, fasta: str, out_part: str, *, settings: dict, shard: int,
                                 shards: int, regions: str | None = None, threads: int = 1,
                                 device: str | None = None) -> dict:
    """One shard of `write_prediction_tracks` (`inference.prediction_tracks`): its windows' values as spill files in
    the directory `out_part` (`dnalm.genome_tracks.predict_track_shard`), with the bigWigs' names in `files.json`."""
    from dnalm.genome_tracks import predict_track_shard

    model, names, options = _track_run(checkpoint, fasta, settings, regions, threads, device)
    summary = predict_track_shard(model, fasta, out_part, len(names), shard=shard, shards=shards, **options)
    (Path(out_part) / "files.json").write_text(json.dumps(names))
    log.info("shard %d of %d: %d windows -> %s", shard, shards, summary["windows"], out_part)
    return summary


def merge_prediction_tracks(parts: list[str], checkpoint: str, fasta: str, out_dir: str, summary_json: str, *,
                            regions: str | None = None, threads: int = 1) -> dict:
    """The bigWigs and summary of `write_prediction_tracks` from its shards (`write_prediction_track_shard`'s
    directories, in shard order), `threads` bigWigs written at a time; the model is not run."""
    from dnalm.genome_tracks import genome_sizes, merge_track_shards

    names = json.loads((Path(parts[0]) / "files.json").read_text())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = merge_track_shards(parts, [str(out / f"{name}.bw") for name in names], genome_sizes(fasta), threads)
    return _write_summary(summary, names, checkpoint, regions, summary_json, out_dir)


def _track_run(checkpoint: str, fasta: str, settings: dict, regions: str | None, threads: int,
               device: str | None) -> tuple:
    """The model of a run, its bigWigs' names and `predict_tracks`' options (see `write_prediction_tracks`)."""
    from dnalm.device import pick_device, set_threads
    from dnalm.genome_tracks import genome_sizes, read_regions
    from dnalm.predict import load_model

    set_threads(threads)
    dev = pick_device(device)
    model, info = load_model(checkpoint, dev)
    channels = list(info["channels"])
    class_index = len(channels) - 1
    if info["task_type"] == "classification":
        wanted = settings.get("class")
        if wanted is not None and wanted not in channels:
            raise ValueError(f"prediction_tracks.class: {wanted!r} is not a class of {checkpoint} ({channels})")
        class_index = channels.index(wanted) if wanted is not None else class_index
        names = [f"{channels[class_index]}.probability"]
    else:
        names = [track_name(c) for c in channels]
    bed = read_regions(regions, genome_sizes(fasta)) if regions else None
    options = {"length": int(info["length"]), "overlap": settings.get("overlap"), "regions": bed,
               "transform": info.get("transform") or "none", "class_index": class_index,
               "scan_stride": settings.get("scan_stride"), "batch_size": int(settings["batch_size"]), "device": dev}
    return model, names, options


def _write_summary(summary: dict, names: list[str], checkpoint: str, regions: str | None, summary_json: str,
                   out_dir: str) -> dict:
    """The run's summary with its files, checkpoint and regions, written to `summary_json`."""
    from dnalm.io import write_json

    summary = {**summary, "files": [f"{name}.bw" for name in names], "checkpoint": checkpoint, "regions": regions}
    write_json(summary, summary_json)
    log.info("%d bases, %d windows -> %s", summary["bases"], summary["windows"], out_dir)
    return summary


def write_attribution_tracks(npz: str, windows_tsv: str, fasta: str, paths: dict[str, str]) -> dict:
    """Write the attributions of an `attribute` run at their windows' genomic places, one bigWig per output.

    Windows whose chromosome is not in the genome (classification examples read from FASTA files) are left out.

    Args:
        npz: attributions.npz (`dnalm.attribution.attribute_windows`).
        windows_tsv: The task's windows.tsv (id, chrom, start, strand).
        fasta: The genome (indexed).
        paths: Output name (`count`, `profile`, `class`) → bigWig.

    Returns:
        Per output, the bases written; and the windows placed and left out.
    """
    from dnalm.genome_tracks import genome_sizes, write_attribution_bigwig

    sizes = genome_sizes(fasta)
    windows = pd.read_csv(windows_tsv, sep="\t", dtype={"id": str, "chrom": str}).set_index("id")
    with np.load(npz) as arrays:
        ids = arrays["window_ids"].astype(str)
        placed = np.array([i in windows.index and windows.at[i, "chrom"] in sizes for i in ids], dtype=bool)
        rows = windows.loc[ids[placed]]
        summary = {"windows": int(placed.sum()), "left_out": int((~placed).sum())}
        for output, path in paths.items():
            summary[output] = write_attribution_bigwig(
                path, sizes, rows["chrom"].tolist(), rows["start"].astype(int).tolist(),
                arrays[f"{output}_attr"][placed], arrays["onehot"][placed], rows["strand"].tolist())
    return summary
