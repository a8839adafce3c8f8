"""Conservation from a masked language model: per-base nucleotide distributions, their entropy and C = 2 − H.

Study 2 (SpeciesLM) reads conservation off a species-aware masked LM: mask a base, read the model's predicted
distribution over A, C, G, T there (a PWM column), take its entropy H in bits, and score the base C = 2 − H (0 when
the model has no idea, 2 when it is certain).

Masking. Every base is predicted from its own window of `2·context + 1` bases centred on it (clamped into the
chromosome at its ends, so a base near an end is predicted from the first or last window that fits, off centre;
a chromosome shorter than the window is padded with N), with the species token of the species. Many such windows,
each with its own masked base, go through the model in one batch. One window per base costs `2·context + 1`
tokens per base, the fewest of any tiling that gives every base `context` bases on both sides.

- `nucleotide` tokenizer: the base's token is `[MASK]`; its distribution is the softmax of the MLM logits over the
  four base tokens.
- `kmer6_species` tokenizer: as SpeciesLM does, the six overlapping 6-mers covering the base are masked (a single
  masked 6-mer could be read off its neighbours); each masked 6-mer's predicted distribution over the 4,096 6-mers
  is marginalised onto the letter at the base's offset in that 6-mer, and the base's distribution is the mean of
  these (fewer than six at a chromosome's first and last five bases).

Bases that are N get no score (left empty in the bigWig, NaN in the npz).

The codon-position control (`codon_control`) is in `dnalm.conservation_codons`.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import torch

from dnalm import tokenize
from dnalm.device import autocast, pick_device, set_threads
from dnalm.genome_tracks import N_CODE, genome_sizes, merged_regions, read_codes, read_regions
from dnalm.io.fasta import open_fasta

log = logging.getLogger(__name__)

#: Tokenizer kinds whose models `load_mlm` scores (masked prediction needs `[MASK]` and species tokens).
KINDS = ("nucleotide", "kmer6_species")


def load_mlm(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, int]]:
    """A pretrained masked LM (`results/pretrain/<lm>/`, a `BertForMaskedLM` directory) in eval mode, and its vocab.

    Raises:
        ValueError: naming the directory when it is not a BERT masked LM with a `nucleotide` or `kmer6_species`
            vocabulary (e.g. a fine-tuned model's `hf/` export, whose backbone has no MLM head).
    """
    from transformers import BertForMaskedLM

    from dnalm.models.backbones import quiet_transformers

    directory = Path(path)
    config = directory / "config.json"
    if not config.exists():
        raise ValueError(f"{directory}: no config.json; conservation needs a pretrained LM directory "
                         "(results/pretrain/<lm>/, the output of rule pretrain_lm)")
    architectures = json.loads(config.read_text()).get("architectures") or []
    if "BertForMaskedLM" not in architectures:
        raise ValueError(f"{directory}: a {'/'.join(architectures) or 'model'} without a masked-LM head; conservation "
                         "needs BertForMaskedLM weights (a pretrain_lm output; fine-tuned exports drop the MLM head)")
    vocab = tokenize.load_vocab(directory)
    if vocab is None or tokenize.infer_kind(vocab) not in KINDS:
        raise ValueError(f"{directory}: conservation reads {' or '.join(KINDS)} vocabularies (tokenizer.json)")
    with quiet_transformers():
        model = BertForMaskedLM.from_pretrained(str(directory), local_files_only=True)
    return model.to(device).eval(), vocab


def default_context(path: str | Path) -> int:
    """Bases on each side of a masked base: half the pretraining window (`pretrain.json`), else what fits the model.

    Args:
        path: The pretrained LM directory.
    """
    directory = Path(path)
    summary = directory / "pretrain.json"
    if summary.exists():
        return (int(json.loads(summary.read_text())["window"]) - 1) // 2
    positions = int(json.loads((directory / "config.json").read_text())["max_position_embeddings"])
    return (positions - 3) // 2


def window_width(context: int, kind: str) -> int:
    """Bases per window (`2·context + 1`), checked against the 6 bases a 6-mer model needs."""
    if context < 0 or (kind == "kmer6_species" and 2 * context + 1 < tokenize.K):
        raise ValueError(f"conservation.context must be ≥ 0 (≥ 3 for 6-mer models); got {context}")
    return 2 * context + 1


def kmer_letters() -> torch.Tensor:
    """(4096, 6, 4) one-hot letters (A, C, G, T) of the 6-mers in vocabulary order (`dnalm.tokenize.kmers`)."""
    codes = np.array([["ACGT".index(b) for b in kmer] for kmer in tokenize.kmers()])
    return torch.from_numpy(np.eye(4, dtype=np.float32)[codes])


def masked_inputs(windows: np.ndarray, offsets: np.ndarray, kind: str, species_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs with each window's base at `offsets` masked, and which body tokens were masked.

    Args:
        windows: (B, W) base codes.
        offsets: (B,) the masked base's offset in its window.
        kind: `nucleotide` or `kmer6_species`.
        species_id: The species token's id.

    Returns:
        (ids (B, T) `[CLS] <species> body [SEP]`, token offsets (B, m) of the masked body tokens, -1 where a
        6-mer window's edge leaves fewer than six).
    """
    ids = tokenize.model_input(windows, kind, species_id)
    rows = np.arange(len(windows))[:, None]
    if kind == "nucleotide":
        tokens = offsets[:, None]
    else:
        tokens = offsets[:, None] - np.arange(tokenize.K)[None, :]
        tokens = np.where((tokens >= 0) & (tokens < windows.shape[1] - tokenize.K + 1), tokens, -1)
    ids[rows, np.where(tokens >= 0, tokens + 2, 0)] = np.where(tokens >= 0, tokenize.MASK, tokenize.CLS)
    return ids, tokens


@torch.no_grad()
def base_probabilities(model, ids: np.ndarray, tokens: np.ndarray, offsets: np.ndarray, kind: str,
                       device: torch.device, letters: torch.Tensor | None = None) -> np.ndarray:
    """Predicted (B, 4) A, C, G, T probabilities of the masked bases (see the module docstring).

    Args:
        model: A `BertForMaskedLM` in eval mode.
        ids, tokens: From `masked_inputs`.
        offsets: (B,) the masked base's offset in its window.
        kind: `nucleotide` or `kmer6_species`.
        device: The model's device.
        letters: `kmer_letters()` (6-mer models; made when None).
    """
    tokens_t = torch.from_numpy(tokens).to(device)
    valid = tokens_t >= 0
    rows = torch.arange(len(ids), device=device)[:, None].expand_as(tokens_t)
    with autocast(device):
        hidden = model.bert(input_ids=torch.from_numpy(ids).to(device)).last_hidden_state
        logits = model.cls(hidden[rows[valid], tokens_t[valid] + 2]).float()
    if kind == "nucleotide":
        return torch.softmax(logits[:, tokenize.BASE_START : tokenize.BASE_START + 4], -1).cpu().numpy()
    kmer = torch.softmax(logits[:, tokenize.LAYOUTS[kind].kmer : tokenize.LAYOUTS[kind].kmer + 4**tokenize.K], -1)
    letters = (kmer_letters() if letters is None else letters).to(device)
    position = (torch.from_numpy(offsets).to(device)[:, None] - tokens_t)[valid]  # the base's letter in each 6-mer
    per_letter = (kmer @ letters.reshape(len(letters), -1)).reshape(-1, tokenize.K, 4)  # (n, offset, base)
    per_kmer = per_letter[torch.arange(len(per_letter), device=device), position]
    summed = torch.zeros(len(ids), 4, device=device).index_add_(0, rows[valid], per_kmer)
    return (summed / valid.sum(1, keepdim=True)).cpu().numpy()


def window_starts(positions: np.ndarray, size: int, width: int) -> np.ndarray:
    """First base of each position's window: centred, clamped into [0, size − width] (0 when the chromosome is
    shorter than the window)."""
    return np.clip(positions - width // 2, 0, max(size - width, 0))


def predict_region(model, handle, chrom: str, start: int, end: int, size: int, *, kind: str, species_id: int,
                   context: int, batch_size: int, device: torch.device) -> np.ndarray:
    """(end − start, 4) predicted base probabilities of [start, end) of a chromosome; NaN rows at N bases.

    Args:
        model: A `BertForMaskedLM` in eval mode.
        handle: The open genome FASTA (`dnalm.io.fasta.open_fasta`).
        chrom, start, end, size: The region and its chromosome's length.
        kind: The model's tokenizer kind.
        species_id: The species token's id.
        context: Bases on each side of the masked base.
        batch_size: Masked windows per forward pass.
        device: The model's device.
    """
    width = window_width(context, kind)
    positions = np.arange(start, end)
    starts = window_starts(positions, size, width)
    first = int(starts[0]) if len(starts) else start
    codes = read_codes(handle, chrom, first, max(int(starts[-1]) + width, end), size)
    probs = np.full((end - start, 4), np.nan, dtype=np.float32)
    known = np.flatnonzero(codes[positions - first] != N_CODE)
    letters = kmer_letters() if kind == "kmer6_species" else None
    for lo in range(0, len(known), batch_size):
        rows = known[lo : lo + batch_size]
        local = starts[rows] - first
        windows = codes[local[:, None] + np.arange(width)[None, :]]
        offsets = positions[rows] - starts[rows]
        ids, tokens = masked_inputs(windows, offsets, kind, species_id)
        probs[rows] = base_probabilities(model, ids, tokens, offsets, kind, device, letters)
    return probs


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of (N, 4) probabilities (0·log 0 = 0; NaN rows stay NaN)."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(np.isnan(p).any(-1), np.nan, terms.sum(-1))


def conservation(probs: np.ndarray) -> np.ndarray:
    """C = 2 − H (bits) per row of (N, 4) base probabilities."""
    return 2.0 - entropy_bits(probs)


def write_bigwig(path: str | Path, regions: list[tuple[str, int, int]], scores: list[np.ndarray],
                 sizes: dict[str, int]) -> None:
    """Write per-base scores of regions (in genome order) as a bigWig with the genome's header; NaN bases left out."""
    import pybigtools

    def entries():
        for (chrom, start, _), values in zip(regions, scores, strict=True):
            for i in np.flatnonzero(~np.isnan(values)).tolist():
                yield chrom, start + i, start + i + 1, float(values[i])

    pybigtools.open(str(path), "w").write(dict(sizes), entries())


def score_genome(lm_dir: str | Path, fasta: str | Path, *, species: str, regions: str | Path | None = None,
                 context: int | None = None, batch_size: int = 256,
                 device: torch.device | None = None) -> tuple[list[tuple[str, int, int]], list[np.ndarray]]:
    """Predicted base probabilities of every base of the regions (or whole chromosomes) of a genome.

    Args:
        lm_dir: A pretrained LM directory (`load_mlm`).
        fasta: The species' genome (indexed).
        species: Its species token (an error lists the vocabulary's when it is not one).
        regions: A BED file of regions (merged, in genome order), or None for every chromosome.
        context: Bases on each side of a masked base (None: `default_context`).
        batch_size: Masked windows per forward pass.
        device: Device (None: CUDA when available).

    Returns:
        (regions, (length, 4) probabilities per region).
    """
    dev = pick_device(device)
    model, vocab = load_mlm(lm_dir, dev)
    kind = tokenize.infer_kind(vocab)
    species_id = tokenize.species_id(vocab, species)
    context = default_context(lm_dir) if context is None else int(context)
    width = window_width(context, kind)
    tokens = width + 3 if kind == "nucleotide" else width - tokenize.K + 4
    if tokens > model.config.max_position_embeddings:
        raise ValueError(f"conservation.context {context}: windows of {width} bases make {tokens} tokens, more than "
                         f"the {model.config.max_position_embeddings} positions of {lm_dir}; lower it")
    sizes = genome_sizes(fasta)
    spans = merged_regions(read_regions(regions, sizes) if regions else None, sizes)
    out = []
    with open_fasta(fasta) as handle:
        for chrom, start, end in spans:
            log.info("%s:%d-%d (%d bases, context %d, %s)", chrom, start, end, end - start, context, kind)
            out.append(predict_region(model, handle, chrom, start, end, sizes[chrom], kind=kind, species_id=species_id,
                                      context=context, batch_size=batch_size, device=dev))
    return spans, out


def write_scores(out_npz: str | Path, regions: list[tuple[str, int, int]], probs: list[np.ndarray],
                 codon: list[np.ndarray] | None = None) -> None:
    """Write `chrom`, `start`, `end` (one per region) and per base `probs` (N, 4; float16), `conservation` (N;
    float32) and `codon` (N; int8 codon position 1–3, 0 outside codons or without an annotation) of all regions
    concatenated in order, as a compressed npz."""
    flat = np.concatenate(probs) if probs else np.zeros((0, 4), np.float32)
    positions = np.concatenate(codon) if codon else np.zeros(len(flat), dtype=np.int8)
    np.savez_compressed(out_npz, chrom=np.array([r[0] for r in regions]), start=np.array([r[1] for r in regions]),
                        end=np.array([r[2] for r in regions]), probs=flat.astype(np.float16),
                        conservation=conservation(flat).astype(np.float32), codon=positions)


def read_scores(path: str | Path) -> tuple[list[tuple[str, int, int]], list[np.ndarray]]:
    """Regions and per-region conservation arrays of a `write_scores` npz."""
    with np.load(path) as data:
        regions = list(zip(data["chrom"].tolist(), data["start"].tolist(), data["end"].tolist(), strict=True))
        bounds = np.cumsum([0] + [e - s for _, s, e in regions])
        scores = [data["conservation"][a:b] for a, b in itertools.pairwise(bounds)]
    return regions, scores


def run_conservation(lm_dir: str, fasta: str, annotation: str | None, out_bigwig: str, out_npz: str,
                     out_summary: str, *, species: str, regions: str | None = None, context: int | None = None,
                     batch_size: int = 256, threads: int = 1, device: str | None = None) -> dict:
    """Score a genome's regions with an LM and write the bigWig, the npz and the summary with the codon control.

    Args:
        lm_dir, fasta, species, regions, context, batch_size: As `score_genome` takes them.
        annotation: The species' GFF3 (its CDS features give the codon-position control; None: no control).
        out_bigwig: bigWig of C per base.
        out_npz: `write_scores` file.
        out_summary: JSON: the settings, bases scored, mean C, and `codon_control` (`codon_control`).
        threads: CPU threads.
        device: Device name, or None to choose.

    Returns:
        The summary.
    """
    from dnalm.conservation_codons import codon_control, codon_positions, read_codons

    set_threads(threads)
    sizes = genome_sizes(fasta)
    codons = read_codons(annotation, sizes) if annotation else None  # a bad annotation fails before any scoring
    spans, probs = score_genome(lm_dir, fasta, species=species, regions=regions, context=context,
                                batch_size=batch_size, device=device)
    scores = [conservation(p) for p in probs]
    write_bigwig(out_bigwig, spans, scores, sizes)
    write_scores(out_npz, spans, probs, codon_positions(codons, spans) if codons is not None else None)
    flat = np.concatenate(scores) if scores else np.zeros(0)
    summary = {"lm": str(lm_dir), "species": species, "regions": regions, "bases": int(np.isfinite(flat).sum()),
               "context": default_context(lm_dir) if context is None else int(context),
               "mean_conservation": float(np.nanmean(flat)) if np.isfinite(flat).any() else None,
               "codon_control": codon_control(codons, spans, scores) if codons is not None else None}
    Path(out_summary).write_text(json.dumps(summary, indent=2))
    return summary
