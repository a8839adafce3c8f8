"""Interpretation: attributions of test windows, TF-MoDISco patterns and their TOMTOM matches to known motifs."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from dnalm.io import write_tsv
from dnalm.motifs import ALPHABET, bh_qvalues, read_motif_files

log = logging.getLogger(__name__)

OUTPUTS = ("count", "profile")
MOTIF_COLUMNS = ["output", "pattern", "sign", "n_seqlets", "consensus", "best_match", "q_value", "p_value", "offset",
                 "strand", "significant", "second_match", "second_q_value", "found"]


# ------------------------------------------------------------------------------------------------------ attributions


def _crop(length: int, window: int | None) -> slice:
    """Central `window` bases of a window of `length` (all of it for None or a larger window)."""
    if window is None or window >= length:
        return slice(0, length)
    start = (length - window) // 2
    return slice(start, start + window)


@contextlib.contextmanager
def _empty_sign_gets_no_seqlets():
    """Let modisco-lite run when an output's smoothed contributions have no value of one sign.

    modisco-lite 3.0.0 fits an isotonic null model per sign; with no negative (or no positive) window sums the fit
    gets all-zero sample weights and sklearn raises "Sample weights must contain at least one non-zero number" (a
    model whose profile attributions are almost all positive, e.g.). Here that sign's threshold is ±inf instead: it
    gets no seqlets, which is what its data say, and the other sign is analysed as usual (modisco's later threshold
    refinement still applies).
    """
    from modiscolite import extract_seqlets

    original = extract_seqlets._isotonic_thresholds

    def thresholds(values, null_values, increasing, *args, **kwargs):
        if len(values) == 0:
            return np.inf if increasing else -np.inf
        return original(values, null_values, increasing, *args, **kwargs)

    extract_seqlets._isotonic_thresholds = thresholds
    try:
        yield
    finally:
        extract_seqlets._isotonic_thresholds = original


def run_modisco(npz: str, output: str, out_h5: str, *, max_seqlets: int, window: int | None = None,
                sliding_window_size: int = 10, flank_size: int = 3, trim_to_window_size: int = 12,
                initial_flank_to_add: int = 3, final_flank_to_add: int = 0, n_leiden_runs: int = 2,
                target_seqlet_fdr: float = 0.05, min_metacluster_size: int = 100,
                final_min_cluster_size: int = 20) -> dict:
    """TF-MoDISco (modisco-lite) on one output's hypothetical contributions; writes its HDF5 file atomically.

    A run that finds too few seqlets for a metacluster writes a file without that metacluster's patterns (modisco's
    own behaviour); the summary says how many patterns each sign has.
    """
    import modiscolite

    data = np.load(npz)
    key = f"{output}_hyp"
    if key not in data:
        raise ValueError(f"{npz} has no {output!r} attributions (it has {sorted(k for k in data if k.endswith('_hyp'))});"
                         " add the output to interpret.outputs")
    crop = _crop(data["onehot"].shape[2], window)
    onehot = np.ascontiguousarray(data["onehot"][:, :, crop].transpose(0, 2, 1), dtype=np.float32)
    hyp = np.ascontiguousarray(data[key][:, :, crop].transpose(0, 2, 1), dtype=np.float32)
    start = time.perf_counter()
    with _empty_sign_gets_no_seqlets():
        pos, neg = modiscolite.tfmodisco.TFMoDISco(
            one_hot=onehot, hypothetical_contribs=hyp, max_seqlets_per_metacluster=max_seqlets,
            sliding_window_size=sliding_window_size, flank_size=flank_size, trim_to_window_size=trim_to_window_size,
            initial_flank_to_add=initial_flank_to_add, final_flank_to_add=final_flank_to_add,
            target_seqlet_fdr=target_seqlet_fdr, n_leiden_runs=n_leiden_runs,
            min_metacluster_size=min_metacluster_size, final_min_cluster_size=final_min_cluster_size)
    seconds = time.perf_counter() - start
    out = Path(out_h5)
    tmp = out.with_name(f".{out.name}.tmp")
    modiscolite.io.save_hdf5(str(tmp), pos, neg, onehot.shape[1])
    with h5py.File(tmp, "a") as handle:
        handle.attrs["output"] = output
        handle.attrs["seconds"] = seconds
        handle.attrs["n_windows"] = onehot.shape[0]
    tmp.replace(out)
    summary = {"output": output, "seconds": seconds, "pos_patterns": len(pos or []), "neg_patterns": len(neg or [])}
    log.info("modisco %s: %s", output, summary)
    return summary


@dataclass
class Pattern:
    """One TF-MoDISco pattern: probability matrix, contribution weights (CWM) and hypothetical CWM, each (L, 4)."""

    output: str
    name: str
    sign: str
    n_seqlets: int
    ppm: np.ndarray
    cwm: np.ndarray
    hcwm: np.ndarray

    def trimmed(self, threshold: float = 0.3) -> slice:
        """Positions whose |CWM| reaches `threshold` × its maximum (modisco's report trims the same way)."""
        score = np.abs(self.cwm).sum(axis=1)
        keep = np.flatnonzero(score >= threshold * score.max()) if score.max() > 0 else np.arange(len(score))
        return slice(int(keep.min()), int(keep.max()) + 1)

    def consensus(self) -> str:
        """The trimmed PPM's most probable base at each position."""
        return "".join(ALPHABET[i] for i in self.ppm[self.trimmed()].argmax(axis=1))


def read_patterns(path: str, output: str | None = None) -> list[Pattern]:
    """Patterns of a modisco HDF5 file: positive ones first, each group in modisco's order (most seqlets first)."""
    patterns = []
    with h5py.File(path, "r") as handle:
        output = output or str(handle.attrs.get("output", ""))
        for group, sign in (("pos_patterns", "+"), ("neg_patterns", "-")):
            if group not in handle:
                continue
            names = sorted(handle[group], key=lambda n: int(n.split("_")[-1]))
            for name in names:
                p = handle[group][name]
                patterns.append(Pattern(output, f"{group}.{name}", sign, int(p["seqlets"]["n_seqlets"][0]),
                                        p["sequence"][:], p["contrib_scores"][:], p["hypothetical_contribs"][:]))
    return patterns


# ------------------------------------------------------------------------------------------------------------ TOMTOM


def correlation_columns(ppm: np.ndarray, spare_row: int) -> np.ndarray:
    """(4, L) probabilities -> (6, L) columns whose Euclidean distance is √(2 − 2r), r the columns' Pearson correlation.

    Each column is centred and scaled to unit length (rows 0–3), so the distance of two columns is √(2 − 2r). A column
    without variance (an N, or a pattern column of exactly equal frequencies) correlates with nothing: it becomes the
    unit vector of its own spare row (`spare_row` 4 for queries, 5 for targets), √2 from every other column, as r = 0.
    """
    centred = ppm - ppm.mean(axis=0, keepdims=True)
    norm = np.sqrt((centred ** 2).sum(axis=0))
    flat = norm < 1e-9
    columns = np.zeros((6, ppm.shape[1]))
    columns[:4, ~flat] = centred[:, ~flat] / norm[~flat]
    columns[spare_row, flat] = 1.0
    return np.ascontiguousarray(columns)


def tomtom_matches(patterns: list[Pattern], motifs: dict[str, np.ndarray], *,
                   reverse_complement: bool = True) -> tuple[np.ndarray, ...]:
    """TOMTOM (memelite) p-values, q-values, offsets and strands of every trimmed pattern against every motif.

    Columns are compared by Pearson correlation, the column score MEME's tomtom uses by default, not by memelite's
    Euclidean distance of the probabilities: under that distance a pattern column that carries no information (all
    four bases near their background) is closest to a motif's N columns, so A/T noise flanking one strong base
    "matched" gapped motifs such as Abf1's RTCRYNNNNNACG at q < 0.05. memelite is given `correlation_columns`, whose
    distances are √(2 − 2r). The reverse-complement strand is added here (the transform has no base rows to swap)
    and merged as memelite merges it: p = 1 − (1 − min p)², the strand and offset of the higher score.
    """
    from memelite import tomtom

    queries = [correlation_columns(p.ppm[p.trimmed()].T, 4) for p in patterns]
    ppms = [np.asarray(m, dtype=float) for m in motifs.values()]
    if reverse_complement:
        ppms += [m[::-1, ::-1] for m in ppms]
    targets = [correlation_columns(m, 5) for m in ppms]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="tomtom was given")  # small databases: docs/attributions.md
        p, scores, offsets, _, strands = tomtom(queries, targets, reverse_complement=False)
    if reverse_complement:
        n = len(motifs)
        low = np.minimum(p[:, :n], p[:, n:])
        minus = scores[:, n:] >= scores[:, :n]
        p, offsets, strands = low * (2 - low), np.where(minus, offsets[:, n:], offsets[:, :n]), minus
    return p, bh_qvalues(p), offsets, strands


def read_motif_table(path: str | Path) -> pd.DataFrame:
    """A `motifs.tsv` of `match_motifs`, its yes/no columns as booleans (a file without `found`, written before that
    column existed, gets found = significant)."""
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in MOTIF_COLUMNS if c not in table.columns and c != "found"]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, table.columns))}")
    table["significant"] = table["significant"].astype(str).str.lower() == "true"
    table["found"] = (table["found"].astype(str).str.lower() == "true") if "found" in table else table["significant"]
    return table


def match_motifs(modisco_files: dict[str, str], motif_files: list[str], out_tsv: str, *, q_threshold: float = 0.05,
                 reverse_complement: bool = True, min_seqlets: int = 0) -> pd.DataFrame:
    """Best TOMTOM match of every modisco pattern (all outputs) among the known motifs; writes `motifs.tsv`.

    Columns: output, pattern, sign (+ / −: positive or negative contributions), n_seqlets, consensus (of the
    trimmed pattern), best_match, q_value, p_value, offset, strand (+ or − of the known motif), significant
    (q < q_threshold), second_match, second_q_value, found (significant and supported by at least `min_seqlets`
    seqlets: a weak pattern can match a motif that is not there, so only these are reported as found).
    """
    motifs = read_motif_files(motif_files)
    patterns = [p for output, path in modisco_files.items() for p in read_patterns(path, output)]
    rows = []
    if patterns:
        p, q, offsets, strands = tomtom_matches(patterns, motifs, reverse_complement=reverse_complement)
        names = list(motifs)
        for i, pattern in enumerate(patterns):
            best, second = (list(np.argsort(p[i], kind="stable")) + [None])[:2]
            rows.append([pattern.output, pattern.name, pattern.sign, pattern.n_seqlets, pattern.consensus(),
                         names[best], q[i, best], p[i, best], int(offsets[i, best]),
                         "-" if strands[i, best] else "+", bool(q[i, best] < q_threshold),
                         names[second] if second is not None else "", q[i, second] if second is not None else np.nan,
                         bool(q[i, best] < q_threshold and pattern.n_seqlets >= min_seqlets)])
    table = pd.DataFrame(rows, columns=MOTIF_COLUMNS)
    write_tsv(table, out_tsv)
    return table
