"""Section ism: in-silico mutagenesis of attributed test windows, its agreement with the attributions, and heat maps
of every substitution's effect."""

from __future__ import annotations

import numpy as np
from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Interpretation: in-silico mutagenesis"
INTRO = ("Every single substitution of the central bases of a few attributed test windows, scored by the model on "
         "each explained output (effect = mutant − window). r: Pearson correlation, per window, of the ISM's and the "
         "attributions' hypothetical contributions (both centred over the four bases at each position): how far the "
         "attribution maps say what mutating the bases does (docs/attributions.md).")


def _model(path: str, model: str, draw: int) -> Markup:
    from dnalm.ism import ism_figure

    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    outputs = [k[:-4] for k in arrays if k.endswith("_ism")]
    rows = []
    for output in outputs:
        r = arrays[f"{output}_r"]
        finite = r[np.isfinite(r)]
        rows.append([output, html.fmt_int(len(r)), html.fmt_num(np.median(finite) if len(finite) else np.nan),
                     html.fmt_num(finite.min() if len(finite) else np.nan)])
    parts = [html.heading(model),
             html.table(["output", "windows", "median r", "lowest r"], rows, numeric=[1, 2, 3])]
    start = int(arrays["start"])
    for i in range(min(draw, len(arrays["window_ids"]))):
        output = outputs[0]
        fig = ism_figure(arrays[f"{output}_ism"][i], arrays["onehot"][i],
                         title=f"{arrays['window_ids'][i]} ({output}, r {arrays[f'{output}_r'][i]:.2f})",
                         first_position=start)
        parts.append(html.figure(fig, f"{model}: ISM of window {arrays['window_ids'][i]}, {output} output "
                                      "(positions in the window)"))
    return html.join(parts)


def build(manifest: Manifest) -> Markup:
    """Per task, each model's ISM (`ism` records)."""
    if not manifest.find("ism"):
        return html.note("No in-silico mutagenesis was run (interpret.ism.windows is 0, or nothing was interpreted).")
    draw = manifest.interpret_examples  # the windows drawn, as many as the attribution logos
    tasks = [t for t in manifest.tasks if manifest.find("ism", task=t)]
    return html.join([html.note(INTRO), html.task_blocks(
        "ism", tasks, lambda t: html.join(_model(p, m, draw) for m, p in manifest.paths("ism", "model", task=t).items()))])
