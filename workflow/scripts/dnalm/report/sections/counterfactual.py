"""Section counterfactual: how the predictions of models with a species token change with another species' token."""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Species-token counterfactual"
#: Columns of counterfactual.tsv (written by dnalm.evaluate, COUNTERFACTUAL_COLUMNS).
COLUMNS = ("species", "token_in_use", "mean_delta_log_count", "mean_abs_delta_log_count", "profile_pearson_median",
           "n_windows")
INTRO = ("Each model predicts the same test windows again with its species token swapped for every species of its "
         "vocabulary, which shows how much it relies on the token. Δ: mean change of the predicted log(1 + total "
         "count) against the prediction with the token in use (● in use; |Δ|: mean absolute change, over windows and "
         "channels); r: median per-window Pearson between the swapped and the original predicted profile. Δ ≈ 0 and "
         "r ≈ 1: the species token barely matters.")


def _read(path: str) -> pd.DataFrame:
    """A counterfactual table with `token_in_use` as booleans (empty for models without a species token)."""
    df = html.read_tsv(path, COLUMNS)
    return df.assign(token_in_use=df["token_in_use"].astype(str).str.strip().str.lower().isin(["true", "1"]))


def _cell(row: pd.Series | None) -> Markup:
    """Mean change of predicted log count (and its mean absolute value) and profile Pearson for one species."""
    if row is None:
        return html.span("–", "muted", "not in the vocabulary")
    delta = pd.to_numeric(row["mean_delta_log_count"], errors="coerce")
    signed = "–" if pd.isna(delta) else f"{delta:+.3f}"
    parts = [f"Δ {signed} (|Δ| {html.fmt_num(row['mean_abs_delta_log_count'])})",
             f"r {html.fmt_num(row['profile_pearson_median'])}"]
    return html.lines([html.strong("● in use"), *parts] if row["token_in_use"] else parts)


def _task(task: str, paths: dict[str, str]) -> Markup:
    """Model × species table of one task; models without a species token are listed, not tabulated."""
    if not paths:
        return html.note(f"No counterfactual for task {task}.")
    tables = {m: _read(p) for m, p in paths.items()}
    skipped = [m for m, df in tables.items() if df.empty]
    tables = {m: df for m, df in tables.items() if not df.empty}
    parts = [html.note(f"No species token, so no counterfactual: {', '.join(skipped)}.", "meta")] if skipped else []
    if not tables:
        return html.join([html.note(f"No model of task {task} has a species token."), *parts])
    species = list(dict.fromkeys(str(s) for df in tables.values() for s in df["species"]))
    rows = []
    for model, df in tables.items():
        by_species = {str(r["species"]): r for _, r in df.iterrows()}
        rows.append([model, *(_cell(by_species.get(s)) for s in species), html.fmt_int(df["n_windows"].max())])
    header = ["model", *species, "test windows"]
    return html.join([html.table(header, rows, numeric=range(1, len(species) + 2)), *parts])


def build(manifest: Manifest) -> Markup:
    """Per task, a model × species table of the token swaps (`counterfactual` records)."""
    if not manifest.find("counterfactual"):
        return html.note("No species-token counterfactual was computed.")
    blocks = html.task_blocks("counterfactual", manifest.tasks,
                              lambda t: _task(t, manifest.paths("counterfactual", "model", task=t)))
    return html.join([html.note(INTRO), blocks])
