"""The scalars attributions and ISM explain: one number per window computed from a model's outputs.

`scalar_output(outputs, output, weights, tracks)` gives f per row and the weights it used. Each f is a linear
function of the model's outputs with weights taken from the window's own outputs and detached, so the window's
weights also score its references (attribution) or its mutants (ISM), f is one function per window, and DeepLIFT's
and integrated gradients' completeness holds through it:

- `count` (profile models; log counts n (B, C)): Σ_c v[c] n[c], v the softmax over channels of the window's n. Each
  channel weighted by its share of the predicted reads, so f follows log Σ_c e^n[c], the log total, to first order.
  With one channel v = 1, the plain log count (chrombpnet's). With stranded channels a plain sum would cancel: a
  + strand site's elements raise n[+] and lower n[−] (whose reads they move away).
- `profile` (profile logits z (B, C, L)): Σ_c,l w[c, l] (z[c, l] − mean_l z[c, ·]), w the softmax over positions of
  the window's own centred logits (BPNet's and chrombpnet's profile attribution).
- `class` (classifier logits z (B, K)): z[1] − z[0], the log-odds of the positive class, for two classes; else
  z[k] − mean z of the window's predicted class k.
- `tracks` (binned track models; log-rates o (B, T, bins) of the transformed signal, `dnalm.tasks.tracks`):
  Σ_(t,b)∈S w[t, b] o[t, b] over the selected tracks and bins S (`tracks`: `channels`, `bins` [start, end); None:
  all), w the softmax over S of the window's own log-rates. The gradient of log Σ_S e^o, the log of the predicted
  signal summed over the selection (on the training scale), at the window, and the same function to first order:
  Borzoi's saliency of summed bins and gReLU's aggregated prediction transform. The log of the sum, not the sum of the
  log-rates, so bins weigh by their share of the predicted signal: the sum of log-rates weighs every bin alike, and
  in a tiled window most bins are near-empty, their log-rates large and negative, so it would explain why empty bins
  are empty rather than where the signal comes from.
"""

from __future__ import annotations

import numpy as np

OUTPUTS = ("count", "profile", "class", "tracks")


def scalar_output(outputs, output: str, weights=None, tracks: dict | None = None):
    """The attributed scalar per row, and the weights used; see the module docstring.

    Args:
        outputs: The model's (profile logits (B, C, L), log counts (B, C)), a classifier's logits (B, K), or a binned
            model's log-rates (B, T, bins).
        output: One of `OUTPUTS`.
        weights: Weights to use (a window's, for its references): channel weights (B, C) for `count`, profile
            weights (B, C, L) for `profile`, class weights (B, K) for `class`, selection weights (B, |S|) for
            `tracks`; None computes them from `outputs`.
        tracks: For `tracks`: `channels` (track indices) and `bins` ([start, end)) summed; None: every track and bin.

    Returns:
        (f (B,), weights).
    """
    import torch

    if output == "tracks":
        return _tracks_scalar(outputs, weights, tracks)
    if output == "class" and isinstance(outputs, torch.Tensor) and outputs.ndim == 2:
        if weights is None:
            k = outputs.shape[1]
            top = torch.eye(k, dtype=outputs.dtype, device=outputs.device)[outputs.detach().argmax(1)]
            weights = (torch.tensor([-1.0, 1.0], dtype=outputs.dtype, device=outputs.device).expand_as(outputs)
                       if k == 2 else top - 1.0 / k)
        return (outputs * weights).sum(-1), weights
    if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
        raise ValueError("attribution needs a classifier's logits (B, K) for `class`, a binned model's log-rates "
                         "(B, tracks, bins) for `tracks`, or a model returning (profile logits (B, C, L), log counts "
                         f"(B, C)) for `count` and `profile`; got {type(outputs).__name__} for output {output!r}")
    logits, counts = outputs
    if output == "count":
        counts = counts.reshape(len(counts), -1)
        if weights is None:
            weights = torch.softmax(counts.detach(), dim=-1)
        return (counts * weights).sum(-1), weights
    centered = logits - logits.mean(-1, keepdim=True)
    if weights is None:
        weights = torch.softmax(centered.detach(), dim=-1)
    return (centered * weights).flatten(1).sum(-1), weights


def _tracks_scalar(log_rates, weights, tracks: dict | None):
    """`tracks`: the selected log-rates weighted by their softmax at the window (see the module docstring)."""
    import torch

    if not isinstance(log_rates, torch.Tensor) or log_rates.ndim != 3:
        raise ValueError("attribution output `tracks` needs a binned model's log-rates (B, tracks, bins); got "
                         f"{type(log_rates).__name__}: use `count`, `profile` or `class` for this model")
    selected = select_tracks(log_rates, tracks).flatten(1)
    if weights is None:
        weights = torch.softmax(selected.detach(), dim=-1)
    return (selected * weights).sum(-1), weights


def select_tracks(log_rates, tracks: dict | None):
    """The log-rates (B, |channels|, end − start) of the selection `tracks` (None: all of them)."""
    if tracks is None:
        return log_rates
    n_tracks, n_bins = log_rates.shape[1:]
    channels, (start, end) = list(tracks["channels"]), tracks["bins"]
    if not channels or min(channels) < 0 or max(channels) >= n_tracks or not 0 <= start < end <= n_bins:
        raise ValueError(f"track selection {tracks} does not fit the model's {n_tracks} tracks × {n_bins} bins "
                         "(interpret.tracks is resolved for the task's windows and channels)")
    return log_rates[:, channels, start:end]


def selection_arrays(tracks: dict | None) -> dict[str, np.ndarray]:
    """The selection as attributions.npz arrays (`tracks_channels`, `tracks_names`, `tracks_bins`, `tracks_bp`: the
    bins' first and past-the-last base, or -1 when not given); none for None."""
    if tracks is None:
        return {}
    return {"tracks_channels": np.asarray(tracks["channels"], dtype=np.int64),
            "tracks_names": np.asarray(tracks.get("names", []), dtype=str),
            "tracks_bins": np.asarray(tracks["bins"], dtype=np.int64),
            "tracks_bp": np.asarray(tracks.get("bp", [-1, -1]), dtype=np.int64)}


def selection_from_arrays(arrays) -> dict | None:
    """The selection stored by `selection_arrays` (an npz or dict), or None when there is none."""
    if "tracks_bins" not in arrays:
        return None
    return {"channels": [int(c) for c in arrays["tracks_channels"]], "bins": [int(b) for b in arrays["tracks_bins"]],
            "names": [str(n) for n in arrays["tracks_names"]]}
