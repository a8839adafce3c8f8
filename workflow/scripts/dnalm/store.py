"""Memory-mapped window stores: sequence codes and targets of one split, read batch by batch."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pyBigWig
import pyfaidx

from dnalm.tracks import bin_signal, transform
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


def channel_layout(targets: list[dict]) -> tuple[list[str], list[int]]:
    """Channel names and the channel permutation that reverse-complementing a window applies.

    A stranded target gives channels `<name>/+` (the window's strand) and `<name>/-` (the other strand), swapped
    by reverse-complementing; an unstranded target gives one channel `<name>`.
    """
    names, perm = [], []
    for target in targets:
        if "track" in target:
            perm.append(len(names))
            names.append(target["name"])
        else:
            i = len(names)
            perm.extend([i + 1, i])
            names.extend([f"{target['name']}/+", f"{target['name']}/-"])
    return names, perm


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


class _SpeciesSources:
    """Genome and bigWig handles per species, opened on first use; unlisted species use the default ones."""

    def __init__(self, fasta: str, tracks: dict[str, str], fastas: dict[str, str],
                 species_tracks: dict[str, dict[str, str]]) -> None:
        self.default = (fasta, tracks)
        self.fastas, self.species_tracks = fastas, species_tracks
        self.open: dict[str, tuple[pyfaidx.Fasta, dict[str, pyBigWig.pyBigWig]]] = {}

    def get(self, species: str) -> tuple[pyfaidx.Fasta, dict[str, pyBigWig.pyBigWig]]:
        if species not in self.open:
            fasta = self.fastas.get(species, self.default[0])
            tracks = self.species_tracks.get(species, self.default[1])
            self.open[species] = (pyfaidx.Fasta(fasta, as_raw=True, sequence_always_upper=True),
                                  {name: pyBigWig.open(path) for name, path in tracks.items()})
        return self.open[species]

    def close(self) -> None:
        for genome, handles in self.open.values():
            genome.close()
            for handle in handles.values():
                handle.close()
        self.open.clear()


def write_store(windows_tsv: str, split: str, fasta: str, tracks: dict[str, str], targets: list[dict],
                out_seq: str, out_targets: str, out_meta: str, *, flank: int, bins: dict | None = None,
                species: str | None = None, fastas: dict[str, str] | None = None,
                species_tracks: dict[str, dict[str, str]] | None = None) -> int:
    """Write the sequence codes and targets of one split's kept windows into memory-mapped `.npy` files.

    Rows follow the window table's `row` column. Each row holds the window plus `flank` bases on each side,
    oriented along the window's strand. Memory use is that of one window, whatever the number of windows.

    Args:
        windows_tsv: Window table from `assign_splits`.
        split: train, val or test.
        fasta: Genome FASTA.
        tracks: Track name → bigWig path.
        targets: The task's targets (see `channel_layout`).
        out_seq: Output uint8 array (N, length + 2 flank).
        out_targets: Output float32 array (N, channels, length + 2 flank).
        out_meta: Output JSON: channels, rc permutation, flank, length, window ids.
        flank: Extra bases on each side.
        bins: Tracks tasks: `size`, `aggregate` (sum or mean) and `transform` (none, log1p, squash); targets are
            then binned over window plus flank and transformed, shape (N, channels, (length + 2 flank) / size).
            None (profile tasks): base-resolution targets.
        species: The task's species id, named in the chromosome-name error.
        fastas: Species → genome FASTA when the table holds windows of several species (extra train species);
            windows of a species not listed read `fasta`.
        species_tracks: Species → {track name: bigWig} likewise; species not listed read `tracks`.

    Returns:
        Number of windows written.
    """
    table = read_windows(windows_tsv)
    table = table[(table["split"] == split) & table["kept"]].sort_values("row")
    channels, perm = channel_layout(targets)
    length = int((table["end"] - table["start"]).iloc[0]) if len(table) else 0
    width = length + 2 * flank
    bin_size = check_bins(bins, length, flank)
    seq_tmp, tgt_tmp = _tmp(out_seq), _tmp(out_targets)
    seq = np.lib.format.open_memmap(seq_tmp, mode="w+", dtype=np.uint8, shape=(len(table), width))
    tgt = np.lib.format.open_memmap(tgt_tmp, mode="w+", dtype=np.float32,
                                    shape=(len(table), len(channels), width // bin_size))
    sources = _SpeciesSources(fasta, tracks, fastas or {}, species_tracks or {})
    try:
        if "species" not in table:
            table = table.assign(species="")
        for name_of_species, group in table.groupby("species", sort=False):
            genome, handles = sources.get(name_of_species)
            paths = sources.species_tracks.get(name_of_species, tracks)
            for name, handle in handles.items():
                check_track_chroms(paths[name], handle.chroms(), genome.keys(), name_of_species or species,
                                   set(group["chrom"]))
        rows = table[["species", "chrom", "start", "end", "strand"]].itertuples(index=False)
        for i, (name_of_species, chrom, start, end, strand) in enumerate(rows):
            genome, handles = sources.get(name_of_species)
            lo, hi = int(start) - flank, int(end) + flank
            codes = encode(genome[chrom][lo:hi])
            seq[i] = COMPLEMENT[codes[::-1]] if strand == "-" else codes
            values = window_targets(handles, targets, chrom, lo, hi, strand)
            tgt[i] = values if bins is None else binned_targets(values, bins, tracks, table["id"].iloc[i])
        seq.flush()
        tgt.flush()
    except BaseException:
        del seq, tgt
        Path(seq_tmp).unlink(missing_ok=True)
        Path(tgt_tmp).unlink(missing_ok=True)
        raise
    finally:
        sources.close()
    del seq, tgt
    meta = {"split": split, "n": len(table), "length": length, "flank": flank, "channels": channels,
            "rc_perm": perm, "ids": table["id"].tolist(), "task_type": "profile" if bins is None else "tracks",
            "bin_size": bin_size, "aggregate": (bins or {}).get("aggregate"), "transform": (bins or {}).get("transform")}
    Path(seq_tmp).replace(out_seq)
    Path(tgt_tmp).replace(out_targets)
    Path(out_meta).write_text(json.dumps(meta))
    log.info("%s: %d windows of %d bp (+%d flank), channels %s", split, len(table), length, flank, channels)
    return len(table)


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
        seq: Path of the sequence codes (`<split>.seq.npy`).
        targets: Path of the targets (`<split>.targets.npy`): (N, C, length + 2 flank), or binned
            (N, C, (length + 2 flank) / bin_size) for tracks tasks.
        meta: Path of the metadata JSON.
    """

    def __init__(self, seq: str, targets: str, meta: str):
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
        """One-hot sequences (B, 4, L) and targets (B, C, L) (or (B, C, L / bin_size)) of the windows at `index`.

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
        tgt = np.take_along_axis(tgt, bins[:, None, :], axis=2)
        if revcomp is not None and np.any(revcomp):
            flip = np.asarray(revcomp, dtype=bool)
            seq[flip] = COMPLEMENT[seq[flip][:, ::-1]]
            tgt[flip] = tgt[flip][:, self.rc_perm, ::-1]
        return ONEHOT[seq].transpose(0, 2, 1).copy(), tgt
