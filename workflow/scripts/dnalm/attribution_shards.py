"""Attribution split into window shards (`inference.attribute`): each shard's attributions, and their merge.

A shard (rule attribute_shard) explains its run of the windows `attribute_windows` explains, cut between the passes
`dnalm.attribution.attribute` makes (`windows_per_pass`), each window with the references of its own seed; the merge
(rule merge_attributions) joins them in order with the windows' arrays into the attributions.npz of the unsharded
job, equal array for array.
"""

from __future__ import annotations

import logging

import numpy as np

from dnalm.attribution import attribute, resolve_method, save_npz_atomic, window_arrays, windows_per_pass
from dnalm.device import pick_device, set_threads
from dnalm.shards import check_parts, save_part, shard_rows
from dnalm.store import WindowStore

log = logging.getLogger(__name__)


def attribute_shard(
    checkpoint: str,
    store: WindowStore,
    out_part: str,
    *,
    shard: int,
    shards: int,
    n_windows: int,
    outputs: list[str],
    n_shuffles: int,
    seed: int,
    ig_steps: int = 20,
    threads: int = 1,
    batch_size: int = 32,
    device: str | None = None,
    tracks: dict | None = None,
) -> int:
    """Attribute one shard of the windows of `dnalm.attribution.attribute_windows` (its arguments) and save its
    `<output>_attr` and `<output>_hyp` rows with `shard` and `rows` (first, stop) in the .npz `out_part`.

    Returns:
        The windows attributed.
    """
    from dnalm.predict import load_model

    set_threads(threads)
    dev = pick_device(device)
    model, _ = load_model(checkpoint, dev)
    onehot = window_arrays(store, n_windows, seed, tracks)["onehot"]
    per_pass = windows_per_pass(resolve_method(model), n_shuffles, batch_size, ig_steps)
    rows = shard_rows(len(onehot), per_pass, shards, shard)
    arrays = {"shard": np.array([shard, shards]), "rows": np.array([rows.start, rows.stop])}
    for output in outputs:
        if len(rows):
            attr, hyp = attribute(
                model,
                onehot[rows.start : rows.stop],
                output=output,
                n_shuffles=n_shuffles,
                seed=seed,
                batch_size=batch_size,
                device=dev,
                steps=ig_steps,
                tracks=tracks,
                offset=rows.start,
            )
        else:
            attr = hyp = np.zeros((0, *onehot.shape[1:]), np.float32)
        arrays[f"{output}_attr"] = np.asarray(attr, dtype=np.float32)
        arrays[f"{output}_hyp"] = np.asarray(hyp, dtype=np.float32)
    save_part(out_part, **arrays)
    log.info("shard %d of %d: windows %d-%d of %d", shard, shards, rows.start, rows.stop, len(onehot))
    return len(rows)


def merge_attributions(
    store: WindowStore,
    parts: list[str],
    out_npz: str,
    *,
    n_windows: int,
    outputs: list[str],
    seed: int,
    tracks: dict | None = None,
    **settings,
) -> dict:
    """Write the attributions.npz of `attribute_windows` from its shards (`attribute_shard`, in shard order).

    Args:
        store: Test windows.
        parts: The shards' .npz files.
        out_npz: attributions.npz.
        n_windows: Windows explained (`interpret.windows`).
        outputs: The outputs explained.
        seed: The windows' and references' seed.
        tracks: The `tracks` output's selection.
        settings: The attribution's other settings (n_shuffles, ig_steps; unused here).

    Returns:
        A summary (windows, shards).
    """
    arrays = window_arrays(store, n_windows, seed, tracks)
    files = [np.load(p) for p in parts]
    try:
        for i, f in enumerate(files):
            if f["shard"].tolist() != [i, len(files)]:
                raise ValueError(
                    f"{parts[i]} is shard {f['shard'].tolist()} (shard, shards), expected {[i, len(files)]}"
                )
        check_parts([tuple(f["rows"].tolist()) for f in files], len(arrays["onehot"]), parts)
        for output in outputs:
            for kind in ("attr", "hyp"):
                arrays[f"{output}_{kind}"] = np.concatenate([f[f"{output}_{kind}"] for f in files])
    finally:
        for f in files:
            f.close()
    save_npz_atomic(out_npz, **arrays)
    return {"windows": len(arrays["onehot"]), "shards": len(parts)}
