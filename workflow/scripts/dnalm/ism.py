"""In-silico saturation mutagenesis: the effect of every single substitution in windows on a model's scalar output.

`saturation_mutagenesis` returns, per window, effects (N, 4, span): at each position of the span and each of the
four bases, f(window with that base) − f(window), so the observed base's row is 0 (tangermeme's layout of
`saturation_mutagenesis(..., raw_outputs=True)`, y_hat − y0). At an N (all-zero column) every base is a
substitution. The scalar f is the attributions' (`dnalm.attribution_outputs.scalar_output`: `count`, `profile`,
`class`, and for binned track models `tracks`, the selected tracks' and bins' log-rates weighted by their softmax,
the log of their summed signal to first order). As in attribution, the weights come from the unmutated window's
outputs and score its mutants too, so f is one function per window.

`ism_correlation` compares effects with attributions of the same windows (`dnalm.attribution.attribute`): see its
docstring for the two definitions. `draw_ism` draws one window's heat map and logo.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnalm.attribution import _frozen
from dnalm.attribution_outputs import OUTPUTS, scalar_output, selection_from_arrays
from dnalm.device import as_float, autocast, pick_device
from dnalm.metrics import pearson_rows

#: Definitions of `ism_correlation`.
CORRELATIONS = ("hypothetical", "observed")


def substitutions(onehot: torch.Tensor, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every single substitution of windows within positions [start, end): (window, base, position) index tensors.

    The observed base of a one-hot column is left out; at an N (all-zero) column all four bases are substitutions.
    """
    span = onehot[:, :, start:end]
    observed = (span == 1) & (span.sum(dim=1, keepdim=True) == 1)
    window, base, position = torch.nonzero(~observed, as_tuple=True)
    return window, base, position + start


def _forward(model: nn.Module, x: torch.Tensor, device: torch.device):
    """The model's fp32 outputs on a batch (inference precision of `dnalm.device.autocast`)."""
    with autocast(device):
        return as_float(model(x.to(device)))


def _strand_effects(
    model: nn.Module, x: torch.Tensor, score, start: int, end: int, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Effects (N, 4, end − start) of every substitution of windows x (N, 4, L), `batch_size` mutants per pass."""
    refs, weights = [], []
    for chunk in x.split(batch_size):
        f, w = score(_forward(model, chunk, device))
        refs.append(f.cpu())
        weights.append(w)
    ref = torch.cat(refs)
    weights = None if weights[0] is None else torch.cat(weights)
    effects = torch.zeros(len(x), 4, end - start)
    window, base, position = substitutions(x, start, end)
    for rows in torch.arange(len(window)).split(batch_size):
        w, b, p = window[rows], base[rows], position[rows]
        mutants = x[w].clone()
        mutants[torch.arange(len(rows)), :, p] = 0
        mutants[torch.arange(len(rows)), b, p] = 1
        f, _ = score(_forward(model, mutants, device), weights=None if weights is None else weights[w])
        effects[w, b, p - start] = f.cpu() - ref[w]
    return effects


@torch.no_grad()
def saturation_mutagenesis(
    model: nn.Module,
    onehot: np.ndarray,
    *,
    output: str = "count",
    start: int = 0,
    end: int | None = None,
    batch_size: int = 256,
    revcomp: bool = False,
    device: str | torch.device | None = None,
    tracks: dict | None = None,
) -> np.ndarray:
    """Effects of every single substitution of windows on the scalar `output` (see the module docstring).

    Args:
        model: Any dnalm model (one-hot (B, 4, L) in); its mode, device and requires_grad flags are restored after.
        onehot: Windows (N, 4, L), rows A, C, G, T, N all zeros.
        output: One of `OUTPUTS`.
        start: First position to mutate.
        end: Position after the last one to mutate (None: L).
        batch_size: Windows or mutants per forward pass.
        revcomp: Also mutate the reverse-complemented windows and average the two strands' effects (each base's
            effect on the minus strand is its complement's, at the mirrored position).
        device: Torch device (default CUDA when available, else CPU).
        tracks: The `tracks` output's `channels` and `bins` (default all; not with `revcomp`, whose minus strand
            would swap the channels' strands and mirror the bins).

    Returns:
        Effects (N, 4, end − start), float32: f(mutant) − f(window), 0 at the observed base.
    """
    x = torch.as_tensor(np.asarray(onehot, dtype=np.float32))
    if x.ndim != 3 or x.shape[1] != 4 or len(x) == 0:
        raise ValueError(f"expected one-hot windows of shape (N, 4, L) with N > 0, got {tuple(x.shape)}")
    if output not in OUTPUTS:
        raise ValueError(f"unknown ISM output {output!r}; known: {', '.join(OUTPUTS)}")
    length = x.shape[2]
    end = length if end is None else end
    if not 0 <= start < end <= length:
        raise ValueError(f"ISM span [{start}, {end}) is not within the windows' {length} positions")
    if revcomp and tracks is not None:
        raise ValueError("ISM with revcomp needs the `tracks` output over all tracks and bins (tracks=None)")
    score = functools.partial(scalar_output, output=output, tracks=tracks)
    device = pick_device(device)
    with _frozen(model, device):
        effects = _strand_effects(model, x, score, start, end, batch_size, device)
        if revcomp:
            minus = _strand_effects(model, x.flip(1, 2), score, length - end, length - start, batch_size, device)
            effects = (effects + minus.flip(1, 2)) / 2
    return effects.numpy()


def centred(effects: np.ndarray) -> np.ndarray:
    """Effects minus their mean over the four bases at each position (tangermeme's ISM attributions, hypothetical)."""
    effects = np.asarray(effects, dtype=np.float64)
    return effects - effects.mean(axis=1, keepdims=True)


def ism_correlation(
    effects: np.ndarray, attributions: np.ndarray, kind: str = "hypothetical", onehot: np.ndarray | None = None
) -> np.ndarray:
    """Per-window Pearson correlation between ISM effects and attributions of the same windows and positions.

    `hypothetical`: the centred effects (`centred`: ISM's hypothetical contributions) against the attribution's
    hypothetical contributions centred the same way, over all 4 × L values of a window. Centring removes the
    reference base's term, by which ISM's alt − ref and a hypothetical contribution hyp[c] (≈ hyp[c] − hyp[ref] as an
    effect) differ at each position. `observed`: the observed base's ISM importance at each position (the centred
    effect at the observed base, −¼ Σ of the substitutions' effects) against the attributions at the observed base
    (Σ over bases of attributions × one-hot), over the L positions.

    Args:
        effects: ISM effects (N, 4, L) (`saturation_mutagenesis`).
        attributions: Hypothetical contributions (N, 4, L) for `hypothetical`; attributions or hypothetical
            contributions (N, 4, L) for `observed` (multiplied by `onehot`).
        kind: `hypothetical` or `observed`.
        onehot: The windows (N, 4, L); needed for `observed`.

    Returns:
        Pearson r per window (N,), NaN where either side is constant.
    """
    effects, attributions = np.asarray(effects), np.asarray(attributions)
    if effects.shape != attributions.shape or effects.ndim != 3 or effects.shape[1] != 4:
        raise ValueError(f"ISM effects {effects.shape} and attributions {attributions.shape} must both be (N, 4, L)")
    if kind == "hypothetical":
        return pearson_rows(centred(effects), centred(attributions))
    if kind != "observed":
        raise ValueError(f"unknown ISM correlation {kind!r}; known: {', '.join(CORRELATIONS)}")
    if onehot is None or np.shape(onehot) != effects.shape:
        raise ValueError(f"the `observed` ISM correlation needs the windows' one-hot {effects.shape}")
    return pearson_rows((centred(effects) * onehot).sum(axis=1), (attributions * onehot).sum(axis=1))


def draw_ism(
    effects: np.ndarray, onehot: np.ndarray, path: str | Path, *, title: str = "", first_position: int = 0
) -> None:
    """Write `ism_figure` of one window to a PNG (`path`)."""
    ism_figure(effects, onehot, title=title, first_position=first_position).savefig(path, dpi=120)


def ism_figure(effects: np.ndarray, onehot: np.ndarray, *, title: str = "", first_position: int = 0):
    """One window's ISM as a logo of the observed bases' importance over a heat map of every effect.

    Args:
        effects: One window's effects (4, L) (`saturation_mutagenesis`).
        onehot: Its one-hot sequence (4, L) over the same positions.
        title: Title of the figure (e.g. the region and the model's output).
        first_position: Label of the first column on the x axis (e.g. the region's genomic start).

    Returns:
        The matplotlib Figure.
    """
    from matplotlib.figure import Figure

    from dnalm.report.html import logo

    effects = np.asarray(effects, dtype=np.float64)
    if effects.ndim != 2 or effects.shape[0] != 4 or np.shape(onehot) != effects.shape:
        raise ValueError(
            f"draw_ism needs one window's effects and one-hot, both (4, L); got {effects.shape} and {np.shape(onehot)}"
        )
    length = effects.shape[1]
    fig = Figure(figsize=(min(max(4.0, length / 12), 24.0), 3.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.2])
    logo(top, (centred(effects[None])[0] * onehot).T, title, "ISM importance")
    limit = float(np.abs(effects).max()) or 1.0
    image = bottom.imshow(
        effects,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
        extent=(-0.5, length - 0.5, 3.5, -0.5),
    )
    bottom.set_yticks(range(4), list("ACGT"))
    ticks = np.linspace(0, length - 1, min(length, 6)).round().astype(int)
    bottom.set_xticks(ticks, [str(first_position + t) for t in ticks])
    bottom.tick_params(labelsize=6)
    bottom.set_xlabel("position", fontsize=7)
    bar = fig.colorbar(image, ax=bottom, shrink=0.9)
    bar.set_label("effect (alt − ref)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    return fig


def ism_windows(checkpoint: str, attributions_npz: str, out_npz: str, *, outputs: list[str], windows: int,
                span: int | None, threads: int = 1, device: str | None = None) -> dict:
    """ISM of the first `windows` attributed windows of a model, over their central `span` bases, per output.

    Writes `window_ids`, `onehot` (N, 4, S) of the span, `start` (the span's first position in the window) and per
    output `<output>_ism` (N, 4, S) effects and `<output>_r` (N,), the per-window `hypothetical` correlation with the
    attributions' hypothetical contributions over the span (`ism_correlation`). The `tracks` output sums the
    attributions' selection of tracks and bins (stored in `attributions_npz`).

    Returns:
        Per output, the median correlation; and the windows and span.
    """
    from dnalm.attribution import save_npz_atomic
    from dnalm.device import set_threads
    from dnalm.predict import load_model

    set_threads(threads)
    dev = pick_device(device)
    model, _ = load_model(checkpoint, dev)
    with np.load(attributions_npz) as npz:
        arrays = {k: npz[k][:windows] for k in npz.files if k in ("onehot", "window_ids")
                  or k in {f"{o}_hyp" for o in outputs}}
        tracks = selection_from_arrays(npz)
    length = arrays["onehot"].shape[2]
    width = length if span is None else min(span, length)
    start = (length - width) // 2
    result = {"window_ids": arrays["window_ids"], "onehot": arrays["onehot"][:, :, start:start + width],
              "start": np.array(start)}
    summary = {"windows": len(arrays["onehot"]), "span": width}
    for output in outputs:
        effects = saturation_mutagenesis(model, arrays["onehot"], output=output, start=start, end=start + width,
                                         device=dev, tracks=tracks)
        r = ism_correlation(effects, arrays[f"{output}_hyp"][:, :, start:start + width])
        result[f"{output}_ism"], result[f"{output}_r"] = effects, r
        summary[output] = float(np.nanmedian(r)) if np.isfinite(r).any() else None
    save_npz_atomic(out_npz, **result)
    return summary


def ism_regions(checkpoint: str, fasta: str, bed: str, out_npz: str, *, outputs: list[str], n_shuffles: int,
                ig_steps: int, seed: int, threads: int = 1, device: str | None = None,
                tracks: dict | None = None) -> dict:
    """ISM of BED regions: each region is mutated in the model's window centred on it (N beyond a chromosome's ends),
    over the region's bases (its central `length` bases when it is longer), and attributed in the same window.

    Writes `regions` ("chrom:start-end" as in the BED), `chrom`, `first` (the genomic position of each span's
    first base), `onehot` (N, 4, S) and per output `<output>_ism` (N, 4, S) and `<output>_r` (`ism_correlation`,
    `hypothetical`, with the attributions of the window: DeepLIFT, or integrated gradients for language models), the
    spans padded with zeros to the longest (`width`: each region's own). `tracks`: the `tracks` output's selection
    (`dnalm.tasks.tracks.attribution_selection`).

    Returns:
        Per output, the median correlation; and the regions.
    """
    from dnalm.attribution import attribute, save_npz_atomic
    from dnalm.device import set_threads
    from dnalm.genome_tracks import genome_sizes, read_codes, read_regions
    from dnalm.io.fasta import open_fasta
    from dnalm.predict import load_model
    from dnalm.store import ONEHOT

    set_threads(threads)
    dev = pick_device(device)
    model, info = load_model(checkpoint, dev)
    length = int(info["length"])
    sizes = genome_sizes(fasta)
    regions = read_regions(bed, sizes)
    if not regions:
        raise ValueError(f"{bed}: no regions (interpret.ism.regions)")
    windows, spans = np.zeros((len(regions), 4, length), dtype=np.float32), []
    with open_fasta(fasta) as handle:
        for i, (chrom, start, end) in enumerate(regions):
            width = min(end - start, length)
            first = start + (end - start - width) // 2
            lo = first - (length - width) // 2
            windows[i] = ONEHOT[read_codes(handle, chrom, lo, lo + length, sizes[chrom])].T
            spans.append((first, first - lo, width))
    widest = max(width for _, _, width in spans)
    result = {"regions": np.array([f"{c}:{s}-{e}" for c, s, e in regions]),
              "chrom": np.array([c for c, _, _ in regions]), "first": np.array([f for f, _, _ in spans]),
              "width": np.array([w for _, _, w in spans]), "onehot": np.zeros((len(regions), 4, widest), np.float32)}
    for i, (_, offset, width) in enumerate(spans):
        result["onehot"][i, :, :width] = windows[i, :, offset:offset + width]
    summary = {"regions": len(regions)}
    for output in outputs:
        _, hyp = attribute(model, windows, output=output, n_shuffles=n_shuffles, seed=seed, device=dev,
                           steps=ig_steps, tracks=tracks)
        effects, r = np.zeros((len(regions), 4, widest), np.float32), np.zeros(len(regions))
        for i, (_, offset, width) in enumerate(spans):
            one = saturation_mutagenesis(model, windows[i:i + 1], output=output, start=offset, end=offset + width,
                                         device=dev, tracks=tracks)
            effects[i, :, :width] = one[0]
            r[i] = ism_correlation(one, hyp[i:i + 1, :, offset:offset + width])[0]
        result[f"{output}_ism"], result[f"{output}_r"] = effects, r
        summary[output] = float(np.nanmedian(r)) if np.isfinite(r).any() else None
    save_npz_atomic(out_npz, **result)
    return summary
