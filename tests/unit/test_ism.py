"""Tests for dnalm.ism: agreement with tangermeme's saturation mutagenesis, a planted motif, correlations, figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tangermeme.saturation_mutagenesis import saturation_mutagenesis as tm_ism
from torch import nn

from dnalm.attribution import scalar_output
from dnalm.ism import centred, draw_ism, ism_correlation, saturation_mutagenesis
from dnalm.models import build_model

torch.use_deterministic_algorithms(True)

TRUNK = {"filters": 16, "layers": 3, "input_kernel": 7, "profile_kernel": 9}


def onehot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = F.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).float().transpose(1, 2).contiguous()
    x[0, :, 5] = 0  # an N
    return x


def model(head: str, n_outputs: int, seed: int = 0, **head_params) -> nn.Module:
    torch.manual_seed(seed)
    net = build_model("bpnet", TRUNK, head, n_outputs, head_params)
    with torch.no_grad():  # larger weights than the default init, so the activations switch between inputs
        for p in net.parameters():
            p.mul_(3)
    return net.eval()


@pytest.mark.parametrize("output", ["count", "profile"])
def test_profile_model_matches_tangermeme_predictions(output):
    """Tangermeme's mutant predictions, reduced with the window's own weights, give our effects (span 8..40)."""
    net, x = model("profile", 2), onehot(3, 48)
    ours = saturation_mutagenesis(net, x.numpy(), output=output, start=8, end=40, batch_size=37, device="cpu")
    y0, y_hat = tm_ism(net, x, start=8, end=40, raw_outputs=True, fast=False, device="cpu")
    f0, weights = scalar_output(tuple(y0), output)
    per_mutant = weights.repeat_interleave(4 * 32, 0)
    f_hat, _ = scalar_output(tuple(y.flatten(0, 2) for y in y_hat), output, per_mutant)
    expected = (f_hat.view(3, 4, 32) - f0[:, None, None]).numpy()
    assert ours.shape == (3, 4, 32)
    np.testing.assert_allclose(ours, expected, atol=2e-5, rtol=1e-4)
    observed = x[:, :, 8:40].numpy() == 1
    assert np.all(ours[observed] == 0) and np.abs(ours).max() > 1e-3


def test_centred_effects_match_tangermeme_attributions():
    """A pooled classifier's log-odds: tangermeme's hypothetical ISM = our centred effects."""
    net, x = model("pooled", 2), onehot(2, 40, seed=1)
    ours = saturation_mutagenesis(net, x.numpy(), output="class", batch_size=50, device="cpu")
    theirs = tm_ism(net, x, func=lambda z: z[:, 1:] - z[:, :1], hypothetical=True, fast=False, device="cpu").numpy()
    np.testing.assert_allclose(centred(ours), theirs, atol=2e-5, rtol=1e-4)


def test_tracks_effects_match_tangermeme_on_the_selection():
    """A binned model's `tracks` output over two of three tracks' bins 3-6: each window's softmax weights over the
    selection score its mutants (tangermeme with that fixed linear function of the outputs, window by window)."""
    net, x = model("binned", 3, bin_size=4), onehot(2, 40, seed=1)
    selection = {"channels": [0, 2], "bins": [3, 7]}
    ours = saturation_mutagenesis(net, x.numpy(), output="tracks", batch_size=50, device="cpu", tracks=selection)
    with torch.no_grad():
        weights = torch.softmax(net(x)[:, [0, 2], 3:7].flatten(1), -1)
    for i, w in enumerate(weights):
        def func(y, w=w):
            return (y[:, [0, 2], 3:7].flatten(1) * w).sum(-1, keepdim=True)

        theirs = tm_ism(net, x[i : i + 1], func=func, hypothetical=True, fast=False, device="cpu").numpy()
        np.testing.assert_allclose(centred(ours[i : i + 1]), theirs, atol=2e-5, rtol=1e-4)
    everything = saturation_mutagenesis(net, x.numpy(), output="tracks", device="cpu")  # all tracks and bins
    assert np.abs(everything - ours).max() > 1e-3
    with pytest.raises(ValueError, match="revcomp"):
        saturation_mutagenesis(net, x.numpy(), output="tracks", revcomp=True, tracks=selection)


class MotifCounter(nn.Module):
    """Two logits (0, number of exact GATA matches on the given strand): a hand-built classifier."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 1, 4)
        with torch.no_grad():
            self.conv.weight.zero_()
            for i, base in enumerate("GATA"):
                self.conv.weight[0, "ACGT".index(base), i] = 1.0
            self.conv.bias.fill_(-3.0)

    def forward(self, x):
        s = torch.relu(self.conv(x)).sum((1, 2))
        return torch.stack([torch.zeros_like(s), s], dim=1)


def encode(seq: str) -> np.ndarray:
    return np.eye(4, dtype=np.float32)[["ACGT".index(b) for b in seq]].T[None]


def test_planted_motif_known_answer():
    """Mutating a planted GATA costs its one match (−1 for each of 12 substitutions); nothing else changes."""
    x = encode("C" * 10 + "GATA" + "C" * 10)
    effects = saturation_mutagenesis(MotifCounter(), x, output="class", device="cpu")[0]
    expected = np.zeros((4, 24))
    expected[:, 10:14] = -1.0
    expected[x[0] == 1] = 0.0
    np.testing.assert_array_equal(effects, expected)


def test_both_strands_average_mirrored_effects():
    """The reverse strand (G×10 TATC G×10) gains a GATA when its G at 9 becomes A: the plus strand's C→T at 14."""
    x = encode("C" * 10 + "GATA" + "C" * 10)
    effects = saturation_mutagenesis(MotifCounter(), x, output="class", revcomp=True, device="cpu")[0]
    expected = np.zeros((4, 24))
    expected[:, 10:14] = -0.5
    expected[x[0] == 1] = 0.0
    expected["ACGT".index("T"), 14] = 0.5
    np.testing.assert_array_equal(effects, expected)


def test_correlation_definitions():
    """Effects that are attributions up to scale and a per-position shift correlate fully; their negation at −1."""
    rng = np.random.default_rng(0)
    x = onehot(4, 30, seed=2).numpy()
    effects = rng.normal(size=x.shape) * (1 - x)
    hyp = 3.0 * effects + rng.normal(size=(4, 1, 30))
    np.testing.assert_allclose(ism_correlation(effects, hyp), 1.0, atol=1e-12)
    np.testing.assert_allclose(ism_correlation(effects, -hyp), -1.0, atol=1e-12)
    np.testing.assert_allclose(ism_correlation(effects, 2 * centred(effects), "observed", onehot=x), 1.0, atol=1e-12)
    unrelated = ism_correlation(effects, rng.normal(size=x.shape))
    assert np.all(np.abs(unrelated) < 0.5)
    with pytest.raises(ValueError, match="one-hot"):
        ism_correlation(effects, hyp, "observed")


def test_draw_ism_writes_png(tmp_path):
    x = encode("C" * 10 + "GATA" + "C" * 10)
    effects = saturation_mutagenesis(MotifCounter(), x, output="class", device="cpu")[0]
    path = tmp_path / "ism.png"
    draw_ism(effects, x[0], path, title="chrI:100-124", first_position=100)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    with pytest.raises(ValueError, match=r"\(4, L\)"):
        draw_ism(effects, x[0, :, :10], path)
