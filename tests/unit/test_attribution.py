"""Tests for dnalm.attribution: shuffles, DeepLIFT/SHAP against tangermeme and captum, completeness, LM attributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dnalm import tokenize
from dnalm.attribution import (
    attribute,
    completeness_gap,
    dinucleotide_shuffle,
    make_references,
    multilinear_kmer_embeddings,
    resolve_method,
    scalar_output,
)
from dnalm.models import SequenceModel, bpnet, build_model
from dnalm.models.embeddings import kmer_embeddings

torch.use_deterministic_algorithms(True)

LM_ARCH = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}


def onehot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).float().transpose(1, 2).contiguous()


def small_bpnet(seed: int = 0) -> SequenceModel:
    torch.manual_seed(seed)
    model = bpnet(2, filters=16, layers=4, input_kernel=7, profile_kernel=9)
    with torch.no_grad():  # larger weights than the default init, so the activations switch between inputs
        for p in model.parameters():
            p.mul_(3)
    return model


class CountOutput(nn.Module):
    """(B, 1) log counts weighted by fixed channel weights (one window's: `attribute`'s count scalar for that window
    and its references), the shape tangermeme and captum attribute; plain sum without weights."""

    def __init__(self, model: nn.Module, weights: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.weights = weights

    def forward(self, x):
        counts = self.model(x)[1]
        return (counts if self.weights is None else counts * self.weights).sum(-1, keepdim=True)


def dinucleotide_counts(x: torch.Tensor) -> np.ndarray:
    """5 × 5 counts of adjacent letter pairs of a (4, L) one-hot sequence, N (all-zero column) as letter 4."""
    letters = torch.where(x.sum(0) > 0, x.argmax(0), 4).numpy()
    counts = np.zeros((5, 5), dtype=int)
    np.add.at(counts, (letters[:-1], letters[1:]), 1)
    return counts


# ----------------------------------------------------------------------------------------------------- shuffles
def test_shuffles_preserve_dinucleotide_counts_and_ns():
    x = onehot(1, 120, seed=3)[0]
    x[:, 40:43] = 0  # a run of Ns
    x[:, 90] = 0
    shuffles = dinucleotide_shuffle(x.numpy(), 8, seed=1)
    assert shuffles.shape == (8, 4, 120) and shuffles.dtype == torch.float32
    assert set(shuffles.sum(1).unique().tolist()) <= {0.0, 1.0}
    for s in shuffles:
        assert (dinucleotide_counts(s) == dinucleotide_counts(x)).all()
        assert (s.sum(1) == x.sum(1)).all()
        assert torch.equal(s[:, 0], x[:, 0]) and torch.equal(s[:, -1], x[:, -1])
    assert len({tuple(s.argmax(0).tolist()) for s in shuffles}) == 8  # different shuffles
    assert not torch.equal(shuffles[0], x)
    assert torch.equal(dinucleotide_shuffle(x, 8, seed=1), shuffles)
    assert not torch.equal(dinucleotide_shuffle(x, 8, seed=2), shuffles)


def test_references_are_per_window_seeded():
    x = onehot(3, 50)
    refs = make_references(x, 4, seed=10)
    assert refs.shape == (3, 4, 4, 50)
    assert torch.equal(refs[2], dinucleotide_shuffle(x[2], 4, seed=12))


# -------------------------------------------------------------------------------------------------------- DeepLIFT
def test_deeplift_matches_tangermeme_and_captum():
    from captum.attr import DeepLiftShap
    from tangermeme.deep_lift_shap import deep_lift_shap

    model, x = small_bpnet(), onehot(5, 150, seed=1)
    refs = make_references(x, 6, seed=0)
    attr, hyp = attribute(model, x.numpy(), n_shuffles=6, seed=0, device="cpu")
    with torch.no_grad():  # each window's channel weights: the softmax of its own log counts
        weights = torch.softmax(model(x)[1], dim=-1)
    assert weights.shape == (5, 2) and (weights.max(1).values < 0.99).all()  # both strands count
    theirs, theirs_hyp, captum = [], [], []
    for i in range(len(x)):
        output = CountOutput(model, weights[i])
        theirs.append(deep_lift_shap(output, x[i : i + 1], references=refs[i : i + 1], device="cpu", batch_size=12))
        theirs_hyp.append(deep_lift_shap(output, x[i : i + 1], references=refs[i : i + 1], device="cpu",
                                         hypothetical=True))
        captum.append(DeepLiftShap(output).attribute(x[i : i + 1], baselines=refs[i], target=0).detach())
    scale = np.abs(attr).max()
    np.testing.assert_allclose(attr, torch.cat(theirs).numpy(), atol=1e-4 * scale, rtol=0)
    np.testing.assert_allclose(hyp, torch.cat(theirs_hyp).numpy(), atol=1e-4 * scale, rtol=0)
    np.testing.assert_allclose(attr.sum(1), torch.cat(captum).numpy().sum(1), atol=1e-4 * scale, rtol=0)
    # not the plain gradient × input: the rule matters on this model
    xg = x.clone().requires_grad_()
    grad = torch.autograd.grad(CountOutput(model)(xg).sum(), xg)[0]
    assert np.abs((grad * x).numpy() - attr).max() > 0.05 * scale


def test_count_scalar_weights_channels_by_their_share_of_the_reads():
    logits = torch.zeros(3, 2, 10)
    counts = torch.tensor([[4.0, 0.0], [0.0, 4.0], [2.0, 2.0]])  # a + strand site, a − strand site, both
    f, weights = scalar_output((logits, counts), "count")
    share = float(np.exp(4) / (np.exp(4) + 1))
    assert torch.allclose(weights, torch.tensor([[share, 1 - share], [1 - share, share], [0.5, 0.5]]))
    assert torch.allclose(f, torch.tensor([4 * share, 4 * share, 2.0]))
    # the window's weights score its references: a reference that moves reads to the other strand scores lower
    g, _ = scalar_output((logits[:1], torch.tensor([[0.0, 4.0]])), "count", weights[:1])
    assert g.item() == pytest.approx(4 * (1 - share))
    single, w1 = scalar_output((logits[:, :1], counts[:, :1]), "count")  # one channel: the plain log count
    assert torch.equal(single, counts[:, 0]) and torch.equal(w1, torch.ones(3, 1))


def explained(model, x: torch.Tensor, refs: torch.Tensor, output: str) -> np.ndarray:
    """f(x) − mean_k f(r_k) per window, written out here from the model's raw outputs (not with dnalm's
    `scalar_output`): count, Σ_c softmax_c(n_x) n[c]; profile, Σ_c,l softmax_l(z̄_x)[c, l] z̄[c, l] with z̄ the
    logits centred over positions; the window's softmax weights score its references too."""
    with torch.no_grad():
        (zx, nx), (zr, nr) = model(x), model(refs.flatten(0, 1))
    if output == "count":
        w = torch.softmax(nx.double(), -1)
        fx, fr = (w * nx).sum(-1), (w.repeat_interleave(refs.shape[1], 0) * nr).sum(-1)
    else:
        cx, cr = zx - zx.mean(-1, keepdim=True), zr - zr.mean(-1, keepdim=True)
        w = torch.softmax(cx.double(), -1)
        fx, fr = (w * cx).sum((1, 2)), (w.repeat_interleave(refs.shape[1], 0) * cr).sum((1, 2))
    return (fx.double() - fr.double().view(len(x), -1).mean(1)).numpy()


@pytest.mark.parametrize("output", ["count", "profile"])
def test_deeplift_completeness(output):
    model, x = small_bpnet(), onehot(4, 120, seed=2)
    attr, hyp = attribute(model, x.numpy(), output=output, n_shuffles=5, seed=3, batch_size=10)
    assert attr.shape == hyp.shape == (4, 4, 120)
    np.testing.assert_array_equal(attr, hyp * x.numpy())
    delta = explained(model.eval(), x, make_references(x, 5, 3), output)
    np.testing.assert_allclose(attr.sum((1, 2)), delta, rtol=1e-4, atol=1e-5)  # the attributions add up to Δf
    gaps = completeness_gap(model, x.numpy(), attr, make_references(x, 5, 3).numpy(), output=output)
    assert gaps.shape == (4,) and (gaps < 1e-4).all(), gaps
    # other references → the gap of these attributions is no longer small
    other = completeness_gap(model, x.numpy(), attr, make_references(x, 5, 99).numpy(), output=output)
    assert other.max() > 1e-2


def test_hypothetical_contributions_are_substitution_effects_of_a_linear_model():
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 2, 5, padding="same")
            self.count = nn.Linear(2, 2)

        def forward(self, x):
            h = self.conv(x)
            return h, self.count(h.mean(-1))

    torch.manual_seed(0)
    model, x = Linear(), onehot(1, 30, seed=4)
    attr, hyp = attribute(model, x.numpy(), n_shuffles=3)
    with torch.no_grad():
        weights = torch.softmax(model(x)[1], dim=-1)  # the window's channel weights (see scalar_output)
    f = lambda z: (model(z)[1] * weights).sum().item()
    base = x[0].argmax(0)
    for pos in (0, 7, 29):
        for c in range(4):
            mutant = x.clone()
            mutant[0, :, pos] = 0
            mutant[0, c, pos] = 1
            assert hyp[0, c, pos] - hyp[0, base[pos], pos] == pytest.approx(f(mutant) - f(x), abs=1e-5)
    assert (attr[0][x[0].numpy() == 0] == 0).all()


def test_functional_relu_warns_about_completeness():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(4, 8, 5, padding="same")
            self.count = nn.Linear(8, 1)

        def forward(self, x):
            h = F.relu(self.conv(x) * 3)
            return h, self.count(h.mean(-1))

    torch.manual_seed(0)
    with pytest.warns(RuntimeWarning, match="no rule"):
        attribute(Functional(), onehot(2, 40).numpy(), n_shuffles=3)


def test_model_state_is_restored_and_bad_input_rejected():
    model = small_bpnet().train()
    attribute(model, onehot(1, 30).numpy(), n_shuffles=2)
    assert model.training and all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        attribute(model, onehot(1, 30)[:, :3].numpy())
    with pytest.raises(ValueError, match="unknown attribution output"):
        attribute(model, onehot(1, 30).numpy(), output="counts")
    with pytest.raises(ValueError, match=r"references must have shape \(N, R, 4, L\) = \(2, R, 4, 30\)"):
        attribute(model, onehot(2, 30).numpy(), references=make_references(onehot(1, 30), 3, 0))


# ---------------------------------------------------------------------------------------------- language models
def tiny_lm(kind: str):
    torch.manual_seed(0)
    params = {"backbone": None, "finetune": "scratch", "tokenizer": kind, "architecture": LM_ARCH, "head": "conv",
              "species": "yeast"}
    model = build_model("lm", params, "profile", 2).eval()
    with torch.no_grad():  # outputs that vary between sequences more than a fresh head's
        for p in [*model.trunk.stack.parameters(), *model.head.parameters()]:
            p.mul_(3)
    return model


def test_multilinear_kmer_embeddings_equal_the_lookup_on_onehot():
    model = tiny_lm("kmer6_species")
    weight = model.trunk.encoder.get_input_embeddings().weight.detach()
    x = onehot(2, 20, seed=5)
    x[1, :, 7] = 0  # an N: its six 6-mers are [UNK]
    torch.testing.assert_close(multilinear_kmer_embeddings(x, weight), kmer_embeddings(x, weight))


def test_multilinear_kmer_embeddings_value_and_gradient_on_soft_input(monkeypatch):
    """The blockwise function against the 4,096 products built by autograd, across block boundaries."""
    from dnalm import attribution

    monkeypatch.setattr(attribution, "KMER_BLOCK_ROWS", 7)  # 3 windows x 35 six-mers: many blocks, a partial last
    weight = torch.randn(len(tokenize.SPECIALS) + 4 ** 6 + 3, 5, dtype=torch.float64)
    x = torch.rand(3, 4, 40, dtype=torch.float64, requires_grad=True)
    cols = x.unfold(2, tokenize.K, 1).permute(0, 2, 3, 1)
    p = cols[:, :, 0]
    for j in range(1, tokenize.K):
        p = (p[..., :, None] * cols[:, :, j, None, :]).flatten(-2)
    expected = p @ weight[attribution._kmer_table_ids()] + (1 - p.sum(-1, keepdim=True)) * weight[tokenize.UNK]
    got = multilinear_kmer_embeddings(x, weight)
    torch.testing.assert_close(got, expected)
    g = torch.randn_like(got)
    (want,) = torch.autograd.grad((expected * g).sum(), x)
    (have,) = torch.autograd.grad((got * g).sum(), x)
    torch.testing.assert_close(have, want)
    small = torch.rand(1, 4, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: multilinear_kmer_embeddings(v, weight), (small,))


@pytest.mark.parametrize("kind", tokenize.KINDS)
@pytest.mark.parametrize("output", ["count", "profile"])
def test_lm_integrated_gradients_are_complete(kind, output):
    """With 32 steps the gap is ~1% (the head's ReLU kinks limit the quadrature); 5% is the tolerance."""
    model, x = tiny_lm(kind), onehot(2, 30, seed=6)
    assert resolve_method(model) == "ig"
    attr, hyp = attribute(model, x.numpy(), output=output, n_shuffles=3, seed=1, steps=32, batch_size=64)
    assert attr.shape == hyp.shape == (2, 4, 30)
    assert np.abs(hyp).max() > 0 and (attr[x.numpy() == 0] == 0).all()
    gaps = completeness_gap(model, x.numpy(), attr, make_references(x, 3, 1).numpy(), output=output)
    assert (gaps < 0.05).all(), gaps


def test_lm_kmer_lookup_without_the_multilinear_extension_is_not_complete(monkeypatch):
    """The reason for `multilinear_kmer_embeddings`: the model's own embedding is flat between one-hot inputs."""
    import contextlib

    from dnalm import attribution

    monkeypatch.setattr(attribution, "_soft_kmer_embeddings", contextlib.nullcontext)
    model, x = tiny_lm("kmer6_species"), onehot(2, 30, seed=6)
    attr, _ = attribute(model, x.numpy(), n_shuffles=3, seed=1, steps=32, batch_size=64)
    gaps = completeness_gap(model, x.numpy(), attr, make_references(x, 3, 1).numpy())
    assert (gaps > 0.3).all(), gaps


def test_lm_rejects_deeplift():
    with pytest.raises(ValueError, match="use method 'ig'"):
        attribute(tiny_lm("nucleotide"), onehot(1, 30).numpy(), method="deeplift")


def test_inplace_and_smooth_activations_are_complete():
    """In-place ReLUs keep their inputs intact for the rule; Softplus uses the generic (torch) Rescale path."""

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv1d(4, 8, 5, padding="same"), nn.Conv1d(8, 8, 3, padding="same")
            self.act1, self.act2 = nn.ReLU(inplace=True), nn.Softplus()
            self.count = nn.Linear(8, 1)

        def forward(self, x):
            h = self.act2(self.conv2(self.act1(self.conv1(x) * 3)) * 3)
            return h, self.count(h.mean(-1))

    torch.manual_seed(0)
    model, x = Mixed(), onehot(3, 40, seed=7)
    attr, _ = attribute(model, x.numpy(), n_shuffles=4, seed=2)
    gaps = completeness_gap(model, x.numpy(), attr, make_references(x, 4, 2).numpy())
    assert (gaps < 1e-4).all(), gaps


def pooled_bpnet(classes: int, pool: str) -> SequenceModel:
    torch.manual_seed(0)
    return build_model("bpnet", {"filters": 16, "layers": 3, "input_kernel": 7, "profile_kernel": 9}, "pooled",
                       classes, {"pool": pool})


@pytest.mark.parametrize("classes", [2, 3])
def test_class_logit_attributions_are_complete(classes):
    """The `class` output of a pooled classifier (mean pooling: DeepLIFT): the positive class's log-odds (two
    classes) or the predicted class's logit against the mean; the attributions add up to its change."""
    model = pooled_bpnet(classes, "mean")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)
    model.eval()
    assert resolve_method(model) == "deeplift"
    x = onehot(4, 60, seed=5)
    attr, _ = attribute(model, x.numpy(), output="class", n_shuffles=4, seed=1, batch_size=8)
    refs = make_references(x, 4, 1)
    with torch.no_grad():
        zx, zr = model(x).double(), model(refs.reshape(-1, 4, 60)).double().view(4, 4, classes)
    if classes == 2:
        fx, fr = zx[:, 1] - zx[:, 0], zr[..., 1] - zr[..., 0]
    else:
        w = torch.eye(classes, dtype=torch.float64)[zx.argmax(1)] - 1.0 / classes
        fx, fr = (zx * w).sum(-1), (zr * w[:, None]).sum(-1)
    np.testing.assert_allclose(attr.sum((1, 2)), (fx - fr.mean(1)).numpy(), rtol=1e-4, atol=1e-5)
    weights = scalar_output(model(x), "class")[1]
    assert weights.shape == (4, classes)


@pytest.mark.parametrize("pool", ["max", "meanmax"])
def test_max_pooling_takes_integrated_gradients(pool):
    """DeepLIFT has no exact rule for a max; a classifier that pools with one is attributed by integrated gradients."""
    model = pooled_bpnet(2, pool)
    assert resolve_method(model) == "ig"
    with pytest.raises(ValueError, match="AdaptiveMaxPool1d"):
        resolve_method(model, "deeplift")


# ---------------------------------------------------------------------------------------------------------- tracks
def test_tracks_scalar_is_the_linearised_log_sum_of_the_selection():
    y = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    selection = {"channels": [2, 0], "bins": [2, 6]}
    f, weights = scalar_output(y, "tracks", tracks=selection)
    exact = torch.logsumexp(y[:, [2, 0], 2:6].flatten(1), -1)
    (grad,) = torch.autograd.grad(f.sum(), y)
    (grad_exact,) = torch.autograd.grad(exact.sum(), y)
    torch.testing.assert_close(grad, grad_exact)  # the gradient of log Σ e^o over the selection, at the window
    assert grad[:, 1].abs().sum() == 0 and grad[:, :, :2].abs().sum() == 0 and grad[:, :, 6:].abs().sum() == 0
    one, _ = scalar_output(y, "tracks", tracks={"channels": [1], "bins": [4, 5]})  # one bin: its log-rate
    torch.testing.assert_close(one, y[:, 1, 4])
    # the window's weights score a reference: twice the signal in every selected bin scores log 2 higher
    g, _ = scalar_output(y.detach() + np.log(2), "tracks", weights, selection)
    torch.testing.assert_close(g - f.detach(), torch.full((2,), np.log(2), dtype=torch.float64))
    everything, w_all = scalar_output(y, "tracks")  # no selection: every track and bin
    assert w_all.shape == (2, 24) and torch.allclose(everything, (torch.softmax(y.detach().flatten(1), -1)
                                                                   * y.flatten(1)).sum(-1))
    with pytest.raises(ValueError, match="log-rates"):
        scalar_output((y, y[:, :, 0]), "tracks")
    with pytest.raises(ValueError, match="does not fit"):
        scalar_output(y, "tracks", tracks={"channels": [3], "bins": [0, 1]})


def binned_model(arch: str, tracks: int) -> nn.Module:
    """A BPNet or a nucleotide-token LM with the binned head (4 bp bins), weights scaled so outputs vary."""
    torch.manual_seed(0)
    if arch == "bpnet":
        params = {"filters": 16, "layers": 3, "input_kernel": 7, "profile_kernel": 9}
    else:
        params = {"backbone": None, "finetune": "scratch", "tokenizer": "nucleotide", "architecture": LM_ARCH,
                  "head": "conv", "species": "yeast"}
    model = build_model(arch, params, "binned", tracks, {"bin_size": 4}).eval()
    with torch.no_grad():
        for p in model.parameters() if arch == "bpnet" else [*model.trunk.stack.parameters(),
                                                              *model.head.parameters()]:
            p.mul_(3)
    return model


@pytest.mark.parametrize("arch", ["bpnet", "lm"])
def test_tracks_attributions_are_complete(arch):
    """DeepLIFT (BPNet) and integrated gradients (LM, 32 steps: ~1% gap, 5% tolerated) on the `tracks` output of
    one track's central bins: the attributions add up to its change, written out here from the raw log-rates."""
    model, x = binned_model(arch, 3), onehot(3, 48, seed=4)
    assert resolve_method(model) == ("deeplift" if arch == "bpnet" else "ig")
    selection = {"channels": [1], "bins": [4, 8]}
    attr, hyp = attribute(model, x.numpy(), output="tracks", n_shuffles=4, seed=2, steps=32, batch_size=64,
                          tracks=selection)
    assert attr.shape == hyp.shape == (3, 4, 48) and np.abs(attr).max() > 0
    refs = make_references(x, 4, 2)
    with torch.no_grad():
        ox, orf = model(x).double()[:, 1, 4:8], model(refs.flatten(0, 1)).double()[:, 1, 4:8]
    w = torch.softmax(ox, -1)
    fx, fr = (w * ox).sum(-1), (w.repeat_interleave(4, 0) * orf).sum(-1).view(3, 4)
    delta = (fx - fr.mean(1)).numpy()
    gaps = completeness_gap(model, x.numpy(), attr, refs.numpy(), output="tracks", tracks=selection)
    if arch == "bpnet":
        np.testing.assert_allclose(attr.sum((1, 2)), delta, rtol=1e-4, atol=1e-5)
        assert (gaps < 1e-4).all(), gaps
    else:
        assert (gaps < 0.05).all(), gaps
    other = completeness_gap(model, x.numpy(), attr, refs.numpy(), output="tracks", tracks={"channels": [0],
                                                                                           "bins": [0, 4]})
    assert other.max() > 0.05  # the same attributions do not explain another selection
