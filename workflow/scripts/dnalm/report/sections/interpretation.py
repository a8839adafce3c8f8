"""Section interpretation: known-motif matches side by side across models, TF-MoDISco patterns as sequence logos (CWM
and PWM, both strands) and attribution logos over example windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from dnalm.interpret import Pattern, read_motif_table, read_patterns
from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Interpretation: motifs"
MAX_PATTERNS = 8  # per output and model: logos of the patterns with most seqlets
TRACK_WIDTH = 80  # bases of an example window drawn as an attribution logo
HEADER = ["output", "pattern", "sign", "seqlets", "consensus", "best match", "q-value", "CWM / PWM logos"]
INTRO = ("Attributions (DeepLIFT/SHAP against dinucleotide-shuffled references; integrated gradients for language "
         "models) of test windows, clustered into patterns by TF-MoDISco, and each pattern's best TOMTOM match among "
         "the known motifs (interpret.motifs). Sign +: bases that raise the output, −: bases that lower it. q-values "
         "in green are below interpret.q_threshold. CWM: contribution weights of the pattern; PWM: information "
         "content of its seqlets' bases.")
EXAMPLES = ("The test windows with the strongest attributions (count's, else the first output's); each row one model "
            "and output, letters scaled by the attribution of the base present (positive up, negative down).")


def _information(ppm: np.ndarray) -> np.ndarray:
    """Bits per base of a probability matrix: p × (2 − entropy)."""
    p = np.clip(ppm, 1e-6, 1)
    p = p / p.sum(axis=1, keepdims=True)
    return p * (2 + (p * np.log2(p)).sum(axis=1, keepdims=True))


def pattern_figure(pattern: Pattern) -> Markup:
    """CWM and PWM (information content) of the trimmed pattern, forward and reverse complement."""
    keep = pattern.trimmed()
    cwm, pwm = pattern.cwm[keep], _information(pattern.ppm[keep])
    fig = Figure(figsize=(7.2, 2.6), layout="constrained")
    axes = fig.subplots(2, 2)
    for r, (matrix, name, unit) in enumerate(((cwm, "CWM", "contribution"), (pwm, "PWM", "bits"))):
        html.logo(axes[r, 0], matrix, f"{name}, forward", unit)
        html.logo(axes[r, 1], matrix[::-1, ::-1], f"{name}, reverse complement", unit)
    for ax in axes[1]:
        ax.set_ylim(0, 2)
    return html.figure(fig, f"{pattern.output} {pattern.name} ({pattern.n_seqlets} seqlets)")


def _q_cell(q: Any, significant: bool) -> html.Html:
    """A q-value, green when significant."""
    if pd.isna(q):
        return "–"
    text = f"{float(q):.2g}"
    return html.span(text, "ok") if significant else text


def summary_table(tables: dict[str, pd.DataFrame]) -> Markup:
    """Known motif × model: the best q-value of any found pattern (significant and supported by enough seqlets,
    `motifs.tsv`'s `found`) whose best match it is, with that pattern, its sign and its seqlets."""
    found = sorted({m for t in tables.values() for m in t.loc[t["found"], "best_match"]})
    if not found:
        return html.note("No pattern of any model matches a known motif significantly with enough seqlets.")
    rows = []
    for motif in found:
        row: list[html.Html] = [motif]
        for hits in (t[(t["best_match"] == motif) & t["found"]].sort_values("q_value") for t in tables.values()):
            if hits.empty:
                row.append(html.span("not found", "muted"))
                continue
            h = hits.iloc[0]
            where = (f" ({h['output']} {h['pattern']}, sign {h['sign']}, {html.fmt_int(h['n_seqlets'])} seqlets, "
                     f"strand {h['strand']})")
            row.append(html.join([_q_cell(h["q_value"], True), where]))
        rows.append(row)
    return html.table(["known motif", *tables], rows)


def _pattern_rows(motifs: pd.DataFrame, patterns: dict[tuple[str, str], Pattern]) -> list[list[html.Html]]:
    """Table rows of the patterns (most seqlets first per output), each with its logos."""
    rows = []
    for output, group in motifs.groupby("output", sort=False):
        for r in group.head(MAX_PATTERNS).itertuples():
            pattern = patterns.get((output, r.pattern))
            match = f"{r.best_match} (p {float(r.p_value):.2g}, offset {r.offset}, strand {r.strand})"
            logos = "" if pattern is None else pattern_figure(pattern)
            rows.append([str(output), str(r.pattern), str(r.sign), html.fmt_int(r.n_seqlets), html.code(r.consensus),
                         match, _q_cell(r.q_value, bool(r.significant)), logos])
    return rows


def _model_block(manifest: Manifest, task: str, model: str, motifs: pd.DataFrame) -> Markup:
    """Patterns, matches and logos of one model."""
    if motifs.empty:
        text = "TF-MoDISco found no patterns (too few seqlets pass its threshold)."
        return html.join([html.heading(model), html.note(text)])

    patterns = {(p.output, p.name): p for r in manifest.find("modisco", task=task, model=model)
                for p in read_patterns(r["path"], r["output"])}
    text = f"{len(motifs)} pattern(s); the {MAX_PATTERNS} with most seqlets per output are drawn."
    patterns_table = html.table(HEADER, _pattern_rows(motifs, patterns), numeric=[3])
    return html.join([html.heading(model), html.note(text, "meta"), patterns_table])


def _strongest_key(data: Any) -> str:
    """The attributions that choose and centre example windows: count's, else the first output's (profile, class)."""
    keys = [k for k in data.files if k.endswith("_attr")]
    return "count_attr" if "count_attr" in keys else keys[0]


def _example_windows(npz: dict[str, Any], n: int) -> list[str]:
    """Window ids present for every model, strongest total |attribution| (`_strongest_key`, first model) first."""
    first = next(iter(npz.values()))
    shared = set(first["window_ids"])
    for data in npz.values():
        shared &= set(data["window_ids"])
    key = _strongest_key(first)
    strength = np.abs(first[key]).sum(axis=(1, 2))
    order = [i for i in np.argsort(-strength, kind="stable") if first["window_ids"][i] in shared]
    return [str(first["window_ids"][i]) for i in order[:n]]


def attribution_figure(window: str, npz: dict[str, Any]) -> Markup:
    """Attribution logos of one window: a row per model and output, around the strongest attribution."""
    panels = [(m, k[:-5], d) for m, d in npz.items() for k in d.files if k.endswith("_attr")]
    fig = Figure(figsize=(10, 1.3 * len(panels) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1))
    first = next(iter(npz.values()))
    row = int(np.flatnonzero(first["window_ids"] == window)[0])
    key = _strongest_key(first)
    centre = int(np.abs(first[key][row]).sum(axis=0).argmax())
    length = first[key].shape[2]
    start = int(np.clip(centre - TRACK_WIDTH // 2, 0, max(length - TRACK_WIDTH, 0)))
    for ax, (model, output, data) in zip(axes, panels, strict=True):
        i = int(np.flatnonzero(data["window_ids"] == window)[0])
        html.logo(ax, data[f"{output}_attr"][i][:, start:start + TRACK_WIDTH].T, f"{model}: {output}", "attribution")
        ticks = ax.get_xticks()
        ax.set_xticks(ticks[(ticks >= 0) & (ticks < TRACK_WIDTH)])
        ax.set_xticklabels([str(int(t) + start) for t in ax.get_xticks()])
    axes[-1].set_xlabel("position in window", fontsize=8)
    return html.figure(fig, f"Window {window}: attributions (DeepLIFT/SHAP; integrated gradients for language models) "
                       f"at bases {start}–{start + TRACK_WIDTH - 1}, around the strongest attribution.")


def _selection(data: Any) -> str:
    """What a tracks task's `tracks` output sums (attributions.npz's selection)."""
    first, end = (int(b) for b in (data["tracks_bp"] if "tracks_bp" in data.files else (-1, -1)))
    where = f"bases {first}–{end - 1} of the window" if first >= 0 else "the central bins"
    return (f"tracks: the log of the predicted signal of {', '.join(map(str, data['tracks_names']))} summed over "
            f"{where} (bins {int(data['tracks_bins'][0])}–{int(data['tracks_bins'][1]) - 1}; interpret.tracks).")


def _task(manifest: Manifest, task: str) -> Markup:
    """Summary, per-model patterns and example attribution logos of one task."""
    models = manifest.names("model", ("attributions", "motifs", "modisco"), task=task)
    motifs = {}
    for model in models:
        path = manifest.path("motifs", task=task, model=model)
        if path is None:
            raise ValueError(f"interpretation of task {task!r}, model {model!r} has no motifs.tsv")
        motifs[model] = read_motif_table(path)
    parts = [html.heading("Known motifs found, side by side"), summary_table(motifs),
             *(_model_block(manifest, task, m, motifs[m]) for m in models)]
    npz = {r["model"]: np.load(r["path"]) for r in manifest.find("attributions", task=task)}
    parts[:0] = [html.note(_selection(d), "meta") for d in list(npz.values())[:1] if "tracks_names" in d.files]
    if npz and manifest.interpret_examples:
        parts += [html.heading("Attributions over example windows"), html.note(EXAMPLES)]
        parts += [attribution_figure(w, npz) for w in _example_windows(npz, manifest.interpret_examples)]
    return html.join(parts)


def build(manifest: Manifest) -> Markup:
    """Known-motif matches and pattern and attribution logos per task and model."""
    tasks = manifest.names("task", ("attributions", "motifs", "modisco"))
    if not tasks:
        return html.note("No model was interpreted (interpret.models is empty).")
    blocks = html.task_blocks("interpretation", tasks, lambda t: _task(manifest, t))
    return html.join([html.note(INTRO, "meta"), blocks])
