"""Genome-wide prediction tracks: a model tiled over whole chromosomes or regions, and attributions, as bigWigs.

Tiling. Each region (a whole chromosome by default) is cut into consecutive tiles; every tile is predicted by one
window of the model's input length, and each base (or bin) of the region lies in exactly one tile, so it gets one
value. Profile and binned-track models: tiles of `length − overlap` bases, each window reaching `overlap / 2` bases
beyond its tile on both sides, so a tile is the central part of its window's output. Classifiers: tiles of
`scan_stride` bases, each window centred on its tile, the tile taking the window's class probability. Windows are
clamped into the chromosome: at its ends a tile is predicted from the first or last window that fits, as far from
its edge as the chromosome allows. A chromosome shorter than a window is padded with N on the right. Binned tracks
tile in whole bins from the chromosome's start (a region's ends are widened to bin boundaries), the last bin
clipped to the chromosome's size.

Values. Profile models: the expected signal per strand or channel, softmax(profile logits) × (e^(log count) − 1)
(`dnalm.tasks.profile.expected_signal`; the count head predicts log(1 + total)). Binned tracks: e^(log-rate) taken
back to the bigWig's scale by `dnalm.tasks.tracks.inverse_transform`, one value per bin. Classifiers: the chosen
class's softmax probability. A window holding only N produces no values (its tile is left empty in the bigWig),
so assembly gaps stay gaps; windows with some bases are predicted as they are.

Memory. Regions are read and predicted one batch of windows at a time; each batch's values are appended to one
spill file per output (float32, beside the first output), and each spill is then streamed to its bigWig by pybigtools
(`Spill`). Memory is that of one batch, whatever the genome's size; the spills take 4 bytes per value on disk.

Attributions (`write_attribution_bigwig`): per base, Σ over the four rows of attributions × one-hot; where windows
overlap, the mean of the windows covering the base.

Headers. Every bigWig names the genome's chromosomes with the genome's sizes, in FASTA order, except chromosomes
without a single value (outside every region, or all N): pybigtools leaves those out of the header.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnalm.attribution import _frozen
from dnalm.device import as_float, autocast, pick_device
from dnalm.io.fasta import open_fasta
from dnalm.store import ONEHOT, encode
from dnalm.tasks.profile import expected_signal
from dnalm.tasks.tracks import inverse_transform

#: Head kinds `predict_tracks` writes (`dnalm.models.heads.HEADS`).
HEAD_KINDS = ("profile", "binned", "pooled")
#: The code of N (`dnalm.store.CODES`).
N_CODE = 4


@dataclass(frozen=True)
class Tiling:
    """The tiles of one region and the window predicting each (0-based, half-open, on the chromosome).

    Attributes:
        tile_starts: First base of each tile.
        tile_ends: Base after each tile's last.
        window_starts: First base of each tile's window (its input reaches `length` bases from there).
    """

    tile_starts: np.ndarray
    tile_ends: np.ndarray
    window_starts: np.ndarray


def tile_region(start: int, end: int, padded: int, length: int, tile: int, offset: int) -> Tiling:
    """Cut [start, end) into tiles of `tile` bases (the last may be shorter) and place their windows.

    Args:
        start: First base of the region.
        end: Base after its last.
        padded: Length of the chromosome after padding (at least `length`): windows start in [0, padded − length].
        length: The model's input length.
        tile: Bases per tile.
        offset: Bases from a window's start to its tile's start, before the window is clamped into the chromosome.

    Returns:
        The tiling.
    """
    starts = np.arange(start, end, tile, dtype=np.int64)
    ends = np.minimum(starts + tile, end)
    return Tiling(starts, ends, np.clip(starts - offset, 0, padded - length))


def genome_sizes(fasta: str | Path) -> dict[str, int]:
    """The FASTA's sequence names and lengths, in file order (what a bigWig header of the genome holds)."""
    with open_fasta(fasta) as handle:
        return {name: record.rlen for name, record in handle.faidx.index.items()}


def read_regions(path: str | Path, sizes: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """Read the first three columns of a BED file, checked against the genome.

    Args:
        path: The BED file (`#`, `track` and `browser` lines are passed over).
        sizes: The genome's sequence lengths.

    Returns:
        (chrom, start, end) per line, in file order.
    """
    regions = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        fields = line.split("\t")
        try:
            chrom, start, end = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            raise ValueError(f"{path}, line {number}: expected chrom<TAB>start<TAB>end, got {line[:80]!r}") from None
        if chrom not in sizes:
            raise ValueError(
                f"{path}, line {number}: chromosome {chrom!r} is not in the genome "
                f"(its names: {', '.join(list(sizes)[:20])}); rename it or set chrom_aliases"
            )
        if not 0 <= start < end <= sizes[chrom]:
            raise ValueError(
                f"{path}, line {number}: {chrom}:{start}-{end} is empty or outside the chromosome "
                f"(length {sizes[chrom]})"
            )
        regions.append((chrom, start, end))
    return regions


def merged_regions(
    regions: Iterable[tuple[str, int, int]] | None, sizes: Mapping[str, int], resolution: int = 1
) -> list[tuple[str, int, int]]:
    """Regions in genome order (the FASTA's, then by start), widened to whole bins and overlaps merged.

    Args:
        regions: (chrom, start, end) tuples; None: every chromosome whole.
        sizes: The genome's sequence lengths, in FASTA order.
        resolution: Bin size: starts are rounded down and ends up to multiples of it.
    """
    if regions is None:
        return [(chrom, 0, size) for chrom, size in sizes.items()]
    order = {chrom: i for i, chrom in enumerate(sizes)}
    out: list[tuple[str, int, int]] = []
    for chrom, start, end in sorted(regions, key=lambda r: (order.get(r[0], -1), r[1])):
        if chrom not in order:
            raise ValueError(f"region {chrom}:{start}-{end}: chromosome {chrom!r} is not in the genome")
        if not 0 <= start < end <= sizes[chrom]:
            raise ValueError(f"region {chrom}:{start}-{end} is empty or outside the chromosome (length {sizes[chrom]})")
        start, end = start // resolution * resolution, -(-end // resolution) * resolution
        if out and out[-1][0] == chrom and start <= out[-1][2]:
            out[-1] = (chrom, out[-1][1], max(out[-1][2], end))
        else:
            out.append((chrom, start, end))
    return out


def read_codes(handle, chrom: str, start: int, end: int, size: int) -> np.ndarray:
    """Sequence codes of [start, end) of an open FASTA (`dnalm.store.encode`), N beyond the chromosome's ends."""
    codes = np.full(end - start, N_CODE, dtype=np.uint8)
    lo, hi = max(start, 0), min(end, size)
    if hi > lo:
        codes[lo - start : hi - start] = encode(handle[chrom][lo:hi])
    return codes


def head_layout(model: nn.Module) -> tuple[str, int, int]:
    """(head kind, outputs, bin size) of a dnalm model (`dnalm.models.SequenceModel.head_spec`)."""
    spec = getattr(model, "head_spec", None) or {}
    kind = spec.get("kind")
    if kind not in HEAD_KINDS:
        raise ValueError(
            f"genome tracks need a dnalm model with a {', '.join(HEAD_KINDS)} head (its head_spec); got head {kind!r}"
        )
    return kind, int(spec["n_outputs"]), int(spec.get("params", {}).get("bin_size", 1)) if kind == "binned" else 1


def track_values(outputs, kind: str, transform: str = "none", class_index: int = 1) -> np.ndarray:
    """The values a bigWig shows from a batch of model outputs (see the module docstring).

    Returns:
        (B, outputs, positions) for profile and binned models, (B, 1, 1) for classifiers.
    """
    if kind == "profile":
        return expected_signal(*outputs).numpy()
    if kind == "binned":
        return inverse_transform(outputs.exp().numpy(), transform).astype(np.float32)
    return torch.softmax(outputs, dim=-1)[:, class_index, None, None].numpy()


class Spill:
    """One output's values on disk in genome order, and the runs of steps they fill, until written as a bigWig.

    libBigWig (pyBigWig) keeps a file's zoom levels in memory until it closes the file: about 14 bytes per base of a
    base-resolution track, for every file open at once. Values are spilled here as float32 instead (4 bytes per value
    on disk), then streamed to pybigtools, whose writer keeps memory flat, zoom levels included.

    Args:
        path: The spill file to create (removed by `write_bigwig`).
    """

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 (open until write_bigwig, across many add calls)
        self.runs: list[tuple[str, int, int, int]] = []

    def add(self, chrom: str, start: int, end: int, values: np.ndarray, step: int) -> None:
        """Add values of consecutive steps from `start`, the last step cut at `end`."""
        np.asarray(values[: -(-(end - start) // step)], dtype=np.float32).tofile(self.file)
        last = self.runs[-1] if self.runs else None
        if last and last[0] == chrom and last[2] == start and last[3] == step and (last[2] - last[1]) % step == 0:
            self.runs[-1] = (chrom, last[1], end, step)
        else:
            self.runs.append((chrom, start, end, step))

    def entries(self, chunk: int = 1 << 16):
        """Yield (chrom, start, end, value) of every step, reading the spill file a chunk at a time."""
        return spill_entries(self.path, self.runs, chunk)

    def close(self) -> list[tuple[str, int, int, int]]:
        """Close the spill file (kept, as a shard's part) and return its runs."""
        self.file.close()
        return self.runs

    def write_bigwig(self, path: str | Path, sizes: Mapping[str, int]) -> None:
        """Write the values as a bigWig whose header is `sizes`, then remove the spill file."""
        import pybigtools

        self.file.close()
        try:
            pybigtools.open(str(path), "w").write(dict(sizes), self.entries())
        finally:
            self.path.unlink()


def spill_entries(path: str | Path, runs: Iterable[Sequence], chunk: int = 1 << 16):
    """Yield (chrom, start, end, value) of every step of a spill file's `runs` ((chrom, start, end, step) each),
    reading the file a chunk at a time."""
    with open(path, "rb") as handle:
        for chrom, start, end, step in runs:
            for first in range(start, end, chunk * step):
                starts = np.arange(first, min(first + chunk * step, end), step)
                values = np.fromfile(handle, dtype=np.float32, count=len(starts))
                ends = np.minimum(starts + step, end)
                yield from zip(itertools.repeat(chrom), starts.tolist(), ends.tolist(), values.tolist())


def _runs(rows: np.ndarray) -> list[np.ndarray]:
    """Split sorted row numbers into runs of consecutive ones."""
    return np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1) if len(rows) else []


def _forward_padded(model: nn.Module, onehot: np.ndarray, batch_size: int, device: torch.device):
    """The model's fp32 CPU outputs on windows (B, 4, L), run as a batch padded with N windows to a power of two
    (or to `batch_size`).

    Every new batch shape costs memory that is never given back (oneDNN's kernels and buffers for that shape: +200
    MiB after 24 batch sizes of a 300 bp BPNet), and each region ends in a batch of its own size; with padding at
    most log2(batch_size) + 1 shapes occur, at most twice the forward work of the region's last batch.
    """
    n = len(onehot)
    x = np.zeros((min(batch_size, 1 << (n - 1).bit_length()), *onehot.shape[1:]), dtype=np.float32)
    x[:n] = onehot
    with autocast(device):
        outputs = as_float(model(torch.from_numpy(x).to(device)))
    if isinstance(outputs, torch.Tensor):
        return outputs[:n].cpu()
    return tuple(o[:n].cpu() for o in outputs)


@torch.no_grad()
def _predict_region(
    model, handle, spills: list[Spill], chrom: str, size: int, tiling: Tiling, plan: dict, batches: range | None = None
) -> int:
    """Predict one region's tiles batch by batch (only `batches`, numbered from the region's first, when given) and
    add their values to the spills; returns the windows run."""
    length, step, device, batch_size = plan["length"], plan["resolution"], plan["device"], plan["batch_size"]
    batches = range(-(-len(tiling.tile_starts) // batch_size)) if batches is None else batches
    n_windows = 0
    for first in range(batches.start * batch_size, min(batches.stop * batch_size, len(tiling.tile_starts)), batch_size):
        rows = np.arange(first, min(first + batch_size, len(tiling.tile_starts)))
        starts = tiling.window_starts[rows]
        codes = read_codes(handle, chrom, int(starts[0]), int(starts[-1]) + length, size)
        windows = codes[(starts - starts[0])[:, None] + np.arange(length)]
        keep = (windows != N_CODE).any(axis=1)
        if not keep.any():
            continue
        outputs = _forward_padded(model, ONEHOT[windows[keep]].transpose(0, 2, 1), batch_size, device)
        values = track_values(outputs, plan["kind"], plan["transform"], plan["class_index"])
        n_windows += len(values)
        index = np.full(len(rows), -1)
        index[keep] = np.arange(len(values))
        for run in _runs(np.flatnonzero(keep)):
            lo, hi = int(tiling.tile_starts[rows[run[0]]]), min(int(tiling.tile_ends[rows[run[-1]]]), size)
            parts = [values[index[i], :, _positions(tiling, rows[i], step, plan["kind"])] for i in run]
            run_values = np.concatenate(parts, axis=-1)
            for channel, spill in enumerate(spills):
                spill.add(chrom, lo, hi, run_values[channel], plan["write_step"])
    return n_windows


def _positions(tiling: Tiling, row: int, step: int, kind: str) -> slice:
    """The output positions (bases or bins) of a window that fall in its tile."""
    if kind == "pooled":
        return slice(0, 1)
    first = (tiling.tile_starts[row] - tiling.window_starts[row]) // step
    return slice(int(first), int(first + -(-(tiling.tile_ends[row] - tiling.tile_starts[row]) // step)))


def predict_tracks(
    model: nn.Module,
    fasta: str | Path,
    paths: Sequence[str | Path],
    *,
    length: int,
    overlap: int | None = None,
    regions: Iterable[tuple[str, int, int]] | None = None,
    transform: str = "none",
    class_index: int = 1,
    scan_stride: int | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict:
    """Predict a model over a genome's chromosomes (or regions) and write one bigWig per output.

    Args:
        model: A dnalm model (`dnalm.predict.load_model`) with a profile, binned or pooled head; its mode, device and
            requires_grad flags are restored after.
        fasta: The genome (indexed, or indexable by pyfaidx); the bigWigs' header is its names and sizes.
        paths: One bigWig per output channel of profile and binned models (the model's channel order), one for a
            classifier (the probability of class `class_index`).
        length: The model's input length (the task's window length).
        overlap: Bases shared by consecutive windows (profile and binned models; even, a multiple of twice the bin
            size, less than `length`); None: a quarter of `length`, rounded down to that multiple.
        regions: (chrom, start, end) to predict (`read_regions`); None: every chromosome whole.
        transform: The task's target transform (`bins.transform`; binned models).
        class_index: The class whose probability a classifier's track shows.
        scan_stride: Bases between a classifier's windows (default `length // 4`, at least 1).
        batch_size: Windows per forward pass.
        device: Torch device (default CUDA when available, else CPU).

    Returns:
        A summary: bases covered, windows run, the tiling's settings.
    """
    plan = _plan(model, len(paths), length, overlap, transform, class_index, scan_stride, batch_size, device)
    sizes = genome_sizes(fasta)
    with tempfile.TemporaryDirectory(dir=Path(paths[0]).parent, prefix=".spill.") as spill_dir:
        spills = [Spill(Path(spill_dir) / f"{i}.f32") for i in range(len(paths))]
        summary = _predict_spills(model, fasta, sizes, spills, plan, regions)
        for spill, path in zip(spills, paths, strict=True):
            spill.write_bigwig(path, sizes)
    return summary


def predict_track_shard(
    model: nn.Module, fasta: str | Path, out_dir: str | Path, n_files: int, *, shard: int, shards: int, **options
) -> dict:
    """One shard of `predict_tracks`: its share of the batches of windows (`dnalm.shards`; the regions' batches
    numbered in genome order), their values left as spill files `<out_dir>/<i>.f32` (float32, one per output, in
    `predict_tracks`' path order) with `part.json` (the summary, the shard and the runs the values fill), for
    `merge_track_shards`.

    Args:
        model: As for `predict_tracks`.
        fasta: The genome.
        out_dir: The shard's directory (created).
        n_files: The outputs (bigWigs) of the model (`predict_tracks`' paths).
        shard: This shard (0-based).
        shards: The shards of the run.
        options: `predict_tracks`' keyword arguments (length, overlap, regions, …, device).

    Returns:
        The summary (windows: this shard's).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    regions = options.pop("regions", None)
    plan = _plan(model, n_files, **options)
    spills = [Spill(out / f"{i}.f32") for i in range(n_files)]
    summary = _predict_spills(model, fasta, genome_sizes(fasta), spills, plan, regions, (shard, shards))
    runs = [spill.close() for spill in spills]
    # every output fills the same runs
    (out / "part.json").write_text(json.dumps({"summary": summary, "shard": [shard, shards], "runs": runs[0]}))
    return summary


def merge_track_shards(
    parts: Sequence[str | Path], paths: Sequence[str | Path], sizes: Mapping[str, int], workers: int = 1
) -> dict:
    """Write the bigWigs of `predict_tracks` from its shards' spill files (`predict_track_shard`), in shard order.

    Args:
        parts: The shards' directories, in shard order.
        paths: One bigWig per output, as `predict_tracks` takes them.
        sizes: The genome's sequence names and lengths (`genome_sizes`), the bigWigs' header.
        workers: Processes writing bigWigs at the same time (each file is written by one, so the bytes do not change).

    Returns:
        `predict_tracks`' summary (windows summed over the shards).
    """
    infos = [json.loads((Path(p) / "part.json").read_text()) for p in parts]
    for i, (part, info) in enumerate(zip(parts, infos, strict=True)):
        settings = {k: v for k, v in info["summary"].items() if k != "windows"}
        first = {k: v for k, v in infos[0]["summary"].items() if k != "windows"}
        if info["shard"] != [i, len(parts)] or settings != first:
            raise ValueError(
                f"{part}: shard {info['shard']} with {settings}, expected shard {[i, len(parts)]} of "
                f"the same run as {parts[0]} ({first}); delete the parts and rerun"
            )
    spills = [
        [(str(Path(part) / f"{i}.f32"), info["runs"]) for part, info in zip(parts, infos, strict=True)]
        for i in range(len(paths))
    ]
    if workers > 1 and len(paths) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(paths)), mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(_write_spills, paths, spills, itertools.repeat(dict(sizes))))
    else:
        for path, spill in zip(paths, spills, strict=True):
            _write_spills(path, spill, dict(sizes))
    return {**infos[0]["summary"], "windows": sum(info["summary"]["windows"] for info in infos)}


def _write_spills(path: str | Path, spills: list[tuple[str, list]], sizes: dict[str, int]) -> None:
    """Write one bigWig from spill files and their runs, in order."""
    import pybigtools

    entries = itertools.chain.from_iterable(spill_entries(spill, runs) for spill, runs in spills)
    pybigtools.open(str(path), "w").write(sizes, entries)


def _plan(
    model,
    n_files: int,
    length: int,
    overlap: int | None = None,
    transform: str = "none",
    class_index: int = 1,
    scan_stride: int | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict:
    """The tiling and values of `predict_tracks` (its arguments), checked against the model's head."""
    kind, n_outputs, resolution = head_layout(model)
    expected = 1 if kind == "pooled" else n_outputs
    if n_files != expected:
        raise ValueError(f"a {kind} model with {n_outputs} outputs writes {expected} bigWig(s); got {n_files} paths")
    if length % resolution:
        raise ValueError(f"window length {length} is not a multiple of the model's bin size {resolution}")
    if kind == "pooled":
        tile = scan_stride or max(length // 4, 1)
        offset, overlap = length // 2 - tile // 2, None
    else:
        overlap = length // 4 // (2 * resolution) * (2 * resolution) if overlap is None else overlap
        if overlap < 0 or overlap >= length or overlap % (2 * resolution):
            raise ValueError(
                f"overlap {overlap} must be in [0, {length}) and a multiple of {2 * resolution} (twice the bin size)"
            )
        tile, offset = length - overlap, overlap // 2
    return {
        "length": length,
        "resolution": resolution,
        "write_step": tile if kind == "pooled" else resolution,
        "kind": kind,
        "transform": transform,
        "class_index": class_index,
        "device": pick_device(device),
        "batch_size": batch_size,
        "tile": tile,
        "offset": offset,
        "overlap": overlap,
    }


def _predict_spills(
    model,
    fasta,
    sizes: Mapping[str, int],
    spills: list[Spill],
    plan: dict,
    regions: Iterable[tuple[str, int, int]] | None,
    shard: tuple[int, int] | None = None,
) -> dict:
    """Predict the regions' tiles (only `shard`'s (shard, shards) batches, when given) into the spills; the summary."""
    from dnalm.shards import shard_bounds

    length, resolution, tile = plan["length"], plan["resolution"], plan["tile"]
    merged = merged_regions(regions, sizes, resolution)
    counts = [-(-len(range(start, end, tile)) // plan["batch_size"]) for _, start, end in merged]
    first, stop = shard_bounds(sum(counts), shard[1])[shard[0]] if shard else (0, sum(counts))
    covered = n_windows = done = 0
    with open_fasta(fasta) as handle, _frozen(model, plan["device"]):
        for (chrom, start, end), count in zip(merged, counts, strict=True):
            batches = range(max(first - done, 0), max(min(stop - done, count), 0))
            done += count
            covered += min(end, sizes[chrom]) - start
            if batches:
                padded = -(-max(sizes[chrom], length) // resolution) * resolution
                tiling = tile_region(start, end, padded, length, tile, plan["offset"])
                n_windows += _predict_region(model, handle, spills, chrom, sizes[chrom], tiling, plan, batches)
    return {
        "kind": plan["kind"],
        "bases": covered,
        "windows": n_windows,
        "length": length,
        "overlap": plan["overlap"],
        "tile": tile,
        "bin_size": resolution,
    }


def write_attribution_bigwig(
    path: str | Path,
    sizes: Mapping[str, int],
    chroms: Sequence[str],
    starts: Sequence[int],
    attributions: np.ndarray,
    onehot: np.ndarray,
    strands: Sequence[str] | None = None,
) -> int:
    """Write per-base attributions of windows at their genomic coordinates to a bigWig (mean where they overlap).

    Args:
        path: The bigWig to write; its header is `sizes`.
        sizes: The genome's sequence names and lengths, in FASTA order (`genome_sizes`).
        chroms: Each window's chromosome.
        starts: Each window's first base (0-based) on the chromosome.
        attributions: Attributions or hypothetical contributions (N, 4, L) (`dnalm.attribution.attribute`).
        onehot: The windows (N, 4, L), as the model saw them.
        strands: Each window's strand (`-`: the window is the reverse complement of the genome, so its values are
            reversed); None: all `+`.

    Returns:
        The number of bases written.
    """
    import pybigtools

    per_base = (np.asarray(attributions, dtype=np.float64) * onehot).sum(axis=1)
    length = per_base.shape[1]
    strands = ["+"] * len(per_base) if strands is None else list(strands)
    if not len(chroms) == len(starts) == len(strands) == len(per_base):
        raise ValueError(
            f"{len(per_base)} attribution windows but {len(chroms)} chromosomes, {len(starts)} starts "
            f"and {len(strands)} strands"
        )
    per_base[np.asarray(strands) == "-"] = per_base[np.asarray(strands) == "-"][:, ::-1]
    order = {chrom: i for i, chrom in enumerate(sizes)}
    for chrom, start in zip(chroms, starts, strict=True):
        if chrom not in order or not 0 <= start <= sizes[chrom] - length:
            raise ValueError(
                f"attribution window {chrom}:{start}-{start + length} is not within the genome "
                f"({chrom} has length {sizes.get(chrom, 'none: not in the genome')})"
            )
    rows = sorted(range(len(per_base)), key=lambda i: (order[chroms[i]], starts[i]))
    clusters = _overlapping(rows, chroms, starts, length)
    pybigtools.open(str(path), "w").write(dict(sizes), _mean_entries(clusters, per_base, chroms, starts))
    return sum(int(starts[c[-1]]) + length - int(starts[c[0]]) for c in clusters)


def _mean_entries(clusters: list[list[int]], per_base: np.ndarray, chroms: Sequence[str], starts: Sequence[int]):
    """Yield (chrom, start, end, value) of every base of the clusters: the mean over the windows covering it."""
    length = per_base.shape[1]
    for cluster in clusters:
        chrom, lo = chroms[cluster[0]], int(starts[cluster[0]])
        total, count = (
            np.zeros(int(starts[cluster[-1]]) + length - lo),
            np.zeros(int(starts[cluster[-1]]) + length - lo),
        )
        for i in cluster:
            total[starts[i] - lo : starts[i] - lo + length] += per_base[i]
            count[starts[i] - lo : starts[i] - lo + length] += 1
        positions = range(lo, lo + len(total))
        yield from zip(itertools.repeat(chrom), positions, range(lo + 1, lo + len(total) + 1), (total / count).tolist())


def _overlapping(rows: list[int], chroms: Sequence[str], starts: Sequence[int], length: int) -> list[list[int]]:
    """Group windows (rows in genome order: by chromosome, then start) into clusters of overlapping windows."""
    clusters: list[list[int]] = []
    for i in rows:
        last = clusters[-1][-1] if clusters else None
        if last is not None and chroms[last] == chroms[i] and starts[i] < starts[last] + length:
            clusters[-1].append(i)
        else:
            clusters.append([i])
    return clusters
