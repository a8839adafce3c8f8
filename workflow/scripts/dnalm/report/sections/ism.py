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


def _model(path: str, model: str, draw: int, regions: bool = False) -> Markup:
    """One model's table of correlations and its first `draw` windows (or BED regions, at genomic positions)."""
    from dnalm.ism import ism_figure

    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    outputs = [k[:-4] for k in arrays if k.endswith("_ism")]
    names = arrays["regions"] if regions else arrays["window_ids"]
    rows = []
    for output in outputs:
        r = arrays[f"{output}_r"]
        finite = r[np.isfinite(r)]
        rows.append([output, html.fmt_int(len(r)), html.fmt_num(np.median(finite) if len(finite) else np.nan),
                     html.fmt_num(finite.min() if len(finite) else np.nan)])
    what = "BED regions" if regions else "windows"
    parts = [html.heading(f"{model}: BED regions" if regions else model),
             html.table(["output", what, "median r", "lowest r"], rows, numeric=[1, 2, 3])]
    for i in range(min(draw, len(names))):
        output = outputs[0]
        width = int(arrays["width"][i]) if regions else arrays["onehot"].shape[2]
        first = int(arrays["first"][i]) if regions else int(arrays["start"])
        fig = ism_figure(arrays[f"{output}_ism"][i][:, :width], arrays["onehot"][i][:, :width],
                         title=f"{names[i]} ({output}, r {arrays[f'{output}_r'][i]:.2f})", first_position=first)
        where = "genomic positions" if regions else "positions in the window"
        kind = "region" if regions else "window"
        parts.append(html.figure(fig, f"{model}: ISM of {kind} {names[i]}, {output} output ({where})"))
    return html.join(parts)


def _task(manifest: Manifest, task: str) -> Markup:
    draw = manifest.interpret_examples  # the windows drawn, as many as the attribution logos
    parts = [_model(p, m, draw) for m, p in manifest.paths("ism", "model", task=task).items()]
    parts += [_model(p, m, draw, regions=True) for m, p in manifest.paths("ism_regions", "model", task=task).items()]
    return html.join(parts)


def build(manifest: Manifest) -> Markup:
    """Per task, each model's ISM of test windows and of BED regions (`ism`, `ism_regions` records)."""
    if not manifest.find("ism") and not manifest.find("ism_regions"):
        return html.note("No in-silico mutagenesis was run (interpret.ism.windows is 0, or nothing was interpreted).")
    tasks = [t for t in manifest.tasks if manifest.find("ism", task=t) or manifest.find("ism_regions", task=t)]
    return html.join([html.note(INTRO), html.task_blocks("ism", tasks, lambda t: _task(manifest, t))])
