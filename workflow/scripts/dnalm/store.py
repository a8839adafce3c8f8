"""Memory-mapped window stores: sequence codes and targets of one split, read batch by batch."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyBigWig

from dnalm.io.fasta import FastaCache
from dnalm.tasks.base import channel_layout
from dnalm.tasks.tracks import bin_signal, transform
from dnalm.windows import check_track_chroms, read_windows

log = logging.getLogger(__name__)

#: Sequence codes: A, C, G, T, N (anything else).
CODES = np.full(256, 4, dtype=np.uint8)
for _i, _base in enumerate("ACGT"):
    CODES[ord(_base)] = CODES[ord(_base.lower())] = _i
#: Code of each base's complement (N stays N).
COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)
#: One-hot rows per code; N is all zeros.
ONEHOT = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])


def encode(seq: str) -> np.ndarray:
    """Encode a DNA string as uint8 codes (A0 C1 G2 T3, anything else 4)."""
    return CODES[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]


def _track_values(bw: pyBigWig.pyBigWig, chrom: str, start: int, end: int) -> np.ndarray:
    """Base-resolution values of a bigWig interval, 0 where the track has no data."""
    if chrom not in bw.chroms():
        return np.zeros(end - start, dtype=np.float32)
    values = np.asarray(bw.values(chrom, start, end, numpy=True), dtype=np.float32)
    return np.nan_to_num(values, nan=0.0)


def window_targets(tracks: dict[str, pyBigWig.pyBigWig], targets: list[dict], chrom: str, start: int, end: int,
                   strand: str) -> np.ndarray:
    """Targets of one window (channels × length), oriented along the window's strand."""
    rows = []
    for target in targets:
        if "track" in target:
            names = [target["track"]]
        else:
            names = [target["plus"], target["minus"]] if strand == "+" else [target["minus"], target["plus"]]
        rows.extend(_track_values(tracks[name], chrom, start, end) for name in names)
    out = np.stack(rows)
    return out[:, ::-1] if strand == "-" else out


class _Sources:
    """Genome and bigWig handles per species, opened on first use."""

    def __init__(self, genomes: dict[str, str], tracks: dict[str, dict[str, str]]) -> None:
        self.genomes, self.tracks = genomes, tracks
        self.fastas = FastaCache()
        self.bigwigs: dict[str, dict[str, pyBigWig.pyBigWig]] = {}

    def get(self, species: str) -> tuple:
        """The species' open genome (pyfaidx) and {track name: open bigWig}."""
        if species not in self.bigwigs:
            self.bigwigs[species] = {name: pyBigWig.open(path) for name, path in self.tracks[species].items()}
        return self.fastas.get(self.genomes[species]), self.bigwigs[species]

    def close(self) -> None:
        """Close every genome and bigWig opened so far."""
        self.fastas.close()
        for handles in self.bigwigs.values():
            for handle in handles.values():
                handle.close()
        self.bigwigs.clear()


def store_paths(prefix: str | Path) -> dict[str, str]:
    """The three files of a window store: `<prefix>.seq.npy`, `<prefix>.targets.npy`, `<prefix>.json`."""
    prefix = str(prefix).removesuffix(".json")
    return {"seq": f"{prefix}.seq.npy", "targets": f"{prefix}.targets.npy", "meta": f"{prefix}.json"}


def write_store(windows_tsv: str, split: str, prefix: str, *, task: dict, genomes: dict[str, str],
                tracks: dict[str, dict[str, str]], classes: list[str] | None = None) -> int:
    """Write the sequence codes and targets of one split's kept windows into memory-mapped `.npy` files.

    Rows follow the window table's `row` column. Each row holds the window plus `window.flank` bases on each side,
    oriented along the window's strand. Memory use is that of one window, whatever the number of windows. Tracks
    tasks bin (`bins.size`, `bins.aggregate`) and transform (`bins.transform`) the targets over window plus flank,
    shape (N, channels, (length + 2 flank) / size); profile tasks store base-resolution targets.

    Args:
        windows_tsv: Window table from `filter_homology`.
        split: train, val or test.
        prefix: Output prefix (`store_paths`): uint8 codes (N, length + 2 flank), float32 targets, and a JSON of
            channels, rc permutation, flank, length, window ids, task type and binning.
        task: The task's config block (`type`, `species`, `targets`, `window.flank`, `bins`).
        genomes: Species id → genome FASTA of every species whose windows the table holds.
        tracks: Species id → {track name: bigWig} likewise.
        classes: Class names of a classification store (None: `dnalm.tasks.classification.class_names`).

    Returns:
        Number of windows written.
    """
    from dnalm import tasks

    out = store_paths(prefix)
    flank, bins = task["window"]["flank"], tasks.get(task["type"]).store_bins(task)
    full = read_windows(windows_tsv)
    table = full[(full["split"] == split) & full["kept"]].sort_values("row")
    labels = label_codes(task, full, table, classes) if task["type"] == "classification" else None
    channels, perm = channel_layout(task["targets"]) if labels is None else (labels[0], list(range(len(labels[0]))))
    length = int((table["end"] - table["start"]).iloc[0]) if len(table) else 0
    width = length + 2 * flank
    bin_size = check_bins(bins, length, flank)
    sources = _Sources(genomes, tracks)
    try:
        _check_chroms(table, sources)
        shape = (len(table), len(channels), 1 if labels else width // bin_size)
        with store_arrays(prefix, (len(table), width), shape) as (seq, tgt):
            rows = table[["species", "chrom", "start", "end", "strand", "id"]].itertuples(index=False)
            for i, (species, chrom, start, end, strand, window) in enumerate(rows):
                genome, handles = sources.get(species)
                lo, hi = int(start) - flank, int(end) + flank
                codes = encode(genome[chrom][lo:hi])
                seq[i] = COMPLEMENT[codes[::-1]] if strand == "-" else codes
                if labels is not None:
                    tgt[i, labels[1][i], 0] = 1.0
                    continue
                values = window_targets(handles, task["targets"], chrom, lo, hi, strand)
                tgt[i] = values if bins is None else binned_targets(values, bins, tracks[species], window)
    finally:
        sources.close()
    meta = {"split": split, "n": len(table), "length": length, "flank": flank, "channels": channels,
            "rc_perm": perm, "ids": table["id"].tolist(), "site_index": site_index(table),
            "task_type": task["type"], "bin_size": bin_size, "labels": labels is not None,
            "aggregate": (bins or {}).get("aggregate"), "transform": (bins or {}).get("transform")}
    Path(out["meta"]).write_text(json.dumps(meta))
    log.info("%s: %d windows of %d bp (+%d flank), channels %s", split, len(table), length, flank, channels)
    return len(table)


def label_codes(task: dict, full, table, classes: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Class names of a classification task (given, or from every split's examples, so all stores agree) and the
    class index of each example of `table`."""
    from dnalm.tasks.classification import class_names

    classes = list(classes) if classes is not None else class_names(task, full["label"].astype(str))
    index = {c: i for i, c in enumerate(classes)}
    codes = table["label"].astype(str).map(index)
    if codes.isna().any():
        raise ValueError(f"labels {sorted(set(table.loc[codes.isna(), 'label'].astype(str)))} are not among the "
                         f"model's classes {classes}")
    return classes, codes.to_numpy(dtype=np.int64)


def site_index(table) -> list[int] | None:
    """Each window's site position in the stored (strand-oriented) window, or None for a table without sites."""
    if "site" not in table:
        return None
    oriented = np.where(table["strand"] == "-", table["end"] - 1 - table["site"], table["site"] - table["start"])
    return oriented.astype(int).tolist()


def _check_chroms(table, sources: _Sources) -> None:
    """Every bigWig's chromosome names are its genome's, for the chromosomes the table reads."""
    for species, group in table.groupby("species", sort=False):
        genome, handles = sources.get(species)
        for name, handle in handles.items():
            check_track_chroms(sources.tracks[species][name], handle.chroms(), genome.keys(), species,
                               set(group["chrom"]))


def check_bins(bins: dict | None, length: int, flank: int) -> int:
    """The bin size of a store (1 without bins); window length and flank must be multiples of it."""
    if bins is None:
        return 1
    size = int(bins["size"])
    if length % size or flank % size:
        raise ValueError(f"window.length ({length}) and window.flank ({flank}) must be multiples of "
                         f"bins.size ({size})")
    return size


def binned_targets(values: np.ndarray, bins: dict, tracks: dict[str, str], window: str) -> np.ndarray:
    """Bin and transform one window's base-resolution targets; a transform error names the window and tracks."""
    binned = bin_signal(values, int(bins["size"]), bins["aggregate"])
    try:
        return transform(binned, bins["transform"])
    except ValueError as err:
        raise ValueError(f"window {window} (tracks {', '.join(tracks.values())}): {err}") from err


@contextmanager
def store_arrays(prefix: str | Path, seq_shape: tuple, targets_shape: tuple,
                 targets_dtype=np.float32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The sequence codes (uint8) and targets arrays of a store being written, as memory maps of temporary files:
    when the block ends they replace the store's files (the caller writes the metadata after); when it raises, the
    temporary files are removed, so no partial store is left."""
    out = store_paths(prefix)
    seq_tmp, tgt_tmp = _tmp(out["seq"]), _tmp(out["targets"])
    seq = np.lib.format.open_memmap(seq_tmp, mode="w+", dtype=np.uint8, shape=seq_shape)
    tgt = np.lib.format.open_memmap(tgt_tmp, mode="w+", dtype=targets_dtype, shape=targets_shape)
    try:
        yield seq, tgt
        seq.flush()
        tgt.flush()
    except BaseException:
        del seq, tgt
        Path(seq_tmp).unlink(missing_ok=True)
        Path(tgt_tmp).unlink(missing_ok=True)
        raise
    del seq, tgt
    Path(seq_tmp).replace(out["seq"])
    Path(tgt_tmp).replace(out["targets"])


def _tmp(path: str) -> str:
    """Temporary name beside `path` (kept with the .npy suffix so numpy does not append one)."""
    p = Path(path)
    return str(p.with_name(f".tmp.{p.name}"))


class WindowStore:
    """Read access to one split's store: rows are read from disk on demand, nothing is loaded up front.

    `seq` and `targets` are read-only memory maps (for shapes and ad-hoc access); `batch` and `target_chunks` read
    the requested rows with `os.pread` into fresh arrays instead, so the pages of a store larger than memory never
    accumulate in the process: peak memory depends on the batch size, not on the number of windows.

    Args:
        prefix: The store's prefix `results/windows/<task>/<split>` (or its `.json`; see `store_paths`): sequence
            codes, targets (N, C, length + 2 flank), or binned (N, C, (length + 2 flank) / bin_size) for tracks
            tasks, and the metadata JSON.
    """

    def __init__(self, prefix: str | Path):
        paths = store_paths(prefix)
        seq, targets, meta = paths["seq"], paths["targets"], paths["meta"]
        self.prefix = str(prefix)
        self.seq = np.load(seq, mmap_mode="r")
        self.targets = np.load(targets, mmap_mode="r")
        self.meta = json.loads(Path(meta).read_text())
        self.flank = int(self.meta["flank"])
        self.length = int(self.meta["length"])
        self.channels = list(self.meta["channels"])
        self.rc_perm = np.asarray(self.meta["rc_perm"], dtype=np.int64)
        self.task_type = self.meta.get("task_type", "profile")
        self.bin_size = int(self.meta.get("bin_size") or 1)
        self.transform = self.meta.get("transform") or "none"
        self.labels = bool(self.meta.get("labels"))
        self._files = {"seq": (seq, self.seq), "targets": (targets, self.targets)}

    def __len__(self) -> int:
        return self.seq.shape[0]

    def read_rows(self, which: str, index: np.ndarray) -> np.ndarray:
        """Rows `index` of the `seq` or `targets` array, read with pread in file order."""
        path, array = self._files[which]
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), *array.shape[1:]), dtype=array.dtype)
        if not len(index):
            return out
        rows = out.reshape(len(index), -1).view(np.uint8)
        row_bytes = rows.shape[1]
        fd = os.open(path, os.O_RDONLY)
        try:
            for pos in np.argsort(index, kind="stable"):
                got = os.preadv(fd, [rows[pos]], array.offset + int(index[pos]) * row_bytes)
                if got != row_bytes:
                    raise ValueError(f"{path}: short read of row {index[pos]}; the store is truncated, rebuild it")
        finally:
            os.close(fd)
        return out

    def target_chunks(self, size: int = 4096):
        """Yield the targets in chunks of `size` windows (for statistics over a split without loading it)."""
        for start in range(0, len(self), size):
            yield self.read_rows("targets", np.arange(start, min(start + size, len(self))))

    def batch(self, index: np.ndarray, shifts: np.ndarray | None = None,
              revcomp: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One-hot sequences (B, 4, L) and targets (B, C, L) (or (B, C, L / bin_size), or one-hot classes (B, K) of a
        classification store) of the windows at `index`.

        Args:
            index: Rows to read.
            shifts: Per-row shift in [-flank, flank] (default 0: the stored window); a multiple of the bin size
                for binned stores.
            revcomp: Per-row flag to reverse-complement (targets reversed, strands swapped).

        Returns:
            float32 one-hot sequences and targets.
        """
        index = np.asarray(index)
        seq = self.read_rows("seq", index)
        tgt = self.read_rows("targets", index).astype(np.float32, copy=False)
        shifts = np.zeros(len(index), dtype=np.int64) if shifts is None else np.asarray(shifts)
        if np.any(np.abs(shifts) > self.flank):
            raise ValueError(f"shifts must be within ±{self.flank} (the store's flank)")
        if np.any(shifts % self.bin_size):
            raise ValueError(f"shifts must be multiples of the store's bin size ({self.bin_size})")
        starts = self.flank + shifts
        cols = starts[:, None] + np.arange(self.length)[None, :]
        bins = (starts // self.bin_size)[:, None] + np.arange(self.length // self.bin_size)[None, :]
        seq = np.take_along_axis(seq, cols, axis=1)
        tgt = tgt[:, :, 0] if self.labels else np.take_along_axis(tgt, bins[:, None, :], axis=2)
        if revcomp is not None and np.any(revcomp):
            flip = np.asarray(revcomp, dtype=bool)
            seq[flip] = COMPLEMENT[seq[flip][:, ::-1]]
            if not self.labels:  # a class does not change with the strand
                tgt[flip] = tgt[flip][:, self.rc_perm, ::-1]
        return ONEHOT[seq].transpose(0, 2, 1).copy(), tgt
