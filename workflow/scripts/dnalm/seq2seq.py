"""Sequence to sequence with the enbed encoder-decoder: noisy-read → true-sequence pairs, generation, edit distances.

The building blocks of error correction by the decoder (study 4): the encoder reads a noisy read (`dnalm.seqerrors`
simulates it on a genome window), the decoder writes the true sequence.

- Pairs (`encode_pairs`): input ids are the noisy read's bases (`tokenize_enbed.encode_codes`, no `</s>`, as the
  encoder reads in pretraining); labels are the true sequence's base ids, cut to `width` bases, then `</s>`, padded
  with -100 (ignored by the loss) to `width + 1` tokens. A true sequence shorter than the width (the simulator's
  rare N padding, or a read with insertions covering fewer true bases) keeps its length: the decoder learns where it
  ends. A true sequence longer than the width is trimmed to it (a read with deletions covers more true bases; the
  model restores the first `width`).
- Training is teacher forcing: `LongT5ForConditionalGeneration(input_ids, labels)` shifts the labels right after
  the start token `<pad>` and returns the mean cross-entropy over the label tokens (`teacher_forcing_loss`).
- Generation (`generate`) is greedy or beam search (`check_generation`: `strategy`, `num_beams`, `max_length`),
  decoded to bases up to the first `</s>` (`decode_bases`).
- Edit distance (`levenshtein`) is the Levenshtein distance (unit cost substitution, insertion, deletion) by the
  row dynamic programme, each row in numpy; `correction_metrics` compares before (noisy vs true) and after
  (output vs true) per window.

Not yet a task type: no `tasks.<id>.type: seq2seq` in the workflow (see docs/seq2seq.md).
"""

from __future__ import annotations

import numpy as np

from dnalm import tokenize_enbed

#: Generation strategies of `check_generation`.
STRATEGIES = ("greedy", "beam")
#: Label id the loss ignores (transformers' convention).
IGNORE = -100


def levenshtein(a, b) -> int:
    """Levenshtein distance between two sequences (strings or 1-d integer arrays), unit costs.

    Each row of the dynamic programme is computed in numpy: with t[j] = min(above + 1, diagonal + mismatch), the
    insertion chain row[j] = min(t[j], row[j-1] + 1) is j + cumulative min of (t[k] − k).
    """
    a = np.frombuffer(a.encode(), np.uint8) if isinstance(a, str) else np.asarray(a)
    b = np.frombuffer(b.encode(), np.uint8) if isinstance(b, str) else np.asarray(b)
    if len(a) < len(b):
        a, b = b, a
    if len(b) == 0:
        return len(a)
    j = np.arange(len(b) + 1)
    row = j.copy()
    for i, x in enumerate(a, start=1):
        t = np.empty_like(row)
        t[0] = i
        t[1:] = np.minimum(row[1:] + 1, row[:-1] + (b != x))
        row = np.minimum.accumulate(t - j) + j
    return int(row[-1])


def encode_pairs(noisy: list[np.ndarray], true: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Input ids (B, width) of noisy reads and labels (B, width + 1) of their true sequences (module docstring).

    Args:
        noisy: Base codes (A0 C1 G2 T3 N4) of each noisy read, `width` long (`NoisyRead.noisy`).
        true: Base codes of each read's true sequence (`NoisyRead.true`), any length.
        width: Bases per read.
    """
    if len(noisy) != len(true):
        raise ValueError(f"{len(noisy)} noisy reads but {len(true)} true sequences")
    ids = np.full((len(noisy), width), tokenize_enbed.PAD, dtype=np.int64)
    labels = np.full((len(noisy), width + 1), IGNORE, dtype=np.int64)
    for i, (x, y) in enumerate(zip(noisy, true, strict=True)):
        if len(x) != width:
            raise ValueError(f"noisy read {i} has {len(x)} bases, not the width {width}")
        ids[i] = tokenize_enbed.encode_codes(np.asarray(x))
        y = np.asarray(y)[:width]
        labels[i, : len(y)] = tokenize_enbed.encode_codes(y)
        labels[i, len(y)] = tokenize_enbed.EOS
    return ids, labels


def teacher_forcing_loss(model, input_ids, labels):
    """Mean cross-entropy of the decoder over the label tokens (true bases and `</s>`), the decoder reading the
    labels shifted right (teacher forcing)."""
    return model(input_ids=input_ids, labels=labels).loss


def check_generation(setting: dict, where: str = "generation") -> dict:
    """The generation setting with defaults (`strategy: greedy`, `num_beams: 4` for beam, `max_length: null`: the
    width + 1), after checking it; errors name the key.

    Raises:
        ValueError: An unknown key or strategy, `num_beams` < 2 with beam (or ≠ 1 with greedy), or a `max_length`
            that is not a positive integer.
    """
    s = dict(setting or {})
    unknown = sorted(set(s) - {"strategy", "num_beams", "max_length"})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: strategy, num_beams, max_length")
    strategy = s.get("strategy", "greedy")
    if strategy not in STRATEGIES:
        raise ValueError(f"{where}.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    beams = s.get("num_beams", 4 if strategy == "beam" else 1)
    if not isinstance(beams, int) or isinstance(beams, bool) or beams < 1:
        raise ValueError(f"{where}.num_beams: {beams!r} is not a positive integer")
    if strategy == "beam" and beams < 2:
        raise ValueError(f"{where}.num_beams: beam search needs at least 2 beams (got {beams}); or use greedy")
    if strategy == "greedy" and beams != 1:
        raise ValueError(f"{where}.num_beams: greedy decoding keeps 1 beam (got {beams}); set strategy: beam")
    length = s.get("max_length")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 1):
        raise ValueError(f"{where}.max_length: {length!r} is not a positive integer (or null: the width + 1)")
    return {"strategy": strategy, "num_beams": beams, "max_length": length}


def generate(model, input_ids, setting: dict) -> list[str]:
    """The decoded bases of each input (`decode_bases`), generated with the setting (`check_generation`); the model's
    train/eval mode is restored."""
    import torch

    s = check_generation(setting)
    max_new = s["max_length"] or input_ids.shape[1] + 1
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, max_new_tokens=max_new, do_sample=False, num_beams=s["num_beams"])
    finally:
        model.train(was_training)
    return [decode_bases(row[1:]) for row in out.cpu().numpy()]  # after the start token <pad>


def decode_bases(ids) -> str:
    """The bases of generated ids up to the first `</s>` (or the end); other specials and sentinels read as N."""
    out = []
    for i in np.asarray(ids).tolist():
        if i == tokenize_enbed.EOS:
            break
        k = i - tokenize_enbed.BASE_START
        out.append(tokenize_enbed.BASES[k] if 0 <= k < len(tokenize_enbed.BASES) else "N")
    return "".join(out)


def correction_metrics(noisy: list[str], true: list[str], output: list[str]) -> dict:
    """Per window the edit distance before (noisy vs true) and after (output vs true), and their summary.

    Returns:
        `before` and `after` (arrays per window), `mean_before`, `mean_after`, `exact_before` and `exact_after`
        (fractions of windows equal to the true sequence), `n_windows`.
    """
    if not len(noisy) == len(true) == len(output):
        raise ValueError(f"{len(noisy)} noisy, {len(true)} true and {len(output)} output sequences")
    before = np.array([levenshtein(x, y) for x, y in zip(noisy, true, strict=True)], dtype=np.int64)
    after = np.array([levenshtein(x, y) for x, y in zip(output, true, strict=True)], dtype=np.int64)
    n = len(true)
    return {
        "before": before,
        "after": after,
        "mean_before": float(before.mean()) if n else float("nan"),
        "mean_after": float(after.mean()) if n else float("nan"),
        "exact_before": float((before == 0).mean()) if n else float("nan"),
        "exact_after": float((after == 0).mean()) if n else float("nan"),
        "n_windows": n,
    }


def check_arch(task: str, model: str, arch: str) -> None:
    """Only the encoder-decoder generates: a sequence-to-sequence task accepts `arch: enbed` models only."""
    if arch != "enbed":
        raise ValueError(
            f"models.{model}.arch: {arch!r} cannot train on sequence-to-sequence task {task}: only the "
            "encoder-decoder (arch: enbed) generates sequences; use arch: enbed or leave the task out "
            f"of models.{model}.tasks"
        )
