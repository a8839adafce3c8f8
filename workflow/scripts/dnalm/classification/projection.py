"""Seeded 2-D PaCMAP projections of sequences' 3-mer frequency profiles and of model features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: The projection's name, as the report's captions and `projection.tsv`'s `method` column give it.
METHOD = "PaCMAP"
#: PaCMAP's neighbourhood size (its default), lowered for small samples.
N_NEIGHBORS = 10
#: Columns of `projection.tsv`.
PROJECTION_COLUMNS = ("id", "label", "input_x", "input_y", "model_x", "model_y", "method")


def kmer_profiles(onehot: np.ndarray, k: int = 3) -> np.ndarray:
    """k-mer frequency profiles of one-hot sequences (forward strand).

    Args:
        onehot: (N, 4, L) one-hot DNA (channels A, C, G, T); an all-zero column (N, padding) ends no k-mer.
        k: k-mer length.

    Returns:
        (N, 4**k) frequencies of the k-mers in lexicographic order (AAA, AAC, ...), each row summing to 1 (0 for a
        sequence without a complete k-mer).
    """
    x = np.asarray(onehot)
    if x.ndim != 3 or x.shape[1] != 4:
        raise ValueError(f"one-hot sequences must have shape (N, 4, L), got {x.shape}")
    n, _, length = x.shape
    width = max(length - k + 1, 0)
    base, known = x.argmax(axis=1), x.sum(axis=1) > 0
    codes = np.zeros((n, width), dtype=np.int64)
    valid = np.ones((n, width), dtype=bool)
    for i in range(k):
        codes = codes * 4 + base[:, i : i + width]
        valid &= known[:, i : i + width]
    rows = np.broadcast_to(np.arange(n)[:, None], codes.shape)
    counts = np.bincount((rows * 4**k + codes)[valid], minlength=n * 4**k).reshape(n, 4**k).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def project_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D PaCMAP coordinates of feature vectors.

    PaCMAP (Wang et al. 2021) keeps local neighbourhoods and the global layout of clusters; seeded and initialised
    from PCA, a projection repeats exactly on the same machine.

    Args:
        features: (N, D) vectors (3-mer profiles, pooled model features, ...).
        seed: PaCMAP's random state.

    Returns:
        (N, 2) coordinates; for fewer than 3 examples there is nothing to lay out and they are all 0.
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must have shape (N, D), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"features: {int((~np.isfinite(x)).sum())} non-finite value(s)")
    if len(x) < 3:
        return np.zeros((len(x), 2))
    import pacmap

    reducer = pacmap.PaCMAP(n_components=2, n_neighbors=min(N_NEIGHBORS, len(x) - 2), random_state=seed)
    return np.asarray(reducer.fit_transform(x, init="pca"), dtype=np.float64)


def projection_table(ids: Sequence[str], labels: Sequence[str], onehot: np.ndarray, features: np.ndarray,
                     seed: int = 0) -> pd.DataFrame:
    """The rows of a run's `projection.tsv`: each example's input and model projections.

    Args:
        ids: Example ids.
        labels: Class name of each example.
        onehot: (N, 4, L) one-hot sequences: `input_x`, `input_y` project their 3-mer profiles.
        features: (N, D) the model's pooled trunk features: `model_x`, `model_y` project them.
        seed: PaCMAP's random state.

    Returns:
        Columns `PROJECTION_COLUMNS` (`method` is `METHOD`).
    """
    n = len(ids)
    if not len(labels) == len(onehot) == len(features) == n:
        raise ValueError(f"projection: {n} ids, {len(labels)} labels, {len(onehot)} sequences and {len(features)} "
                         "feature vectors; expected one of each per example")
    inputs, model = project_2d(kmer_profiles(onehot), seed), project_2d(features, seed)
    return pd.DataFrame({"id": list(ids), "label": list(labels), "input_x": inputs[:, 0], "input_y": inputs[:, 1],
                         "model_x": model[:, 0], "model_y": model[:, 1], "method": METHOD})
