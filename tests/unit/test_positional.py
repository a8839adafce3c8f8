"""Tests for dnalm.positional: attributions aligned on the site find planted positional elements and no decoy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.attribution import save_npz_atomic
from dnalm.positional import ELEMENT_COLUMNS, positional_elements, site_profile

LENGTH = 100


def planted(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows with CA at the site (offsets −1, 0; contribution 1 per base), AATAAA ending 18 bp upstream (0.5 per
    base), and a decoy GGGCCC at offsets +10 … +15 with no contribution; the site at a random index 40–60."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, LENGTH))
    weights = rng.normal(0, 0.01, size=(n, LENGTH))
    site = rng.integers(40, 61, size=n)
    for i, s in enumerate(site):
        for motif, end, weight in (("CA", s, 1.0), ("AATAAA", s - 18, 0.5), ("GGGCCC", s + 15, 0.0)):
            start = end - len(motif) + 1
            codes[i, start : end + 1] = ["ACGT".index(b) for b in motif]
            weights[i, start : end + 1] = weight
    onehot = np.eye(4, dtype=np.float32)[codes].transpose(0, 2, 1)
    return onehot, (onehot * weights[:, None, :]).astype(np.float32), site


def test_the_profile_is_the_mean_contribution_by_offset_from_the_site() -> None:
    _, attr, site = planted()
    profile, offsets = site_profile(attr, site)
    assert offsets[0] == -site.min() and offsets[-1] == LENGTH - 1 - site.max()
    zero = int(np.flatnonzero(offsets == 0)[0])
    assert profile[:, zero] == pytest.approx([1.0, 0, 0, 0], abs=1e-6)  # A at the site, in every window
    assert profile[:, zero - 1] == pytest.approx([0, 1.0, 0, 0], abs=1e-6)  # C before it
    assert profile[:, zero - 20].argmax() == 0 and profile[0, zero - 20] == pytest.approx(0.5, abs=1e-6)


def test_positional_elements_are_the_planted_ones_at_their_offsets_and_not_the_decoy(tmp_path: Path) -> None:
    onehot, attr, site = planted()
    npz = tmp_path / "attributions.npz"
    save_npz_atomic(npz, onehot=onehot, window_ids=np.arange(len(site)).astype(str), site_index=site,
                    count_attr=attr, count_hyp=attr)
    table = positional_elements(str(npz), str(tmp_path / "p.tsv"), str(tmp_path / "p.npz"), outputs=["count"],
                                max_k=6, top=5, n_shuffles=3)
    assert list(table.columns) == ELEMENT_COLUMNS
    first, second = table.iloc[0], table.iloc[1]  # strongest first: AATAAA's six bases × 0.5, then CA's two × 1
    assert (first["kmer"], first["start"], first["end"]) == ("AATAAA", -23, -18)
    assert first["mean_contribution"] == pytest.approx(3.0, abs=0.02) and first["enrichment"] > 50
    assert (second["kmer"], second["start"], second["end"]) == ("CA", -1, 0)
    assert second["mean_contribution"] == pytest.approx(2.0, abs=0.01) and second["windows"] == 1.0
    assert "GGGCCC" not in set(table["kmer"]) and not ((table["start"] >= 10) & (table["end"] <= 15)).any()
    assert pd.read_csv(tmp_path / "p.tsv", sep="\t").shape == table.shape
    with np.load(tmp_path / "p.npz") as saved:
        assert saved["count_profile"].shape == (4, len(saved["offsets"]))


def test_attributions_without_sites_are_refused(tmp_path: Path) -> None:
    onehot, attr, _ = planted(10)
    save_npz_atomic(tmp_path / "a.npz", onehot=onehot, window_ids=np.arange(10).astype(str), count_attr=attr)
    with pytest.raises(ValueError, match="no site_index"):
        positional_elements(str(tmp_path / "a.npz"), str(tmp_path / "p.tsv"), str(tmp_path / "p.npz"),
                            outputs=["count"])
