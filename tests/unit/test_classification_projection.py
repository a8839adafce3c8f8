"""Tests for dnalm.classification.projection: 3-mer profiles and seeded 2-D PaCMAP projections."""

from __future__ import annotations

import numpy as np
import pytest

from dnalm.classification.projection import PROJECTION_COLUMNS, kmer_profiles, project_2d, projection_table


def onehot(seqs: list[str]) -> np.ndarray:
    """(N, 4, L) one-hot of equal-length sequences (N: all zero)."""
    out = np.zeros((len(seqs), 4, len(seqs[0])), dtype=np.float32)
    for i, seq in enumerate(seqs):
        for j, base in enumerate(seq):
            if base in "ACGT":
                out[i, "ACGT".index(base), j] = 1
    return out


def clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AT-rich and GC-rich sequences, and two far-apart Gaussian clusters of features, with their cluster."""
    rng = np.random.default_rng(seed)
    group = np.repeat([0, 1], n)
    seqs = ["".join(rng.choice(list("AATTACGT" if g == 0 else "GGCCGCAT"), 60)) for g in group]
    features = rng.normal(size=(2 * n, 32)) + 8.0 * group[:, None]
    return onehot(seqs), features, group


def separated(xy: np.ndarray, group: np.ndarray) -> bool:
    """Every point's nearest other point is of its group, and the groups' centres lie further apart than twice the
    mean distance of a point from its centre."""
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    centres = np.array([xy[group == g].mean(axis=0) for g in (0, 1)])
    spread = np.mean([np.linalg.norm(xy[group == g] - centres[g], axis=1).mean() for g in (0, 1)])
    return bool((group[d.argmin(axis=1)] == group).all() and np.linalg.norm(centres[0] - centres[1]) > 2 * spread)


def test_kmer_profiles_by_hand() -> None:
    profiles = kmer_profiles(onehot(["AACGT", "ACNGT", "NNNNN"]))
    assert profiles.shape == (3, 64)
    first = {i: v for i, v in enumerate(profiles[0]) if v}
    # AAC = 0·16 + 0·4 + 1, ACG = 0 + 4 + 2, CGT = 16 + 8 + 3, a third each
    assert first == pytest.approx({1: 1 / 3, 6: 1 / 3, 27: 1 / 3})
    assert profiles[1].sum() == 0 and profiles[2].sum() == 0  # every 3-mer of ACNGT spans the N
    np.testing.assert_allclose(kmer_profiles(onehot(["ACGTAC"]), k=1)[0], [2 / 6, 2 / 6, 1 / 6, 1 / 6])


def test_two_separated_clusters_stay_separated_in_two_dimensions() -> None:
    seqs, features, group = clusters(40, seed=0)
    table = projection_table([f"s{i}" for i in range(80)], np.where(group, "gc", "at"), seqs, features, seed=1)
    assert list(table.columns) == list(PROJECTION_COLUMNS) and set(table["method"]) == {"PaCMAP"}
    assert separated(table[["input_x", "input_y"]].to_numpy(), group)
    assert separated(table[["model_x", "model_y"]].to_numpy(), group)
    # a control: the same points with shuffled groups are not "separated"
    assert not separated(table[["model_x", "model_y"]].to_numpy(), np.random.default_rng(2).permutation(group))


def test_projection_is_seeded() -> None:
    _, features, _ = clusters(20, seed=3)
    np.testing.assert_array_equal(project_2d(features, seed=4), project_2d(features, seed=4))


def test_tiny_and_bad_inputs() -> None:
    assert project_2d(np.ones((2, 5))).tolist() == [[0, 0], [0, 0]]
    assert np.isfinite(project_2d(np.random.default_rng(5).normal(size=(5, 3)))).all()
    with pytest.raises(ValueError, match="non-finite"):
        project_2d(np.array([[np.nan, 1.0]] * 4))
    with pytest.raises(ValueError, match=r"shape \(N, 4, L\)"):
        kmer_profiles(np.zeros((2, 5, 10)))
    with pytest.raises(ValueError, match="3 ids, 2 labels"):
        projection_table(["a", "b", "c"], ["x", "y"], np.zeros((3, 4, 5)), np.zeros((3, 2)))
