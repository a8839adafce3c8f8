"""Attributions of sequence models to their input bases, from dinucleotide-shuffled references.

`attribute` returns, per window, attributions (N, 4, L) (non-zero only at the observed base) and hypothetical
contributions (N, 4, L) (what each of the four bases would contribute at each position), as TF-MoDISco takes them,
both averaged over `n_shuffles` dinucleotide-shuffled references of the window. Two methods:

- `deeplift` (BPNet, and any model whose nonlinearities are elementwise `nn` modules): DeepLIFT with the Rescale
  rule from each reference, averaged (DeepLIFT/SHAP, as tangermeme's `deep_lift_shap` and captum's
  `DeepLiftShap`). Forward hooks on the activation modules replace each activation's gradient by the multiplier
  Δout/Δin between the window and the reference (the plain gradient at the window where |Δin| < 1e-6, as
  tangermeme does). The window's forward runs once, without a graph, recording its activations; then one forward
  and one backward run over the references only, the weights frozen (no weight gradients), each reference row
  reading its window's activations. Tangermeme and captum run the window once per reference and backpropagate
  through both halves and the weights. Reused modules are fine (activations are matched by call order); functional
  activations (`F.relu`) get no rule: the completeness check then warns.
- `ig` (language models: a `dnalm.models.lm.LMTrunk` inside): integrated gradients along the straight path from each
  reference to the window, Gauss-Legendre quadrature with `steps` nodes. DeepLIFT's rules are not defined for
  attention, LayerNorm and GELU products; integrated gradients need only gradients, and with one-hot endpoints they
  keep completeness (attributions sum to f(window) − f(reference), up to the quadrature error). With 6-mer tokens
  the path's soft inputs go through the multilinear extension of the embedding table,
  e(x) = Σ_kmer Π_j x[kmer_j, i+j] E[kmer] + (1 − Σ_kmer Π_j …) E[UNK] (`multilinear_column_embeddings`, for
  overlapping 6-mers (SpeciesLM) and the Nucleotide Transformer's non-overlapping ones alike), which equals
  the token lookup on one-hot input, so the attributed function is smooth in the bases and its values at the path's
  ends are the model's own outputs.

Both give the multiplier m (B, 4, L) of each window-reference pair (DeepLIFT's multipliers, or the path-averaged
gradient); the hypothetical contribution is tangermeme's `hypothetical_attributions`,
hyp[c, l] = m[c, l] − Σ_c' r[c', l] m[c', l] (the contribution of base c at l against the reference's base),
averaged over the references; attributions = hyp × one-hot, so each window's attributions sum to
mean_k (f(x) − f(r_k)).

The attributed scalar f (`count`, `profile`, `class`, `tracks`) is `dnalm.attribution_outputs.scalar_output`: a
linear function of the outputs per window, its weights taken from the window's own outputs and used for its
references too, so completeness holds.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import torch
from torch import nn

from dnalm import tokenize
from dnalm.attribution_outputs import OUTPUTS, scalar_output, selection_arrays
from dnalm.device import pick_device, set_threads
from dnalm.store import WindowStore

log = logging.getLogger(__name__)

METHODS = ("auto", "deeplift", "ig")
#: Elementwise activation modules the Rescale rule handles.
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus,
               nn.Sigmoid, nn.Tanh)
#: Nonlinear modules without a DeepLIFT rule here: a model holding one needs `method="ig"`.
NO_RULE = (nn.Softmax, nn.LogSoftmax, nn.LayerNorm, nn.MultiheadAttention, nn.MaxPool1d, nn.AdaptiveMaxPool1d)
#: |Δin| below which the Rescale rule falls back to the gradient (tangermeme's and captum's threshold).
EPS = 1e-6
#: Relative completeness gap above which `attribute` warns.
GAP_WARN = 1e-3


# ------------------------------------------------------------------------------------------------------ references
def dinucleotide_shuffle(onehot: np.ndarray | torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Dinucleotide-preserving shuffles of one one-hot sequence (Altschul-Erickson Eulerian walk, via tangermeme).

    An N (all-zero column) is shuffled as a fifth letter (tangermeme's `allow_N`): every shuffle keeps the number
    of Ns and the count of every dinucleotide, including those with an N; a run of Ns stays one run but may move.
    The first and last base stay in place.

    Args:
        onehot: One-hot sequence (4, L), rows A, C, G, T.
        n: Number of shuffles.
        seed: Random seed (the same seed gives the same shuffles).

    Returns:
        Float32 shuffles (n, 4, L).
    """
    x = torch.as_tensor(onehot, dtype=torch.float32)
    if x.ndim != 2 or x.shape[0] != 4:
        raise ValueError(f"expected one one-hot sequence of shape (4, L), got {tuple(x.shape)}")
    return make_references(x[None], n, seed)[0]


def make_references(onehot: np.ndarray | torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The references `attribute` uses: window i's `n` shuffles drawn with seed `seed + i`, shape (N, n, 4, L)."""
    from tangermeme.ersatz import dinucleotide_shuffle as shuffle

    x = torch.as_tensor(onehot, dtype=torch.float32)
    if n < 1:
        raise ValueError(f"n_shuffles must be at least 1, got {n}")
    with warnings.catch_warnings():  # tangermeme warns when a short sequence has a position no shuffle can move
        warnings.simplefilter("ignore")
        refs = shuffle(x, n=n, random_state=[seed + i for i in range(len(x))], allow_N=True)
    return refs.float()


def _check_args(onehot: np.ndarray, output: str, method: str, n_shuffles: int) -> np.ndarray:
    x = np.asarray(onehot, dtype=np.float32)
    if x.ndim != 3 or x.shape[1] != 4 or len(x) == 0:
        raise ValueError(f"expected one-hot windows of shape (N, 4, L) with N > 0, got {x.shape}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown attribution output {output!r}; known: {', '.join(OUTPUTS)}")
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(METHODS)}")
    if n_shuffles < 1:
        raise ValueError(f"n_shuffles must be at least 1, got {n_shuffles}")
    return x


def resolve_method(model: nn.Module, method: str = "auto") -> str:
    """`deeplift` for models of convolutions and elementwise activations, `ig` for language models (`auto`)."""
    no_rule = sorted({type(m).__name__ for m in model.modules() if isinstance(m, NO_RULE)})
    is_lm = any(hasattr(m, "inputs_embeds") for m in model.modules())
    if method == "auto":
        return "ig" if is_lm or no_rule else "deeplift"
    if method == "deeplift" and (is_lm or no_rule):
        raise ValueError(f"DeepLIFT has no rule for this model's {', '.join(no_rule) or 'attention'} layers; "
                         "use method 'ig' (integrated gradients)")
    return method


@contextlib.contextmanager
def _frozen(model: nn.Module, device: torch.device):
    """Eval mode, on `device`, no weight gradients; restores mode, device and requires_grad after."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    was_training = model.training
    original = params[0].device if params else device
    model.to(device).eval()
    for p in params:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
        model.to(original).train(was_training)


# -------------------------------------------------------------------------------------------------------- DeepLIFT
class _Multiply(torch.autograd.Function):
    """Value `out`; the gradient w.r.t. `z` is the incoming gradient times the multiplier `m`."""

    @staticmethod
    def forward(ctx, z, out, m):
        ctx.save_for_backward(m)
        return out

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        return grad * m, None, None


class _RescaleHooks:
    """Swaps the forward of a model's elementwise activations: record a window batch, then rescale its references.

    In `record` mode each activation call stores its input and output; in `rescale` mode the i-th call (the same
    activation, by call order) gets the references' rows (b·R, …), ordered window by window, and returns the
    activation's output with its gradient replaced by the Rescale multiplier against the recorded window row.
    The swapped forward (rather than a forward hook) lets a ReLU compute its output and multiplier in one fused
    pass (`_relu_rescale`); the activations' elementwise work, not the convolutions, dominated the time otherwise.
    """

    def __init__(self, model: nn.Module):
        self.modules = [m for m in model.modules() if isinstance(m, ELEMENTWISE)]
        for module in self.modules:
            module.forward = functools.partial(self.forward, module, module.forward)
        self.mode, self.saved, self.calls = "record", [], 0

    def record(self) -> None:
        self.mode, self.saved, self.calls = "record", [], 0

    def rescale(self) -> None:
        self.mode, self.calls = "rescale", 0

    def remove(self) -> None:
        for module in self.modules:
            del module.forward

    def forward(self, module: nn.Module, original, z: torch.Tensor) -> torch.Tensor:
        inplace = getattr(module, "inplace", False)  # an in-place activation would overwrite the input we keep
        if self.mode == "record":
            zx = z.detach().clone() if inplace else z.detach().contiguous()
            out = original(z)
            self.saved.append((zx, out.detach()))
            return out
        zx, ox = self.saved[self.calls]
        self.calls += 1
        zr = z.detach().contiguous()
        if isinstance(module, nn.ReLU) and zr.device.type == "cpu" and zr.dtype == torch.float32:
            out, m = torch.empty_like(zr), torch.empty_like(zr)
            b = zx.shape[0]
            _relu_rescale(zx.view(b, -1).numpy(), zr.view(b, zr.shape[0] // b, -1).numpy(),
                          out.view(b, zr.shape[0] // b, -1).numpy(), m.view(b, zr.shape[0] // b, -1).numpy())
        else:
            out = original(zr.clone() if inplace else zr)
            m = _multiplier(module, zx, ox, zr, out)
        return _Multiply.apply(z, out, m)


@numba.njit(parallel=True, cache=True)
def _relu_rescale(zx, zr, out, m):  # pragma: no cover (compiled)
    """ReLU outputs and Rescale multipliers of reference rows zr (b, R, F) against window rows zx (b, F), fused."""
    b, n_refs, size = zr.shape
    zero, one, eps = np.float32(0), np.float32(1), np.float32(EPS)
    for row in numba.prange(b * n_refs):
        w, k = row // n_refs, row % n_refs
        for f in range(size):
            a, r = zx[w, f], zr[w, k, f]
            o = max(zero, r)
            out[w, k, f] = o
            d = a - r
            if abs(d) < eps:
                m[w, k, f] = one if a > zero else zero
            else:
                m[w, k, f] = ((max(zero, a)) - o) / d


def _local_gradient(module: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The elementwise activation's derivative at z."""
    if isinstance(module, nn.ReLU):
        return (z > 0).to(z.dtype)
    with torch.enable_grad():
        zz = z.detach().requires_grad_()
        return torch.autograd.grad(type(module).forward(module, zz).sum(), zz)[0]


def _multiplier(module: nn.Module, zx: torch.Tensor, ox: torch.Tensor, zr: torch.Tensor,
                orf: torch.Tensor) -> torch.Tensor:
    """Rescale multipliers (b·R, …) of reference rows zr against their windows' rows zx (b, …)."""
    b = zx.shape[0]
    shape = (b, zr.shape[0] // b, *zr.shape[1:])
    dz = zx[:, None] - zr.view(shape)
    secant = (ox[:, None] - orf.view(shape)) / dz
    return torch.where(dz.abs() < EPS, _local_gradient(module, zx)[:, None], secant).view(zr.shape)


def _deeplift_pairs(model: nn.Module, hooks: _RescaleHooks, x: torch.Tensor, refs: torch.Tensor, score):
    """Multipliers (b, R, 4, L), f(x) (b) and f(refs) (b, R) of a batch of windows and their references."""
    b, n_refs = refs.shape[:2]
    hooks.record()
    with torch.no_grad():
        fx, weights = score(model(x))
    hooks.rescale()
    r = refs.flatten(0, 1).requires_grad_()
    with torch.enable_grad():
        fr, _ = score(model(r), weights=None if weights is None else weights.repeat_interleave(n_refs, 0))
        (m,) = torch.autograd.grad(fr.sum(), r)
    if hooks.calls != len(hooks.saved):
        raise RuntimeError(f"the model ran {len(hooks.saved)} activations on the windows but {hooks.calls} on the "
                           "references; DeepLIFT needs the same computation for both")
    return m.view(refs.shape), fx, fr.detach().view(b, n_refs)


# ---------------------------------------------------------------------------------------------- integrated gradients
def _kmer_table_ids(first: int | None = None) -> torch.Tensor:
    """Vocabulary id of each 6-mer in row-major channel order (first base most significant, A C G T), the 6-mers
    starting at id `first` (default SpeciesLM's, 5)."""
    codes = np.indices((4,) * tokenize.K).reshape(tokenize.K, -1).T
    start = len(tokenize.SPECIALS) if first is None else first
    return torch.as_tensor((tokenize.DIGIT_OF_CODE[codes] * tokenize.PLACE).sum(1) + start)


#: Rows (6-mer positions) per block of `_MultilinearKmer`: its (rows, 4096) intermediates stay at 8 MB.
KMER_BLOCK_ROWS = 512


def _kmer_products(cols: torch.Tensor) -> torch.Tensor:
    """(r, 6, 4) → (r, 4096): the products of the six letters' values over all 6-mers (row-major, the first letter
    most significant, as `_kmer_table_ids`)."""
    p = cols[:, 0]
    for j in range(1, cols.shape[1]):
        p = (p[:, :, None] * cols[:, j, None, :]).flatten(1)
    return p


class _MultilinearKmer(torch.autograd.Function):
    """e = P(cols) @ D + E[UNK] with P the 4,096 products of six soft letters, in row blocks, keeping no P.

    The (rows, 4096) products are made block by block in the forward and again in the backward, where the gradient
    w.r.t. letter j is the contraction of G = grad @ Dᵀ with the products of the other five letters: G is summed
    against the letters from the last one down (one pass each), and each step's result against the letters before.
    Autograd through `_kmer_products` would keep every block's products and their gradients (~16 kB per 6-mer each),
    whose allocation and page faults took most of the time of integrated gradients.
    """

    @staticmethod
    def forward(ctx, cols, diff, unk):
        ctx.save_for_backward(cols, diff)
        out = cols.new_empty(len(cols), diff.shape[1])
        for block in range(0, len(cols), KMER_BLOCK_ROWS):
            rows = slice(block, block + KMER_BLOCK_ROWS)
            torch.addmm(unk, _kmer_products(cols[rows]), diff, out=out[rows])
        return out

    @staticmethod
    def backward(ctx, grad):
        cols, diff = ctx.saved_tensors
        out = torch.empty_like(cols)
        for block in range(0, len(cols), KMER_BLOCK_ROWS):
            rows = slice(block, block + KMER_BLOCK_ROWS)
            c = cols[rows]
            g = grad[rows] @ diff.T  # (r, 4096): d e·grad / d P
            prefix = c.new_ones(len(c), 1)  # products of the letters before j
            prefixes = []
            for j in range(6):
                prefixes.append(prefix)
                prefix = (prefix[:, :, None] * c[:, j, None, :]).flatten(1)
            for j in range(5, -1, -1):  # g holds G summed against the letters after j: (r, 4^(j+1))
                g = g.view(len(c), -1, 4)
                out[rows, j] = (prefixes[j][:, :, None] * g).sum(1)
                if j:
                    g = (g * c[:, j, None, :]).sum(-1)
        return out, None, None


def multilinear_column_embeddings(cols: torch.Tensor, weight: torch.Tensor, first: int, fallback: int) -> torch.Tensor:
    """6-mer token embeddings (B, T, H) of soft one-hot columns (B, T, 6, 4): the multilinear extension of the table.

    Equals `dnalm.models.embeddings.kmer_column_embeddings` (same arguments) on one-hot input (an N column gives
    the `fallback` embedding), and is smooth in between, so integrated gradients along a path of soft inputs keep
    completeness. Differentiable in the columns (`_MultilinearKmer`), not in the table (attribution freezes it).
    """
    batch, n_tokens = cols.shape[:2]
    weight = weight.detach()
    unk = weight[fallback]
    diff = weight[_kmer_table_ids(first).to(weight.device)] - unk
    out = _MultilinearKmer.apply(cols.reshape(batch * n_tokens, tokenize.K, 4), diff, unk)
    return out.view(batch, n_tokens, -1)


def multilinear_kmer_embeddings(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Overlapping 6-mer embeddings (B, L-5, H) of soft one-hot x (B, 4, L) in SpeciesLM's layout (the multilinear
    counterpart of `dnalm.models.embeddings.kmer_embeddings`)."""
    from dnalm.models.embeddings import overlapping_columns

    return multilinear_column_embeddings(overlapping_columns(x), weight, len(tokenize.SPECIALS), tokenize.UNK)


@contextlib.contextmanager
def _soft_kmer_embeddings():
    """Within the block, LM models embed 6-mers with `multilinear_column_embeddings` (exact on soft input)."""
    from dnalm.models import embeddings

    original = embeddings.kmer_column_embeddings
    embeddings.kmer_column_embeddings = multilinear_column_embeddings
    try:
        yield
    finally:
        embeddings.kmer_column_embeddings = original


def gauss_legendre(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of `steps`-point Gauss-Legendre quadrature on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return torch.as_tensor((nodes + 1) / 2, dtype=torch.float32), torch.as_tensor(weights / 2, dtype=torch.float32)


def _ig_pairs(model: nn.Module, x: torch.Tensor, refs: torch.Tensor, score, steps: int, batch_size: int):
    """Path-averaged gradients (b, R, 4, L), f(x) (b) and f(refs) (b, R) by integrated gradients."""
    b, n_refs = refs.shape[:2]
    with torch.no_grad():
        fx, weights = score(model(x))
        fr, _ = score(model(refs.flatten(0, 1)), weights=None if weights is None else weights.repeat_interleave(n_refs, 0))
    alphas, quad = gauss_legendre(steps)
    alphas, quad = alphas.to(x.device), quad.to(x.device)
    r = refs.flatten(0, 1)
    diff = (x[:, None] - refs).flatten(0, 1)
    m = torch.zeros_like(r)
    rows = torch.arange(len(r) * steps, device=x.device)
    for chunk in rows.split(batch_size):
        pair, step = chunk // steps, chunk % steps
        pts = (r[pair] + alphas[step, None, None] * diff[pair]).requires_grad_()
        with torch.enable_grad():
            f, _ = score(model(pts), weights=None if weights is None else weights[pair // n_refs])
            (g,) = torch.autograd.grad(f.sum(), pts)
        m.index_add_(0, pair, g * quad[step, None, None])
    return m.view(refs.shape), fx, fr.view(b, n_refs)


# ------------------------------------------------------------------------------------------------------------- API
def hypothetical(multipliers: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """Hypothetical contributions (b, 4, L) from multipliers and references (b, R, 4, L), averaged over R.

    Tangermeme's `hypothetical_attributions`: hyp[c, l] = m[c, l] − Σ_c' r[c', l] m[c', l].
    """
    return (multipliers - (refs * multipliers).sum(2, keepdim=True)).mean(1)


def attribute(model: nn.Module, onehot: np.ndarray, *, output: str = "count", n_shuffles: int = 10, seed: int = 0,
              batch_size: int = 64, device: str | None = None, method: str = "auto",
              **kw) -> tuple[np.ndarray, np.ndarray]:
    """Attributions and hypothetical contributions of windows, averaged over dinucleotide-shuffled references.

    Args:
        model: Any dnalm model (any trunk and head): one-hot (B, 4, L) in, the outputs `output` needs out. Its
            mode, device and requires_grad flags are restored after.
        onehot: Windows (N, 4, L), rows A, C, G, T, N all zeros.
        output: `count`, `profile`, `class` or `tracks` (`dnalm.attribution_outputs`).
        n_shuffles: References per window (window i's are `make_references` with seed `seed + i`).
        seed: Seed of the references.
        batch_size: Window-reference pairs per pass (`deeplift`; at least one window with all its references;
            64 was faster than 32 on 2 cores, `benchmarks/bench_attribution.py`) or interpolated inputs per pass
            (`ig`; with 6-mer tokens each holds a (L, 4096) weight matrix, ~16 MB per 1 kb input).
        device: Torch device (default CUDA when available, else CPU).
        method: `deeplift`, `ig` or `auto` (`ig` for language models, else `deeplift`).
        **kw: `steps` (integrated-gradient quadrature nodes, default 20); `references` (N, R, 4, L) to use instead
            of shuffles; `tracks` (the `tracks` output's `channels` and `bins`; default all); `offset` (the row of
            `onehot`'s first window among all windows, for their seeds: a shard's, `dnalm.attribution_shards`).

    Returns:
        (attributions (N, 4, L) = hypothetical × one-hot, hypothetical contributions (N, 4, L)), float32.
    """
    x_all = _check_args(onehot, output, method, n_shuffles)
    method = resolve_method(model, method)
    steps, offset = int(kw.pop("steps", 20)), int(kw.pop("offset", 0))
    given = kw.pop("references", None)
    score = functools.partial(scalar_output, output=output, tracks=kw.pop("tracks", None))
    if kw:
        raise TypeError(f"attribute() got unexpected keyword arguments {sorted(kw)}")
    if given is not None and (np.ndim(given) != 4 or np.shape(given)[0] != len(x_all)
                              or tuple(np.shape(given)[2:]) != x_all.shape[1:]):
        raise ValueError(f"references must have shape (N, R, 4, L) = ({len(x_all)}, R, 4, {x_all.shape[2]}), "
                         f"got {tuple(np.shape(given))}")
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    per_pass = windows_per_pass(method, n_shuffles if given is None else np.shape(given)[1], batch_size, steps)
    hyp, gaps = np.zeros_like(x_all), []
    device = pick_device(device)
    with _frozen(model, device), _soft_kmer_embeddings() if method == "ig" else contextlib.nullcontext():
        hooks = _RescaleHooks(model) if method == "deeplift" else None
        try:
            for start in range(0, len(x_all), per_pass):
                x = torch.from_numpy(x_all[start : start + per_pass]).to(device)
                refs = (make_references(x.cpu(), n_shuffles, seed + offset + start) if given is None
                        else torch.as_tensor(given[start : start + per_pass], dtype=torch.float32)).to(device)
                if method == "deeplift":
                    m, fx, fr = _deeplift_pairs(model, hooks, x, refs, score)
                else:
                    m, fx, fr = _ig_pairs(model, x, refs, score, steps, batch_size)
                hyp[start : start + len(x)] = hypothetical(m, refs).cpu().numpy()
                gaps.append(_pair_gaps(m, x, refs, fx, fr).cpu())
        finally:
            if hooks is not None:
                hooks.remove()
    _report_gaps(torch.cat(gaps), method)
    return hyp * x_all, hyp


def windows_per_pass(method: str, n_refs: int, batch_size: int, steps: int) -> int:
    """Windows `attribute` explains per pass (`method` resolved: `resolve_method`)."""
    return max(1, batch_size // n_refs) if method == "deeplift" else max(1, batch_size // (n_refs * steps))


def _pair_gaps(m, x, refs, fx, fr) -> torch.Tensor:
    """Per window-reference pair, |Σ (x − r) m − (f(x) − f(r))| relative to the window's mean |f(x) − f(r)|."""
    delta = fx[:, None] - fr
    total = ((x[:, None] - refs) * m).sum((2, 3))
    return ((total - delta).abs() / delta.abs().mean(1, keepdim=True).clamp_min(1e-8)).flatten()


def _report_gaps(gaps: torch.Tensor, method: str) -> None:
    """Log the completeness gaps; warn when they suggest an activation without a rule (e.g. functional F.relu)."""
    worst = float(gaps.max()) if len(gaps) else 0.0
    log.info("%s completeness gap (relative, per window-reference pair): median %.2e, max %.2e", method,
             float(gaps.median()) if len(gaps) else 0.0, worst)
    if method == "deeplift" and worst > GAP_WARN:
        warnings.warn(f"DeepLIFT completeness gap up to {worst:.1e} of the output differences: an activation in the "
                      "model has no rule (a functional F.relu?) and was treated as linear", RuntimeWarning)


@torch.no_grad()
def _outputs(model: nn.Module, onehot: torch.Tensor, refs: torch.Tensor, score, batch_size: int):
    """f(x) (N) and f(refs) (N, R), each reference scored with its window's profile weights."""
    fx, fr = [], []
    for start in range(0, len(onehot), batch_size):
        x, r = onehot[start : start + batch_size], refs[start : start + batch_size]
        f, weights = score(model(x))
        g, _ = score(model(r.flatten(0, 1)), weights=None if weights is None else weights.repeat_interleave(r.shape[1], 0))
        fx.append(f)
        fr.append(g.view(r.shape[:2]))
    return torch.cat(fx), torch.cat(fr)


def completeness_gap(model: nn.Module, onehot: np.ndarray, attributions: np.ndarray, references: np.ndarray,
                     output: str = "count", batch_size: int = 8, device: str | None = None,
                     tracks: dict | None = None) -> np.ndarray:
    """Per window, |Σ attributions − (f(x) − mean_k f(r_k))| / mean_k |f(x) − f(r_k)|.

    Zero for exact DeepLIFT on a model whose every activation has a rule; for integrated gradients it shrinks with
    the number of steps. `references` are the ones `attribute` used (`make_references(onehot, n_shuffles, seed)`).
    """
    device = pick_device(device)
    x = torch.as_tensor(np.asarray(onehot, dtype=np.float32))
    refs = torch.as_tensor(np.asarray(references, dtype=np.float32))
    with _frozen(model, device):
        score = functools.partial(scalar_output, output=output, tracks=tracks)
        fx, fr = _outputs(model, x.to(device), refs.to(device), score, batch_size)
    delta = (fx[:, None] - fr).cpu().double()
    total = torch.as_tensor(np.asarray(attributions, dtype=np.float64)).sum((1, 2))
    return ((total - delta.mean(1)).abs() / delta.abs().mean(1).clamp_min(1e-8)).numpy()


# ----------------------------------------------------------------------------------------------------- the rule
def select_windows(n_total: int, n: int, seed: int) -> np.ndarray:
    """Rows of the test windows to interpret: all when there are at most n, else a seeded sample (sorted)."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def save_npz_atomic(path: str | Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed to a temp file, then rename (no half-written file at `path`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def attribute_windows(checkpoint: str, store: WindowStore, out_npz: str, *, n_windows: int, outputs: list[str],
                      n_shuffles: int, seed: int, ig_steps: int = 20, threads: int = 1, batch_size: int = 32,
                      device: str | None = None, tracks: dict | None = None) -> dict:
    """DeepLIFT/SHAP attributions of test windows for each model output, saved with their one-hot sequences.

    Writes `onehot` (N, 4, L) float32, `window_ids` (N,), `site_index` (N,; the site's position in each window, when
    the store has sites), `label` (N,; the class index, classification stores), the `tracks` selection
    (`dnalm.attribution_outputs.selection_arrays`, tracks tasks), and per output `<output>_attr` (attributions) and
    `<output>_hyp` (hypothetical contributions), both (N, 4, L).

    `ig_steps` is the number of integrated-gradient steps of language models (DeepLIFT models ignore it); `tracks`
    the channels and bins the `tracks` output sums (`dnalm.tasks.tracks.attribution_selection`).

    Returns:
        A summary (windows, seconds per output).
    """
    from dnalm.predict import load_model

    set_threads(threads)
    dev = pick_device(device)
    model, info = load_model(checkpoint, dev)
    arrays = window_arrays(store, n_windows, seed, tracks)
    onehot = arrays["onehot"]
    seconds = {}
    for output in outputs:
        start = time.perf_counter()
        attr, hyp = attribute(model, onehot, output=output, n_shuffles=n_shuffles, seed=seed,
                              batch_size=batch_size, device=dev, steps=ig_steps, tracks=tracks)
        seconds[output] = time.perf_counter() - start
        log.info("%s: %d windows attributed in %.1f s", output, len(onehot), seconds[output])
        arrays[f"{output}_attr"] = np.asarray(attr, dtype=np.float32)
        arrays[f"{output}_hyp"] = np.asarray(hyp, dtype=np.float32)
    save_npz_atomic(out_npz, **arrays)
    return {"windows": len(onehot), "arch": info.get("arch"), "seconds": seconds}


def window_arrays(store: WindowStore, n_windows: int, seed: int, tracks: dict | None) -> dict[str, np.ndarray]:
    """The arrays of attributions.npz besides the attributions (`attribute_windows`), for the windows it explains."""
    rows = select_windows(len(store), n_windows, seed)
    onehot, targets = store.batch(rows)
    arrays = {"onehot": onehot, "window_ids": np.asarray(store.meta["ids"], dtype=str)[rows]}
    if store.labels:
        arrays["label"] = targets.argmax(axis=1)
    if store.meta.get("site_index") is not None:
        arrays["site_index"] = np.asarray(store.meta["site_index"], dtype=np.int64)[rows]
    return {**arrays, **_store_selection(store, tracks)}


def _store_selection(store: WindowStore, tracks: dict | None) -> dict[str, np.ndarray]:
    """The selection's npz arrays, after checking its channel names against the store's."""
    if tracks is None:
        return {}
    names = [store.channels[c] if 0 <= c < len(store.channels) else None for c in tracks["channels"]]
    if names != list(tracks["names"]):
        raise ValueError(f"interpret.tracks selects channels {tracks['names']} but the store's channels are "
                         f"{store.channels}; rebuild the window store (it predates the task's targets)")
    return selection_arrays(tracks)


# ----------------------------------------------------------------------------------------------------------- modisco
