"""Tests for dnalm.losses: multinomial profile NLL, count MSE and their weighted sum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multinomial

from dnalm.losses import count_mse, multinomial_nll, profile_count_loss

torch.use_deterministic_algorithms(True)


def test_multinomial_nll_is_the_true_negative_log_likelihood():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, dtype=torch.float64)
    counts = torch.randint(0, 6, (2, 3, 5)).double()
    nll = multinomial_nll(logits, counts)
    assert nll.shape == (2, 3)
    for b in range(2):
        for c in range(3):
            p = torch.softmax(logits[b, c], dim=-1).numpy()
            n = counts[b, c].numpy()
            expected = -multinomial.logpmf(n, n=int(n.sum()), p=p)
            assert nll[b, c].item() == pytest.approx(expected, rel=1e-10), (b, c)


def test_multinomial_nll_toy_values():
    logits = torch.tensor([[[0.2, -1.0, 0.5]]], dtype=torch.float64)
    counts = torch.tensor([[[2.0, 0.0, 3.0]]], dtype=torch.float64)
    p = torch.softmax(logits[0, 0], dim=-1).numpy()
    expected = -math.log(multinomial.pmf([2, 0, 3], n=5, p=p))
    assert multinomial_nll(logits, counts).item() == pytest.approx(expected, rel=1e-10)
    # softmax is shift-invariant, so the loss is too; all-zero counts have likelihood 1
    assert multinomial_nll(logits + 7.0, counts).item() == pytest.approx(expected, rel=1e-10)
    assert multinomial_nll(logits, torch.zeros_like(counts)).item() == pytest.approx(0.0, abs=1e-12)


def test_count_mse():
    counts = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]])  # totals 6 and 0
    log_counts = torch.tensor([[math.log(7.0) + 0.5, -2.0]])
    np.testing.assert_allclose(count_mse(log_counts, counts).numpy(), [[0.25, 4.0]], rtol=1e-6)


def test_profile_count_loss_sums_channels_averages_windows_and_weights_counts():
    logits = torch.tensor([[[0.0, 0.0], [1.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]], dtype=torch.float64)
    counts = torch.tensor([[[1.0, 1.0], [2.0, 0.0]], [[0.0, 3.0], [1.0, 0.0]]], dtype=torch.float64)
    log_counts = torch.tensor([[0.0, 1.0], [2.0, 0.5]], dtype=torch.float64)

    total, profile, count = profile_count_loss(logits, log_counts, counts, count_weight=0.3)

    nll = multinomial_nll(logits, counts)  # (2 windows, 2 channels)
    assert profile.item() == pytest.approx(((nll[0, 0] + nll[0, 1] + nll[1, 0] + nll[1, 1]) / 2).item())
    totals = np.array([[2.0, 2.0], [3.0, 1.0]])
    mse = (log_counts.numpy() - np.log1p(totals)) ** 2
    assert count.item() == pytest.approx(mse.mean())
    assert total.item() == pytest.approx(profile.item() + 0.3 * count.item())
    total0, _, _ = profile_count_loss(logits, log_counts, counts, count_weight=0.0)
    assert total0.item() == pytest.approx(profile.item())
    assert count.item() > 0
