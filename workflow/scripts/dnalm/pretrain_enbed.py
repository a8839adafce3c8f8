"""Span-corruption pretraining of the byte-level encoder-decoder (`pretrain.<name>.arch: enbed`): objective, model, directory.

The corpus, training loop (AdamW, linear warm-up over `warmup` of the steps then linear decay), checkpoints,
signals, homology exclusion and seeded batches are `dnalm.pretrain`'s; this module gives its `Setup` for
`dnalm.models.enbed` (LongT5 with transient-global attention on single bases).

Objective: T5's span corruption (Raffel et al. 2020, `random_spans_noise_mask`), with spans of mean length
`mean_span` (study 4: 20). Of a window of L bases, n = round(L · mask_prob) are masked, in s = round(n / mean_span)
spans: the masked bases are cut into s non-empty spans and the kept ones into s non-empty gaps at uniformly random
points, and spans and gaps alternate (the window starts with a gap or with a span, at random, so neither end is
always masked). The encoder reads the window with each span replaced by one sentinel (`<extra_id_0>`, …, in order);
the decoder writes `<extra_id_0> span_0 <extra_id_1> span_1 … </s>`, trained by cross-entropy on every target
token. Why span corruption rather than BERT-style MLM over masked spans: the decoder exists to write sequence (the
later sequence-to-sequence tasks use it), and span corruption trains it to; the encoder input is shorter by the
masked bases less the sentinels, and each span is predicted as a sequence, base after base, instead of as
independent per-base guesses. Every window of a run has the same n and s, so batches are rectangular without
padding: encoder inputs L − n + s tokens, targets n + s + 1. The vocabulary holds s sentinels.

Validation (`history.tsv`): the loss and the token accuracy of the targets under teacher forcing, on fixed windows
and masks. Directory (`dnalm.models.enbed.save_enbed`): a `LongT5ForConditionalGeneration` in Hugging Face layout
(`config.json`, `model.safetensors`, `generation_config.json`) and the tokenizer (`tokenizer.json`,
`tokenizer_config.json`), besides `history.tsv` and `pretrain.json` as for BERT. A model reads it with
`enbed.backbone: <name>`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dnalm import tokenize_enbed
from dnalm.corpus import WindowIndex, WindowReader
from dnalm.device import autocast
from dnalm.models.enbed import build_enbed, save_enbed
from dnalm.pretrain_setup import TRAIN_KEYS, Objective, Setup
from dnalm.schema import block_defaults


def span_counts(length: int, mask_prob: float, mean_span: float) -> tuple[int, int]:
    """(masked bases, spans) of a window: round(length × mask_prob) in round(that / mean_span) spans, at least one
    of each and at least one kept base between spans."""
    n_noise = min(max(1, round(length * mask_prob)), length - 1)
    n_spans = max(1, min(round(n_noise / mean_span), length - n_noise))
    return n_noise, n_spans


def _segments(n_items: int, n_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths of `n_segments` non-empty parts of `n_items`, cut at uniformly random distinct points."""
    cuts = np.sort(rng.choice(n_items - 1, n_segments - 1, replace=False) + 1)
    return np.diff(np.concatenate([[0], cuts, [n_items]]))


def span_mask(length: int, mask_prob: float, mean_span: float, rng: np.random.Generator) -> np.ndarray:
    """Which bases of a window are masked (length,) bool: `span_counts` spans alternating with kept gaps."""
    n_noise, n_spans = span_counts(length, mask_prob, mean_span)
    noise, keep = _segments(n_noise, n_spans, rng), _segments(length - n_noise, n_spans, rng)
    noise_first = bool(rng.integers(2))
    parts = np.stack([noise, keep] if noise_first else [keep, noise], axis=1).ravel()
    flags = np.tile([noise_first, not noise_first], n_spans)
    return np.repeat(flags, parts)


def corrupt(ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Encoder input and decoder target of one window's ids (L,) and span mask (L,): each span replaced by its
    sentinel in the input; the target is every sentinel followed by its span, then `</s>`."""
    starts = mask & ~np.concatenate([[False], mask[:-1]])
    sentinels = tokenize_enbed.SENTINEL_START + np.cumsum(starts) - 1
    inputs = np.where(starts, sentinels, ids)[~mask | starts]
    target = np.insert(ids[mask], np.flatnonzero(starts[mask]), sentinels[starts])
    return inputs, np.append(target, tokenize_enbed.EOS)


def span_objective(reader: WindowReader, mask_prob: float, mean_span: float) -> Objective:
    """Span corruption of corpus windows (`corrupt` of `span_mask`), and `enbed_logits`."""

    def batch(index: WindowIndex, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        ids = tokenize_enbed.encode_codes(reader.codes(index, rows))
        pairs = [corrupt(row, span_mask(len(row), mask_prob, mean_span, rng)) for row in ids]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    return Objective(batch, enbed_logits)


def enbed_logits(
    model, inputs: np.ndarray, labels: np.ndarray, device: torch.device, precision: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder logits (B · T, vocab) (fp32) of every target token under teacher forcing, and the targets (B · T,).

    The decoder reads the targets shifted right behind its start token `<pad>` (T5's `_shift_right`, written out so
    that a wrapped model, e.g. under DDP, needs only `forward`)."""
    targets = torch.from_numpy(labels).to(device)
    decoder_inputs = torch.cat([torch.full_like(targets[:, :1], tokenize_enbed.PAD), targets[:, :-1]], dim=1)
    with autocast(device, precision):
        out = model(input_ids=torch.from_numpy(inputs).to(device), decoder_input_ids=decoder_inputs)
    return out.logits.float().flatten(0, 1), targets.flatten()


def enbed_setup(p: dict, reader: WindowReader, dev: torch.device) -> Setup:
    """The encoder-decoder of `p['enbed']` with as many sentinels as a window has spans, its objective and its
    directory (`p`: the `pretrain.<name>` block with its defaults)."""
    architecture = {**block_defaults("pretrain")["enbed"], **p["enbed"]}
    _, n_spans = span_counts(p["window"], p["mask_prob"], p["mean_span"])
    model = build_enbed(architecture, n_spans).to(dev)
    settings = {
        "arch": "enbed",
        "window": p["window"],
        "stride": p["stride"],
        "enbed": architecture,
        "mean_span": p["mean_span"],
        "sentinels": n_spans,
        **{k: p[k] for k in TRAIN_KEYS},
    }

    def write(out: Path, _settings: dict) -> None:
        save_enbed(model.cpu(), out, max_length=p["window"])

    return Setup(model, span_objective(reader, p["mask_prob"], p["mean_span"]), settings, write)
