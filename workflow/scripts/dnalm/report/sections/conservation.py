"""Section conservation: per-base conservation from pretrained language models (C = 2 − H of the masked base's
predicted distribution) along a stretch of the scored regions with its CDS, and the codon-position control."""

from __future__ import annotations

import numpy as np
from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Language-model conservation"
INTRO = ("Each base masked in turn and predicted by the pretrained LM with the species' token: C = 2 − H, H the "
         "entropy (bits) of the predicted A/C/G/T distribution (0: no idea, 2: certain; SEEDS study 2). The codon "
         "control compares C at the 1st, 2nd and 3rd positions of the species' codons: third positions, where most "
         "substitutions are synonymous, should score lower (one-sided Wilcoxon signed-rank tests over codons; "
         "docs/language-models.md#conservation). bigWigs: results/conservation/<lm>/<species>.bw.")
#: Bases of the stretch drawn.
STRETCH = 3000


def _stretch(path: str) -> tuple[str, int, np.ndarray, np.ndarray]:
    """(chrom, first base, C, codon position 0–3) of up to STRETCH bases from the first coding base of the regions."""
    with np.load(path) as npz:
        chroms, starts, ends = npz["chrom"], npz["start"], npz["end"]
        scores, codon = npz["conservation"], npz["codon"]
    coding = np.flatnonzero(codon > 0)
    at = max(int(coding[0]) - 200, 0) if len(coding) else 0
    bounds = np.cumsum(np.concatenate([[0], ends - starts]))
    region = int(np.searchsorted(bounds, at, side="right") - 1)
    stop = min(at + STRETCH, int(bounds[region + 1]))
    return str(chroms[region]), int(starts[region] + at - bounds[region]), scores[at:stop], codon[at:stop]


def _figure(path: str, summary: dict, title: str):
    """C along the stretch with its codons shaded, and the mean C per codon position."""
    import matplotlib.pyplot as plt

    chrom, first, scores, codon = _stretch(path)
    fig, (track, bars) = plt.subplots(1, 2, figsize=(12, 2.8), gridspec_kw={"width_ratios": [4, 1]})
    x = first + np.arange(len(scores))
    track.plot(x, scores, lw=0.5, color="#1f5fa8")
    for run in np.split(np.flatnonzero(codon > 0), np.flatnonzero(np.diff(np.flatnonzero(codon > 0)) != 1) + 1):
        if len(run):
            track.axvspan(x[run[0]], x[run[-1]] + 1, color="#f2c14e", alpha=0.3, lw=0)
    top = float(np.nanmax(scores)) if np.isfinite(scores).any() else 0.0
    track.set(xlabel=f"{chrom} (CDS shaded)", ylabel="C = 2 − H (bits)", ylim=(0, max(1.05 * top, 1e-3)), title=title)
    control = summary.get("codon_control") or {}
    means = [control.get(k) for k in ("mean_c1", "mean_c2", "mean_c3", "mean_noncoding")]
    bars.bar(["1st", "2nd", "3rd", "non-coding"], [np.nan if m is None else m for m in means],
             color=["#1f5fa8", "#1f5fa8", "#c0392b", "#999999"])
    bars.set(ylabel="mean C", title=f"{control.get('codons', 0):,} codons")
    bars.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _row(record: dict, summary: dict) -> list:
    control = summary.get("codon_control") or {}
    verdict = ("holds" if control.get("holds") else "does not hold") if control.get("codons") else "no codons"
    return [record["lm"], record["species"], html.fmt_int(summary.get("bases")), html.fmt_int(summary.get("context")),
            html.fmt_num(summary.get("mean_conservation")), html.fmt_int(control.get("codons")),
            *(html.fmt_num(control.get(k)) for k in ("mean_c1", "mean_c2", "mean_c3", "mean_noncoding")),
            _p(control.get("p_c3_below_c1")), _p(control.get("p_c3_below_c2")), verdict]


def _p(value: float | None) -> str:
    """A p-value in two significant digits (scientific below 0.001), – when absent."""
    if html.is_missing(value):
        return "–"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def build(manifest: Manifest) -> Markup:
    """The table of every (LM, species) scored and one figure each (`conservation`, `conservation_scores`)."""
    records = manifest.find("conservation")
    if not records:
        return html.note("No conservation scores were computed (the conservation block of the config).")
    rows, figures = [], []
    for record in records:
        summary = html.read_json(record["path"])
        rows.append(_row(record, summary))
        scores = manifest.path("conservation_scores", lm=record["lm"], species=record["species"])
        title = f"{record['lm']} on {record['species']}"
        figures.append(html.figure(_figure(scores, summary, title), f"Conservation by {title}: C along the first "
                                   f"{STRETCH:,} bases from the first CDS of the regions, and mean C per codon position."))
    header = ["LM", "species", "bases", "context", "mean C", "codons", "C 1st", "C 2nd", "C 3rd", "C non-coding",
              "p (C3 < C1)", "p (C3 < C2)", "control"]
    return html.join([html.note(INTRO), html.table(header, rows, numeric=list(range(2, 12))), *figures])
