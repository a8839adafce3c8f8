"""Section variants: each VCF's variant effects per model, ranked, their distribution per group, and the REF/ALT
attributions of the variants with the largest effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
from markupsafe import Markup

from dnalm.report import html
from dnalm.report.manifest import Manifest

TITLE = "Variant effects"
#: Variants listed per model and VCF, by |effect|.
TOP_ROWS = 15
#: Bases either side of the variant drawn in the attribution logos.
LOGO_FLANK = 20
EFFECT = {"profile": "log2 fold change of the predicted count (summed over strands)",
          "tracks": "mean over tracks of the log2 fold change of the predicted signal",
          "classification": "change of the calibrated probability of the positive class"}
INTRO = ("Each variant of a species' VCFs is scored by the models of `variants.models`: the window centred on it "
         "with the ALT allele against the same window with the REF allele, both strands averaged (docs/variants.md). "
         "Effects are means over a model's seeds (± sd when it has several).")


def _counts(manifest: Manifest, vcf: str, summary: dict) -> Markup:
    """What was read from the VCF and what was scored or left out."""
    path = manifest.path("input", input="variants", vcf=vcf)
    info = html.read_json(path) if path else {}
    left = {k: info.get(k, 0) for k in ("ref_mismatch", "symbolic", "non_acgt") if info.get(k)}
    if summary.get("too_long"):
        left[f"longer than {summary['max_indel']} bp"] = summary["too_long"]
    parts = [f"{html.fmt_int(summary.get('scored'))} variants scored"]
    if info:
        parts.insert(0, f"{html.fmt_int(info.get('records'))} VCF records, {html.fmt_int(info.get('alleles'))} alleles")
    if left:
        parts.append("not scored: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in left.items()))
    return html.note("; ".join(parts) + ".", "meta")


def _ranked(table: pd.DataFrame) -> Markup:
    """The variants of largest |effect|, with their INFO fields."""
    top = table.iloc[np.argsort(-table["effect"].abs().to_numpy(), kind="stable")[:TOP_ROWS]]
    info = [c for c in table.columns if c.startswith("INFO/")][:3]
    rows = [[str(r["id"]), f"{r['chrom']}:{r['pos']}", f"{r['ref']}>{r['alt']}",
             html.fmt_num(r["effect"], r.get("effect.sd")), *(str(r[c]) for c in info)]
            for _, r in top.iterrows()]
    return html.table(["id", "position", "change", "effect", *info], rows, numeric=[3])


def _groups(table: pd.DataFrame, group_by: str | None) -> Markup:
    """The distribution of effects per value of the group_by INFO field (a histogram, a table, and with two groups
    a two-sided Mann-Whitney U test)."""
    import matplotlib.pyplot as plt
    from scipy.stats import mannwhitneyu

    column = f"INFO/{group_by}" if group_by else None
    groups = ({str(k): g["effect"].to_numpy() for k, g in table.groupby(table[column].astype(str))}
              if column in table.columns else {"all": table["effect"].to_numpy()})
    fig, ax = plt.subplots(figsize=(5, 2.6))
    values = np.concatenate(list(groups.values()))
    edges = np.histogram_bin_edges(values, bins=30) if len(values) else 10
    for name, effects in groups.items():
        ax.hist(effects, bins=edges, alpha=0.55, label=f"{name} (n={len(effects)})")
    ax.axvline(0, color="grey", lw=0.8)
    ax.xaxis.set_major_locator(plt.MaxNLocator(6))
    ax.set_xlabel("effect")
    ax.set_ylabel("variants")
    ax.legend(fontsize=7)
    caption = "Effects of the variants" + (f" by {group_by}" if column in table.columns else "")
    out = [html.figure(fig, caption)]
    plt.close(fig)
    rows = [[name, html.fmt_int(len(e)), html.fmt_num(np.median(e) if len(e) else np.nan),
             html.fmt_num(e.mean() if len(e) else np.nan, e.std(ddof=1) if len(e) > 1 else None)]
            for name, e in groups.items()]
    out.append(html.table(["group", "variants", "median effect", "mean ± sd"], rows, numeric=[1, 2, 3]))
    if len(groups) == 2 and all(len(e) for e in groups.values()):
        (a, ea), (b, eb) = groups.items()
        p = mannwhitneyu(ea, eb, alternative="two-sided").pvalue
        out.append(html.note(f"Mann-Whitney U, {a} against {b}: two-sided p = {p:.2g}.", "meta"))
    return html.join(out)


def _logos(npz_path: str, table: pd.DataFrame) -> Markup:
    """REF and ALT attributions around each top variant, one row of two logos per variant."""
    import matplotlib.pyplot as plt

    with np.load(npz_path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if "ref_attr" not in arrays or not len(arrays["ids"]):
        return html.note("No attributions of the top variants (tracks tasks have no attribution output yet).",
                         "meta")
    n, length = len(arrays["ids"]), arrays["ref_attr"].shape[-1]
    lo, hi = max(length // 2 - LOGO_FLANK, 0), min(length // 2 + LOGO_FLANK + 1, length)
    effects = table.drop_duplicates("id").set_index("id")["effect"]
    fig, axes = plt.subplots(n, 2, figsize=(10, 1.4 * n), squeeze=False)
    for i, name in enumerate(arrays["ids"]):
        for j, allele in enumerate(("ref", "alt")):
            title = f"{name} {allele.upper()}" + (f" (effect {effects.get(name, np.nan):+.3f})" if j else "")
            html.logo(axes[i, j], arrays[f"{allele}_attr"][i][:, lo:hi].T, title, "attribution")
            axes[i, j].axvspan(length // 2 - lo - 0.5, length // 2 - lo + 0.5, color="grey", alpha=0.2, lw=0)
    fig.tight_layout()
    out = html.figure(fig, f"Attributions of the REF and ALT windows of the {n} variants of largest |effect| "
                           f"(first seed's model; ±{LOGO_FLANK} bp around the variant, shaded)")
    plt.close(fig)
    return out


def _task(manifest: Manifest, task: str) -> Markup:
    blocks = []
    for record in manifest.find("variants", task=task):
        model, vcf = record["model"], record["vcf"]
        table = pd.read_csv(record["path"], sep="\t", dtype={"id": str, "chrom": str})
        summary = html.read_json(manifest.path("variants_summary", task=task, model=model, vcf=vcf))
        group_by = summary.get("group_by")
        parts = [html.heading(f"{vcf} scored by {model}"),
                 html.note(f"Effect: {EFFECT.get(summary.get('task_type'), 'see docs/variants.md')}.", "meta"),
                 _counts(manifest, vcf, summary)]
        if table.empty:
            blocks.append(html.join([*parts, html.note("No variant was scored.")]))
            continue
        parts += [_ranked(table), _groups(table, group_by)]
        top = manifest.path("variants_top", task=task, model=model, vcf=vcf)
        if top:
            parts.append(_logos(top, table))
        blocks.append(html.join(parts))
    return html.join(blocks) if blocks else html.note(f"No variants were scored on task {task}.")


def build(manifest: Manifest) -> Markup:
    """Per task, each (model, VCF) scored (`variants` records)."""
    if not manifest.find("variants"):
        return html.note("No variants were scored (species.<id>.variants and the variants block of the config).")
    tasks = [t for t in manifest.tasks if manifest.find("variants", task=t)]
    return html.join([html.note(INTRO), html.task_blocks("variants", tasks, lambda t: _task(manifest, t))])
