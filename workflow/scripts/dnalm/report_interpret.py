"""The report's interpretation section: known-motif matches side by side across models, TF-MoDISco patterns as
sequence logos (CWM and PWM, both strands) and attribution logos over example windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dnalm.interpret import MOTIF_COLUMNS, Pattern, read_patterns
from dnalm.report import ReportInputs, Section, _esc, _figure_html, _fmt_int, _p, _read_tsv, _table, _task_block

TITLE = "Interpretation: motifs"
MAX_PATTERNS = 8  # per output and model: logos of the patterns with most seqlets
TRACK_WIDTH = 80  # bases of an example window drawn as an attribution logo


def _logo(ax: Any, matrix: np.ndarray, title: str, ylabel: str) -> None:
    """A sequence logo of an (L, 4) matrix (rows A, C, G, T) on `ax`."""
    import logomaker

    frame = pd.DataFrame(np.asarray(matrix, dtype=float), columns=list("ACGT"))
    logomaker.Logo(frame, ax=ax, show_spines=False)
    ax.set_title(title, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.tick_params(labelsize=6)


def _information(ppm: np.ndarray) -> np.ndarray:
    """Bits per base of a probability matrix: p × (2 − entropy)."""
    p = np.clip(ppm, 1e-6, 1)
    p = p / p.sum(axis=1, keepdims=True)
    return p * (2 + (p * np.log2(p)).sum(axis=1, keepdims=True))


def _revcomp(matrix: np.ndarray) -> np.ndarray:
    """Reverse complement of an (L, 4) matrix."""
    return matrix[::-1, ::-1]


def pattern_figure(pattern: Pattern) -> str:
    """CWM and PWM (information content) of the trimmed pattern, forward and reverse complement."""
    keep = pattern.trimmed()
    cwm, pwm = pattern.cwm[keep], _information(pattern.ppm[keep])
    fig = Figure(figsize=(7.2, 2.6), layout="constrained")
    axes = fig.subplots(2, 2)
    _logo(axes[0, 0], cwm, "CWM, forward", "contribution")
    _logo(axes[0, 1], _revcomp(cwm), "CWM, reverse complement", "contribution")
    _logo(axes[1, 0], pwm, "PWM, forward", "bits")
    _logo(axes[1, 1], _revcomp(pwm), "PWM, reverse complement", "bits")
    for ax in axes[1]:
        ax.set_ylim(0, 2)
    return _figure_html(fig, f"{pattern.output} {pattern.name} ({pattern.n_seqlets} seqlets)")


def _q_cell(q: Any, significant: bool) -> str:
    """A q-value, bold when significant."""
    if pd.isna(q):
        return "–"
    text = f"{float(q):.2g}"
    return f'<span class="ok">{text}</span>' if significant else _esc(text)


def summary_table(tables: dict[str, pd.DataFrame]) -> str:
    """Known motif × model: the best q-value of any pattern whose best match it is, with that pattern."""
    found = sorted({m for t in tables.values() for m in t.loc[t["significant"], "best_match"]})
    if not found:
        return _p("No pattern of any model matches a known motif significantly.")
    rows = []
    for motif in found:
        row = [_esc(motif)]
        for table in tables.values():
            hits = table[(table["best_match"] == motif) & table["significant"]].sort_values("q_value")
            if hits.empty:
                row.append('<span class="muted">not found</span>')
            else:
                h = hits.iloc[0]
                row.append(f"{_q_cell(h['q_value'], True)} ({_esc(h['output'])} {_esc(h['pattern'])}, "
                           f"{_fmt_int(h['n_seqlets'])} seqlets, strand {_esc(h['strand'])})")
        rows.append(row)
    return _table(["known motif", *tables], rows)


def _pattern_rows(table: pd.DataFrame, patterns: dict[tuple[str, str], Pattern]) -> list[list[str]]:
    """Table rows of the patterns (most seqlets first per output), each with its logos."""
    rows = []
    for output, group in table.groupby("output", sort=False):
        for r in group.head(MAX_PATTERNS).itertuples():
            pattern = patterns.get((output, r.pattern))
            logo = pattern_figure(pattern) if pattern is not None else ""
            match = f"{_esc(r.best_match)} (p {float(r.p_value):.2g}, offset {r.offset}, strand {_esc(r.strand)})"
            rows.append([_esc(output), _esc(r.pattern), _esc(r.sign), _fmt_int(r.n_seqlets), f"<code>{_esc(r.consensus)}"
                         "</code>", match, _q_cell(r.q_value, bool(r.significant)), logo])
    return rows


def _model_block(model: str, files: dict[str, str]) -> str:
    """Patterns, matches and logos of one model."""
    table = _read_tsv(files["motifs"], MOTIF_COLUMNS)
    if table.empty:
        return f"<h4>{_esc(model)}</h4>" + _p("TF-MoDISco found no patterns (too few seqlets pass its threshold).")
    patterns = {(p.output, p.name): p for key, path in files.items() if key.startswith("modisco.")
                for p in read_patterns(path, key.split(".", 1)[1])}
    header = ["output", "pattern", "sign", "seqlets", "consensus", "best match", "q-value", "CWM / PWM logos"]
    note = _p(f"{len(table)} pattern(s); the {MAX_PATTERNS} with most seqlets per output are drawn.", "meta")
    return f"<h4>{_esc(model)}</h4>" + note + _table(header, _pattern_rows(table, patterns), numeric=[3])


def _example_rows(npz: dict[str, np.lib.npyio.NpzFile], n: int) -> list[str]:
    """Window ids present for every model, strongest total |count attribution| (first model) first."""
    first = next(iter(npz.values()))
    shared = set(first["window_ids"])
    for data in npz.values():
        shared &= set(data["window_ids"])
    key = "count_attr" if "count_attr" in first else "profile_attr"
    strength = np.abs(first[key]).sum(axis=(1, 2))
    order = [i for i in np.argsort(-strength, kind="stable") if first["window_ids"][i] in shared]
    return [str(first["window_ids"][i]) for i in order[:n]]


def attribution_figure(window: str, npz: dict[str, Any]) -> str:
    """Attribution logos of one window: a row per model and output, around the strongest attribution."""
    panels = [(m, k[:-5], d) for m, d in npz.items() for k in d.files if k.endswith("_attr")]
    fig = Figure(figsize=(10, 1.3 * len(panels) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1))
    first = next(iter(npz.values()))
    row = int(np.flatnonzero(first["window_ids"] == window)[0])
    key = "count_attr" if "count_attr" in first.files else "profile_attr"
    centre = int(np.abs(first[key][row]).sum(axis=0).argmax())
    length = first[key].shape[2]
    start = int(np.clip(centre - TRACK_WIDTH // 2, 0, max(length - TRACK_WIDTH, 0)))
    for ax, (model, output, data) in zip(axes, panels):
        i = int(np.flatnonzero(data["window_ids"] == window)[0])
        _logo(ax, data[f"{output}_attr"][i][:, start:start + TRACK_WIDTH].T, f"{model}: {output}", "attribution")
        ticks = ax.get_xticks()
        ax.set_xticks(ticks[(ticks >= 0) & (ticks < TRACK_WIDTH)])
        ax.set_xticklabels([str(int(t) + start) for t in ax.get_xticks()])
    axes[-1].set_xlabel("position in window", fontsize=8)
    return _figure_html(fig, f"Window {window}: attributions (DeepLIFT/SHAP; integrated gradients for language "
                        f"models) at bases {start}–{start + TRACK_WIDTH - 1}, around the strongest attribution.")


def _interpret_task(task: str, per_model: dict[str, dict[str, str]], n_examples: int) -> str:
    """Summary, per-model patterns and example attribution logos of one task."""
    tables = {m: _read_tsv(f["motifs"], MOTIF_COLUMNS) for m, f in per_model.items()}
    for table in tables.values():
        table["significant"] = table["significant"].astype(str).str.lower() == "true"
    body = "<h4>Known motifs found, side by side</h4>" + summary_table(tables)
    body += "".join(_model_block(m, f) for m, f in per_model.items())
    npz = {m: np.load(f["attributions"]) for m, f in per_model.items() if "attributions" in f}
    if npz and n_examples:
        windows = _example_rows(npz, n_examples)
        body += "<h4>Attributions over example windows</h4>" + _p(
            "The test windows with the strongest count attributions; each row one model and output, letters scaled "
            "by the attribution of the base present (positive up, negative down).")
        body += "".join(attribution_figure(w, npz) for w in windows)
    return body


def interpretation_section(data: ReportInputs) -> Section:
    """Known-motif matches, pattern logos and attribution tracks per task and model.

    Args:
        data: The grouped report inputs.

    Returns:
        The section.
    """
    if not data.interpretations:
        return Section("interpretation", TITLE, _p("No model was interpreted (interpret.models is empty)."))
    intro = _p(
        "Attributions (DeepLIFT/SHAP against dinucleotide-shuffled references; integrated gradients for language "
        "models) of test windows, clustered into patterns by TF-MoDISco, and each pattern's best TOMTOM match among "
        "the known motifs (interpret.motifs). Sign +: bases that raise the output, −: bases that lower it. q-values "
        "in green are below interpret.q_threshold. CWM: contribution weights of the pattern; PWM: information "
        "content of its seqlets' bases.", "meta")
    tasks: dict[str, dict[str, dict[str, str]]] = {}
    for (task, model), files in data.interpretations.items():
        tasks.setdefault(task, {})[model] = files
    body = "".join(_task_block("interpretation", t, _interpret_task(t, m, data.interpret_examples))
                   for t, m in tasks.items())
    return Section("interpretation", TITLE, intro + body)
