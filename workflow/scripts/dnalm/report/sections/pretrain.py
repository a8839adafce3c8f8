"""Section pretrain: masked-LM pretraining of each language model, a summary table and loss / accuracy curves."""

from __future__ import annotations

from typing import Any

import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Language model pretraining"
#: Columns of results/pretrain/<lm>/history.tsv read here (written by dnalm.pretrain, HISTORY_COLUMNS).
HISTORY_COLUMNS = ("step", "train_loss", "val_loss", "val_accuracy")
HEADER = ["language model", "tokenizer", "corpus genomes (species token)", "window / stride (bp)",
          "train windows (dropped)", "val windows used of available (dropped)", "layers / hidden / heads",
          "parameters", "steps run", "final val loss", "final val masked acc."]
NOTE = ("Windows tile the train (or validation) chromosomes of the corpus genomes; dropped: windows with a base other "
        "than A, C, G, T. The corpus is pretrain.<lm>.corpus, or the genomes the QC gate admitted; the vocabulary "
        "holds every configured species token.")
CAPTION = ("Pretraining of {lm}: train loss is the mean over the steps since the previous evaluation; validation loss "
           "and accuracy are on fixed validation windows with fixed masks. No chance line is drawn: pretrain.json "
           "records no token frequencies.")


def _figure(lm: str, history: pd.DataFrame) -> Markup:
    """Train and validation masked-LM loss, and validation masked-token accuracy, per evaluation step."""
    fig = Figure(figsize=(9.0, 3.1), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax in (loss_ax, acc_ax):
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel("step")
        if history.empty:
            html.axes_note(ax, "no evaluation recorded", color="#666")
    if not history.empty:
        loss_ax.plot(history["step"], history["train_loss"], "o-", ms=3, color=html.TRAIN_COLOUR, label="train")
        loss_ax.plot(history["step"], history["val_loss"], "o-", ms=3, color=html.PREDICTED_COLOUR, label="validation")
        loss_ax.legend(fontsize=7, frameon=False)
        acc_ax.plot(history["step"], 100 * history["val_accuracy"], "o-", ms=3, color=html.PREDICTED_COLOUR)
    loss_ax.set_title(f"{lm}: masked-token loss", fontsize=10)
    loss_ax.set_ylabel("cross-entropy")
    acc_ax.set_title(f"{lm}: validation masked-token accuracy", fontsize=10)
    acc_ax.set_ylabel("accuracy (%)")
    return html.figure(fig, CAPTION.format(lm=lm))


def _row(lm: str, summary: dict[str, Any]) -> list[str]:
    """One row of the pretraining summary table (en dashes for what pretrain.json lacks)."""
    get = summary.get
    unet = get("unet") if get("arch") == "unet" else None  # a U-Net records its size under `unet`, enbed under `enbed`
    enbed = get("enbed") if get("arch") == "enbed" else None
    corpus = get("corpus")
    if corpus:
        genomes = ", ".join(f"{g['genome']} ({g['species']})" for g in corpus)
    else:
        genomes = "not recorded; vocabulary: " + ", ".join(map(str, get("species") or [])) or "–"
    val = f"{html.fmt_int(get('val_windows_used'))} of {html.fmt_int(get('val_windows_available'))}"
    return [
        lm,
        str(get("tokenizer", "bases (U-Net)" if unet else "bases + span sentinels (enbed)" if enbed else "–")),
        genomes,
        f"{html.fmt_int(get('window'))} / {html.fmt_int(get('stride'))}",
        f"{html.fmt_int(get('train_windows'))} ({html.fmt_int(get('dropped_train_windows'))})",
        f"{val} ({html.fmt_int(get('dropped_val_windows'))})",
        (f"U-Net: {html.fmt_int(unet.get('layers'))} / channels {html.fmt_int(unet.get('channels'))}, depth "
         f"{html.fmt_int(unet.get('depth'))} / {html.fmt_int(unet.get('heads'))}") if unet
        else _enbed_size(enbed) if enbed else " / ".join(html.fmt_int(get(k)) for k in ("layers", "hidden", "heads")),
        html.fmt_int(get("parameters")),
        f"{html.fmt_int(get('steps_run'))} of {html.fmt_int(get('steps'))}",
        html.fmt_num(get("final_val_loss")),
        html.pct(get("final_val_accuracy")),
    ]


def _enbed_size(enbed: dict[str, Any]) -> str:
    """An encoder-decoder's size: encoder:decoder layers, d_model, heads, local radius and global block."""
    decoder = enbed.get("decoder_layers") or -(-int(enbed.get("encoder_layers") or 0) // 2)
    return (f"enbed: {html.fmt_int(enbed.get('encoder_layers'))}:{html.fmt_int(decoder)} / "
            f"{html.fmt_int(enbed.get('d_model'))} / {html.fmt_int(enbed.get('heads'))}, radius "
            f"{html.fmt_int(enbed.get('local_radius'))}, block {html.fmt_int(enbed.get('global_block_size'))}")


def _curves(lm: str, path: str | None) -> Markup:
    """The curves of one language model, or a note that it has no history."""
    if path is None:
        return html.note(f"No pretraining history for {lm}.")
    return _figure(lm, html.read_tsv(path, HISTORY_COLUMNS))


def build(manifest: Manifest) -> Markup:
    """The summary table of every pretrained language model, then each one's curves."""
    lms = manifest.lms()
    if not lms:
        return html.note("No language model was pretrained by this workflow (pretrain is empty).")
    summaries = manifest.paths("pretrain_summary", "lm")
    histories = manifest.paths("pretrain_history", "lm")
    rows = [_row(lm, html.read_json(summaries[lm]) if lm in summaries else {}) for lm in lms]
    curves = [_curves(lm, histories.get(lm)) for lm in lms]
    return html.join([html.table(HEADER, rows, numeric=range(3, 11)), html.note(NOTE), *curves])
