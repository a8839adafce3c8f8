"""The workflow's genome-wide tracks: a trained model's predictions and its test windows' attributions as bigWigs
(rules predict_tracks and attribution_tracks; the tiling and writing are `dnalm.genome_tracks`')."""

from __future__ import annotations

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
    from dnalm.device import pick_device, set_threads
    from dnalm.genome_tracks import genome_sizes, predict_tracks, read_regions
    from dnalm.io import write_json
    from dnalm.predict import load_model

    set_threads(threads)
    dev = pick_device(device)
    model, info = load_model(checkpoint, dev)
    channels = list(info["channels"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    class_index = len(channels) - 1
    if info["task_type"] == "classification":
        wanted = settings.get("class")
        if wanted is not None and wanted not in channels:
            raise ValueError(f"prediction_tracks.class: {wanted!r} is not a class of {checkpoint} ({channels})")
        class_index = channels.index(wanted) if wanted is not None else class_index
        names = [f"{channels[class_index]}.probability"]
    else:
        names = [track_name(c) for c in channels]
    paths = [str(out / f"{name}.bw") for name in names]
    bed = read_regions(regions, genome_sizes(fasta)) if regions else None
    summary = predict_tracks(model, fasta, paths, length=int(info["length"]), overlap=settings.get("overlap"),
                             regions=bed, transform=info.get("transform") or "none", class_index=class_index,
                             scan_stride=settings.get("scan_stride"), batch_size=int(settings["batch_size"]),
                             device=dev)
    summary = {**summary, "files": [Path(p).name for p in paths], "checkpoint": checkpoint, "regions": regions}
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
