"""Variant effects: every trained model of any task type scores the ALT allele of each variant against the REF.

A variant's windows are the model's input length, centred on its first REF base, from the genome (N beyond a
chromosome's ends); the ALT window keeps the same left part and fills the right from the genome, so an insertion
pushes bases out on the right and a deletion pulls more in. The REF windows of a batch of variants, on both strands
when `strands` is `both`, run in one forward pass, then their ALT windows; the reverse strand's outputs are flipped
back (positions reversed, stranded channels swapped) and averaged with the forward ones, as predictions, before any
score is taken.

Scores per task type (columns `<score>.<output>`; `effect` is the headline the report ranks by):
- profile: `log2fc.<channel>` (log2 fold change of the predicted count), `jsd.<channel>` (Jensen-Shannon distance,
  base 2, of the predicted profiles); `effect` = log2 fold change of the count summed over channels.
- tracks: per track the predicted signal (the inverse of the task's transform) summed over the central `range` bp
  of the output (all of it when null): `log2fc.<track>` = log2((alt + 1) / (ref + 1)), `delta.<track>` = alt − ref;
  `effect` = the mean log2fc over tracks.
- classification: `delta_p.<class>`, the change of the calibrated probability (the calibration the evaluation
  fitted on the validation split); `effect` = delta_p of the last (positive) class, or for several classes the
  largest change in absolute value.
Over a model's seeds each score is the mean, with its sd (`<score>.sd`; NaN with one seed).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logsumexp, softmax

log = logging.getLogger(__name__)

#: Values of `variants.strands`.
STRANDS = ("both", "forward")


def variant_windows(variants: pd.DataFrame, genome, sizes: Mapping[str, int],
                    length: int) -> tuple[np.ndarray, np.ndarray]:
    """One-hot REF and ALT windows (N, 4, length) of a variant table (`dnalm.io.vcf` columns; see the module
    docstring for the placement) from `genome` (an open FASTA, or any chrom → sequence mapping). Bases beyond a
    chromosome's ends are N (all zeros)."""
    from dnalm.genome_tracks import read_codes
    from dnalm.store import ONEHOT, encode

    ref = np.zeros((len(variants), length), dtype=np.uint8)
    alt = np.zeros_like(ref)
    left = length // 2
    for i, (chrom, pos, r, a) in enumerate(variants[["chrom", "pos", "ref", "alt"]].itertuples(index=False)):
        start = int(pos) - 1 - left
        codes = read_codes(genome, chrom, start, start + length + max(len(r) - len(a), 0), sizes[chrom])
        ref[i] = codes[:length]
        alt[i] = np.concatenate([codes[:left], encode(a), codes[left + len(r):]])[:length]
    return ONEHOT[ref].transpose(0, 2, 1).copy(), ONEHOT[alt].transpose(0, 2, 1).copy()


def rc_permutation(channels: list[str]) -> np.ndarray:
    """The channel order a reverse-complemented window's outputs have: `<name>/+` and `<name>/-` swap."""
    index = {name: i for i, name in enumerate(channels)}
    swap = {"/+": "/-", "/-": "/+"}
    return np.array([index.get(name[:-2] + swap[name[-2:]], i) if name[-2:] in swap else i
                     for i, name in enumerate(channels)], dtype=np.int64)


def predictions(model, x: np.ndarray, info: dict, *, strands: str, device, batch_size: int) -> list[np.ndarray]:
    """The model's predictions on one-hot windows, averaged over strands: a list of float64 arrays per output.

    profile: [log counts (N, C), probabilities (N, C, L)]; tracks: [signal on the original scale (N, T, bins)];
    classification: [logits (N, K)] (forward only: a classifier's strands are averaged as probabilities by the
    caller, after calibration).
    """
    import torch

    from dnalm.device import as_float, autocast

    if strands not in STRANDS:
        raise ValueError(f"variants.strands must be one of {STRANDS}, not {strands!r}")
    task_type, perm = info["task_type"], rc_permutation(list(info["channels"]))
    both, device = strands == "both", torch.device(device)
    parts: list[list[np.ndarray]] = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = torch.from_numpy(x[start:start + batch_size])
            batch = torch.cat([chunk, chunk.flip((1, 2))]) if both else chunk
            with autocast(device):
                out = as_float(model(batch.to(device)))
            out = [out] if isinstance(out, torch.Tensor) else list(out)
            out = [o.cpu().double().numpy() for o in out]
            parts.append(_strand_mean(task_type, out, len(chunk), perm, both, info))
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def _strand_mean(task_type: str, out: list[np.ndarray], n: int, perm: np.ndarray, both: bool,
                 info: dict) -> list[np.ndarray]:
    """Per-output predictions of a batch whose first n rows are the forward windows (and the next n their reverse
    complements when `both`), averaged over strands."""
    if task_type == "profile":
        logits, counts = out
        probs = softmax(logits, axis=-1)
        if both:
            counts = (counts[:n] + counts[n:][:, perm]) / 2
            probs = (probs[:n] + probs[n:][:, perm, ::-1]) / 2
        return [counts, probs]
    if task_type == "tracks":
        from dnalm.tasks.tracks import inverse_transform

        signal = inverse_transform(np.exp(out[0]), info.get("transform") or "none")
        if both:
            signal = (signal[:n] + signal[n:][:, perm, ::-1]) / 2
        return [signal]
    if task_type == "classification":
        return [out[0]] if not both else [out[0][:n], out[0][n:]]
    raise ValueError(f"variant effects of a {task_type!r} task are not defined")


def scores(info: dict, ref: list[np.ndarray], alt: list[np.ndarray], *, range_bp: int | None = None,
           calibration: dict | None = None) -> pd.DataFrame:
    """The score columns of one model (see the module docstring) from its REF and ALT `predictions` (a classifier's
    `channels` are its classes)."""
    task_type, channels = info["task_type"], list(info["channels"])
    if task_type == "profile":
        (rc, rp), (ac, ap) = ref, alt
        cols = {"effect": (logsumexp(ac, axis=-1) - logsumexp(rc, axis=-1)) / math.log(2)}
        for i, name in enumerate(channels):
            cols[f"log2fc.{name}"] = (ac[:, i] - rc[:, i]) / math.log(2)
        for i, name in enumerate(channels):
            cols[f"jsd.{name}"] = _js_distance(rp[:, i], ap[:, i])
        return pd.DataFrame(cols)
    if task_type == "tracks":
        r, a = (_central(p[0], range_bp, info) for p in (ref, alt))
        lfc = np.log2((a + 1) / (r + 1))
        cols = {"effect": lfc.mean(1)}
        cols.update({f"log2fc.{name}": lfc[:, i] for i, name in enumerate(channels)})
        cols.update({f"delta.{name}": a[:, i] - r[:, i] for i, name in enumerate(channels)})
        return pd.DataFrame(cols)
    from dnalm.classification.calibration import calibrated_logits, softmax

    def probs(logits: list[np.ndarray]) -> np.ndarray:
        return np.mean([softmax(calibrated_logits(z, calibration or {"method": "none"})) for z in logits], axis=0)

    delta = probs(alt) - probs(ref)
    effect = delta[:, -1] if delta.shape[1] == 2 else delta[np.arange(len(delta)), np.abs(delta).argmax(1)]
    return pd.DataFrame({"effect": effect, **{f"delta_p.{c}": delta[:, k] for k, c in enumerate(channels)}})


def _js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2, in [0, 1]) between rows of two probability arrays (N, L); the divergence is
    clipped at 0 before the square root (scipy's `jensenshannon` returns NaN where rounding makes it negative, as for
    a variant that changes nothing)."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * np.log2(a / m), 0.0).sum(-1)

    return np.sqrt(np.clip((kl(p) + kl(q)) / 2, 0, None))


def _central(signal: np.ndarray, range_bp: int | None, info: dict) -> np.ndarray:
    """Signal (N, T, bins) summed over the central `range_bp` bp of the output (every bin when None)."""
    if range_bp is None:
        return signal.sum(-1)
    bins = signal.shape[-1]
    keep = min(bins, max(1, math.ceil(range_bp / int(info.get("bin_size") or 1))))
    lo = (bins - keep) // 2
    return signal[..., lo:lo + keep].sum(-1)


def kept_variants(variants: pd.DataFrame, length: int, settings: dict) -> tuple[pd.DataFrame, dict]:
    """The variants a model of input `length` scores (alleles within `max_indel`, and half the window) and the
    counts (`scored`, `too_long`, `max_indel`) of `score_runs`."""
    limit = min(int(settings["max_indel"]), length // 2)
    long_ = (variants["ref"].str.len() > limit + 1) | (variants["alt"].str.len() > limit + 1)
    kept = variants.loc[~long_].reset_index(drop=True)
    if long_.any():
        log.warning("%d variants with an allele longer than %d bp are not scored", long_.sum(), limit + 1)
    return kept, {"scored": len(kept), "too_long": int(long_.sum()), "max_indel": limit}


def score_runs(runs: list[tuple], variants: pd.DataFrame, genome, sizes: Mapping[str, int], settings: dict,
               device) -> tuple[pd.DataFrame, dict]:
    """Score a variant table with every seed run of one model and summarise over the runs.

    Args:
        runs: (model, info, calibration or None) per run, from `dnalm.predict.load_model` (and, for
            classification, the `calibration` of the run's metrics.json).
        variants: `dnalm.io.vcf` table.
        genome: An open FASTA (or a chrom → sequence mapping).
        sizes: Chromosome lengths.
        settings: The config's `variants` block (`strands`, `range`, `batch_size`, `max_indel`).
        device: Torch device.

    The REF windows of every `batch_size` variants make one forward pass (both strands), then their ALT windows:
    the batches a shard of the variants (`score_variant_shard`) makes too.

    Returns:
        (table, counts): the variant columns, `n_runs`, then per score its mean over runs and `<score>.sd`, with
        `effect` first; variants whose REF or ALT is longer than `max_indel` (or half the window) are left out and
        counted (`too_long`).
    """
    kept, counts = kept_variants(variants, int(runs[0][1]["length"]), settings)
    ref_x, alt_x = variant_windows(kept, genome, sizes, int(runs[0][1]["length"]))
    per_run = []
    for model, run_info, calibration in runs:
        ref, alt = (predictions(model, x, run_info, strands=settings["strands"], device=device,
                                batch_size=int(settings["batch_size"])) for x in (ref_x, alt_x))
        per_run.append(scores(run_info, ref, alt, range_bp=settings["range"], calibration=calibration))
    stack = np.stack([t.to_numpy() for t in per_run])
    mean = pd.DataFrame(stack.mean(0), columns=per_run[0].columns)
    sd = pd.DataFrame(stack.std(0, ddof=1) if len(per_run) > 1 else np.full(stack.shape[1:], np.nan),
                      columns=[f"{c}.sd" for c in per_run[0].columns])
    columns = [c for pair in zip(mean.columns, sd.columns, strict=True) for c in pair]
    table = pd.concat([kept, pd.DataFrame({"n_runs": np.full(len(kept), len(runs))}), mean, sd], axis=1)
    return table[[*kept.columns, "n_runs", *columns]], counts


#: The attributed output of each task type's top variants (tracks tasks: none yet; their `tracks` output would need
#: a selection of the variant's central bins, `dnalm.attribution_outputs`).
ATTRIBUTED = {"profile": "count", "classification": "class"}


def score_variants(checkpoints: list[str], metrics: list[str], variants_tsv: str, genome: str, out_tsv: str,
                   out_json: str, out_npz: str, *, settings: dict, attribution: dict, threads: int = 1,
                   device: str | None = None) -> dict:
    """Score a VCF's variants (`dnalm.io.vcf` table) with every seed run of a model; write the table, a summary and
    the attributions of the top variants.

    Args:
        checkpoints: best.ckpt of each run.
        metrics: metrics.json of each run (classification: its calibration), or empty.
        variants_tsv: The variant table (rule download_variants).
        genome: The species' genome FASTA (indexed).
        out_tsv: The scored table (`score_runs`), in the VCF's order.
        out_json: Counts (scored, too_long, max_indel), the runs and the task type.
        out_npz: `ids`, REF and ALT one-hot windows `ref_onehot`/`alt_onehot` (T, 4, L) and their attributions
            `ref_attr`/`alt_attr` from the first run, for the `settings["top"]` variants of largest |effect|
            (none for tracks tasks).
        settings: The config's `variants` block.
        attribution: `n_shuffles`, `ig_steps` and `seed` of the attributions (the config's `interpret` block).
        threads: CPU threads for torch.
        device: Torch device, or None to choose.

    Returns:
        The summary written to `out_json`.
    """
    from dnalm.io import read_fai
    from dnalm.io.fasta import open_fasta

    runs, dev = _load_runs(checkpoints, metrics, threads, device)
    variants = _read_variants(variants_tsv)
    sizes = read_fai(genome + ".fai")
    with open_fasta(genome) as fasta:
        table, counts = score_runs(runs, variants, fasta, sizes, settings, dev)
        return _write_scores(table, counts, runs[0], checkpoints, fasta, sizes, (out_tsv, out_json, out_npz),
                             settings, attribution, dev)


def score_variant_shard(checkpoints: list[str], metrics: list[str], variants_tsv: str, genome: str, out_part: str,
                        *, settings: dict, shard: int, shards: int, threads: int = 1,
                        device: str | None = None) -> int:
    """One shard of `score_variants` (`inference.variants`): the table rows of its batches of the scored variants
    (`dnalm.shards.shard_rows`), pickled with its shard and rows for `merge_variant_shards`; returns its rows."""
    from dnalm.io import read_fai
    from dnalm.io.fasta import open_fasta
    from dnalm.shards import shard_rows

    runs, dev = _load_runs(checkpoints, metrics, threads, device)
    kept, _ = kept_variants(_read_variants(variants_tsv), int(runs[0][1]["length"]), settings)
    rows = shard_rows(len(kept), int(settings["batch_size"]), shards, shard)
    table = None
    if len(rows):
        with open_fasta(genome) as fasta:
            table, _ = score_runs(runs, kept.iloc[rows.start:rows.stop], fasta, read_fai(genome + ".fai"), settings,
                                  dev)
    tmp = Path(out_part).with_name(f".{Path(out_part).name}.tmp")
    pd.to_pickle({"shard": [shard, shards], "rows": [rows.start, rows.stop], "table": table}, tmp)
    tmp.replace(out_part)
    log.info("shard %d of %d: variants %d-%d of %d", shard, shards, rows.start, rows.stop, len(kept))
    return len(rows)


def merge_variant_shards(parts: list[str], checkpoints: list[str], metrics: list[str], variants_tsv: str,
                         genome: str, out_tsv: str, out_json: str, out_npz: str, *, settings: dict, attribution: dict,
                         threads: int = 1, device: str | None = None) -> dict:
    """The outputs of `score_variants` from its shards' rows (`score_variant_shard`, in shard order): the table
    joined, then the top variants attributed with the first run, as there."""
    from dnalm.io import read_fai
    from dnalm.io.fasta import open_fasta
    from dnalm.shards import check_parts

    runs, dev = _load_runs(checkpoints[:1], metrics[:1], threads, device)
    kept, counts = kept_variants(_read_variants(variants_tsv), int(runs[0][1]["length"]), settings)
    loaded = [pd.read_pickle(p) for p in parts]
    for i, part in enumerate(loaded):
        if part["shard"] != [i, len(parts)]:
            raise ValueError(f"{parts[i]} is shard {part['shard']} (shard, shards), expected {[i, len(parts)]}; "
                             "delete the parts and rerun")
    check_parts([tuple(part["rows"]) for part in loaded], len(kept), parts)
    tables = [part["table"] for part in loaded if part["table"] is not None]
    if not tables:
        raise ValueError(f"{variants_tsv}: no variant to score ({counts})")
    table = pd.concat(tables, ignore_index=True)
    with open_fasta(genome) as fasta:
        return _write_scores(table, counts, runs[0], checkpoints, fasta, read_fai(genome + ".fai"),
                             (out_tsv, out_json, out_npz), settings, attribution, dev)


def _load_runs(checkpoints: list[str], metrics: list[str], threads: int, device: str | None) -> tuple[list, object]:
    """(model, info, calibration or None) of each run, on the chosen device (and torch's threads set); the device."""
    from dnalm.device import pick_device, set_threads
    from dnalm.predict import load_model

    set_threads(threads)
    dev = pick_device(device)
    calibrations = [json.loads(Path(m).read_text()).get("calibration") for m in metrics] or [None] * len(checkpoints)
    return [(*load_model(c, dev), cal) for c, cal in zip(checkpoints, calibrations, strict=True)], dev


def _read_variants(variants_tsv: str) -> pd.DataFrame:
    """The variant table of rule download_variants."""
    return pd.read_csv(variants_tsv, sep="\t", dtype={"chrom": str, "id": str, "ref": str, "alt": str})


def _write_scores(table: pd.DataFrame, counts: dict, first_run: tuple, checkpoints: list[str], fasta,
                  sizes: Mapping[str, int], outputs: tuple[str, str, str], settings: dict, attribution: dict,
                  device) -> dict:
    """Attribute the top variants with the first run and write the table, summary and npz of `score_variants`."""
    from dnalm.attribution import attribute, save_npz_atomic
    from dnalm.io import write_json, write_tsv

    out_tsv, out_json, out_npz = outputs
    model, info, _ = first_run
    task_type = info["task_type"]
    top = table.iloc[np.argsort(-table["effect"].abs().to_numpy(), kind="stable")[:settings["top"]]]
    arrays = {"ids": top["id"].to_numpy(dtype=str)}
    if task_type in ATTRIBUTED and len(top):
        ref_x, alt_x = variant_windows(top, fasta, sizes, int(info["length"]))
        for name, x in (("ref", ref_x), ("alt", alt_x)):
            attr, _ = attribute(model, x, output=ATTRIBUTED[task_type], n_shuffles=attribution["n_shuffles"],
                                seed=attribution["seed"], device=device, steps=attribution["ig_steps"])
            arrays[f"{name}_onehot"], arrays[f"{name}_attr"] = x, np.asarray(attr, dtype=np.float32)
    summary = {**counts, "runs": [str(c) for c in checkpoints], "task_type": task_type,
               "attributed": ATTRIBUTED.get(task_type), "group_by": settings.get("group_by")}
    save_npz_atomic(out_npz, **arrays)
    write_tsv(table, out_tsv)
    write_json(summary, out_json)
    log.info("%d variants scored by %d runs (%d too long) -> %s", counts["scored"], len(checkpoints),
             counts["too_long"], out_tsv)
    return summary
