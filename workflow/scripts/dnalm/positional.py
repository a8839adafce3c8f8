"""Site-aligned attributions: contributions by offset from the site, and the strongest positional elements.

TF-MoDISco clusters attributions into patterns wherever they sit, and TOMTOM can only name a pattern that a motif
database holds: a 2-bp element at the cleavage site (study 1's CA) never reaches significance, and where an element
sits relative to the site is lost. For site-centred tasks this aligns each attributed test window on its site (its
store's `site_index`) and reports:

- the **profile**: mean contribution per base and offset from the site over the windows (offset 0 is the site; the
  window is oriented along the site's strand, so negative offsets are upstream), per output;
- the **positional elements**: for every k-mer (k = 2 … `max_k`) at every offset, its mean contribution per window
  (the summed contribution of its bases where it occurs, divided by all windows, so an element counts by how strong
  and how frequent it is there), the fraction of windows holding it there, and its enrichment there against
  dinucleotide-shuffled copies of the windows (observed / expected occurrences, +1 each). The strongest are listed
  greedily, an element skipped when its offsets overlap a stronger one's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.io import write_tsv

log = logging.getLogger(__name__)

ELEMENT_COLUMNS = ["output", "kmer", "start", "end", "mean_contribution", "windows", "enrichment"]
ALPHABET = "ACGT"


def aligned_range(site_index: np.ndarray, length: int) -> tuple[int, int]:
    """The offsets from the site that every window covers: [lo, hi], both inclusive."""
    return int(-np.min(site_index)), int(length - 1 - np.max(site_index))


def align(values: np.ndarray, site_index: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Columns lo … hi (offsets from each window's site) of per-position values (N, C, L) → (N, C, hi − lo + 1)."""
    cols = site_index[:, None] + np.arange(lo, hi + 1)[None, :]
    return np.take_along_axis(values, cols[:, None, :], axis=2)


def site_profile(attr: np.ndarray, site_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean contribution per base (4, offsets) over the windows, aligned on their sites, and the offsets."""
    lo, hi = aligned_range(site_index, attr.shape[2])
    return align(attr, site_index, lo, hi).mean(axis=0), np.arange(lo, hi + 1)


def _codes(onehot: np.ndarray) -> np.ndarray:
    """Base codes (N, L): A0 C1 G2 T3, 4 where the column is not one-hot (N)."""
    return np.where(onehot.sum(axis=1) == 1, onehot.argmax(axis=1), 4)


def _kmer_table(codes: np.ndarray, weights: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per (k-mer id, start position): occurrences, and the summed weights of its bases (codes and weights (N, P))."""
    n, p = codes.shape
    starts = p - k + 1
    ids = np.zeros((n, starts), dtype=np.int64)
    valid = np.ones((n, starts), dtype=bool)
    for j in range(k):
        window = codes[:, j : j + starts]
        ids = ids * 4 + np.minimum(window, 3)
        valid &= window < 4
    cells = (ids * starts + np.arange(starts)[None, :])[valid]
    counts = np.bincount(cells, minlength=4**k * starts).reshape(4**k, starts)
    if weights is None:
        return counts, np.zeros_like(counts, dtype=np.float64)
    summed = sum(weights[:, j : j + starts] for j in range(k))[valid]
    sums = np.bincount(cells, weights=summed, minlength=4**k * starts).reshape(4**k, starts)
    return counts, sums


def _kmer(kmer_id: int, k: int) -> str:
    return "".join(ALPHABET[(kmer_id >> (2 * (k - 1 - j))) & 3] for j in range(k))


def candidate_elements(onehot: np.ndarray, contribution: np.ndarray, shuffled: np.ndarray, site_index: np.ndarray,
                       max_k: int) -> pd.DataFrame:
    """Every k-mer × offset with a positive mean contribution per window, k = 2 … max_k (see the module docstring).

    Args:
        onehot: Windows (N, 4, L).
        contribution: Per-position contribution of the observed base (N, L).
        shuffled: Dinucleotide-shuffled copies of the windows (N·S, 4, L), for the expected occurrences.
        site_index: Site position in each window (N,).
        max_k: Longest k-mer.
    """
    lo, hi = aligned_range(site_index, onehot.shape[2])
    codes = align(_codes(onehot)[:, None], site_index, lo, hi)[:, 0]
    weights = align(contribution[:, None], site_index, lo, hi)[:, 0]
    copies = len(shuffled) // len(onehot)
    shuffled_codes = align(_codes(shuffled)[:, None], np.repeat(site_index, copies), lo, hi)[:, 0]
    frames = []
    for k in range(2, max_k + 1):
        counts, sums = _kmer_table(codes, weights, k)
        expected = _kmer_table(shuffled_codes, None, k)[0] / copies
        kmer_ids, starts = np.nonzero(sums > 0)
        frames.append(pd.DataFrame({
            "kmer": [_kmer(i, k) for i in kmer_ids], "start": starts + lo, "end": starts + lo + k - 1,
            "mean_contribution": sums[kmer_ids, starts] / len(onehot), "windows": counts[kmer_ids, starts] / len(onehot),
            "enrichment": (counts[kmer_ids, starts] + 1) / (expected[kmer_ids, starts] + 1)}))
    return pd.concat(frames, ignore_index=True)


def strongest(candidates: pd.DataFrame, top: int) -> pd.DataFrame:
    """The `top` strongest elements, each skipped when its offsets overlap a stronger element's."""
    order = candidates.sort_values(["mean_contribution", "end"], ascending=[False, True], kind="stable")
    kept, taken = [], []
    for row in order.itertuples(index=False):
        if any(row.start <= end and start <= row.end for start, end in taken):
            continue
        kept.append(row)
        taken.append((row.start, row.end))
        if len(kept) == top:
            break
    return pd.DataFrame(kept, columns=candidates.columns)


def positional_elements(npz: str, out_tsv: str, out_profile: str, *, outputs: list[str], max_k: int = 6,
                        top: int = 10, n_shuffles: int = 5, seed: int = 0) -> pd.DataFrame:
    """Site profiles and the strongest positional elements of every attributed output of one model.

    Args:
        npz: attributions.npz of `dnalm.attribution.attribute_windows` (with `site_index`).
        out_tsv: Table of the strongest elements per output (`ELEMENT_COLUMNS`).
        out_profile: npz of `offsets` and `<output>_profile` (4, offsets), the mean contribution per base.
        outputs: Outputs to summarise.
        max_k: Longest k-mer.
        top: Elements listed per output.
        n_shuffles: Shuffled copies per window for the expected occurrences.
        seed: Seed of the shuffles.

    Returns:
        The table written.
    """
    from dnalm.attribution import make_references, save_npz_atomic

    data = np.load(npz)
    if "site_index" not in data.files:
        raise ValueError(f"{npz} has no site_index: positional elements need a site-centred task's attributions")
    onehot, site_index = data["onehot"], data["site_index"].astype(np.int64)
    shuffled = make_references(onehot, n_shuffles, seed).numpy().reshape(-1, *onehot.shape[1:])
    tables, profiles = [], {}
    for output in outputs:
        attr = data[f"{output}_attr"]
        profiles[f"{output}_profile"], offsets = site_profile(attr, site_index)
        found = strongest(candidate_elements(onehot, attr.sum(axis=1), shuffled, site_index, max_k), top)
        tables.append(found.assign(output=output))
        log.info("%s: strongest positional elements %s", output,
                 ", ".join(f"{r.kmer}@{r.start}..{r.end}" for r in found.itertuples()))
    table = pd.concat(tables, ignore_index=True)[ELEMENT_COLUMNS]
    save_npz_atomic(Path(out_profile), offsets=offsets, **profiles)
    write_tsv(table, out_tsv)
    return table
