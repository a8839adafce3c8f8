"""Inference split into window shards (config `inference`): which rows each shard runs, and its partial files.

A step split into N shards runs N jobs, each on a contiguous run of whole batches of the step's windows (test
windows, attributed windows, genome tiles, variants), then a merge job that joins the partial outputs in order.
Shards cut only between batches, so every forward pass a shard makes is one the unsharded job makes, with the same
windows: the merged outputs equal the unsharded ones to the bit. Shards past the number of batches run nothing and write an empty part.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: Inference steps that can be sharded: the config's `inference.<step>` keys.
STEPS = ("evaluate", "attribute", "prediction_tracks", "variants")


def step_shards(inference: Mapping, step: str) -> int:
    """The shards of one step: `inference.<step>`, else `inference.shards` (the config's `inference` block)."""
    if step not in STEPS:
        raise ValueError(f"unknown inference step {step!r}; known: {', '.join(STEPS)}")
    value = inference.get(step)
    return int(inference.get("shards", 1) if value is None else value)


def shard_bounds(n_items: int, shards: int) -> list[tuple[int, int]]:
    """Split `n_items` items into `shards` contiguous runs, in order, as equal as can be (the first `n_items %
    shards` runs one longer); runs beyond `n_items` are empty.

    Returns:
        (first, stop) per shard; together they cover [0, n_items) once.
    """
    if shards < 1 or n_items < 0:
        raise ValueError(f"cannot split {n_items} items into {shards} shards (shards must be at least 1)")
    size, extra = divmod(n_items, shards)
    bounds, first = [], 0
    for shard in range(shards):
        stop = first + size + (shard < extra)
        bounds.append((first, stop))
        first = stop
    return bounds


def shard_rows(n_rows: int, batch_size: int, shards: int, shard: int) -> range:
    """The rows of one shard: its share of the `ceil(n_rows / batch_size)` batches of `batch_size` rows.

    Args:
        n_rows: Rows (windows, tiles, variants) of the whole step.
        batch_size: Rows per forward pass, as the unsharded job batches them.
        shards: Shards of the step.
        shard: This shard (0-based).

    Returns:
        A range starting at a multiple of `batch_size` (empty for a shard without batches).
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of {shards} shards (0 to {shards - 1})")
    if batch_size < 1:
        raise ValueError(f"batch size {batch_size} must be at least 1")
    first, stop = shard_bounds(-(-n_rows // batch_size), shards)[shard]
    return range(min(first * batch_size, n_rows), min(stop * batch_size, n_rows))


def check_parts(rows: Sequence[tuple[int, int]], n_rows: int, names: Sequence[str]) -> None:
    """Check that partial outputs, in shard order, cover rows [0, n_rows) once each.

    Args:
        rows: (first, stop) of each part.
        n_rows: Rows of the whole step.
        names: Each part's file, for the error.

    Raises:
        ValueError: naming the first part that does not continue where the previous one stopped (a part of another
            run, or of another number of shards).
    """
    expected = 0
    for (first, stop), name in zip(rows, names, strict=True):
        if first != expected or stop < first:
            raise ValueError(
                f"{name}: rows {first}-{stop}, expected a part starting at row {expected}; the parts "
                "come from different runs or shard counts: delete them and rerun"
            )
        expected = stop
    if expected != n_rows:
        raise ValueError(f"the parts {', '.join(names)} cover rows 0-{expected} of {n_rows}; delete them and rerun")


def save_part(path: str | Path, **arrays: np.ndarray) -> None:
    """Write a shard's arrays as an uncompressed .npz, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
