"""Masked-LM pretraining of a BERT encoder on genome windows, resumable after a kill to the same final weights.

Data: windows of `window` bp tiled with `stride` over the train (and validation) chromosomes of each genome, each
with its genome's species token (`[CLS] <species> tokens [SEP]`). Windows with a base other than A, C, G, T are
dropped and counted. Only an index of (genome, chromosome, start) is held in memory; every step reads its batch
from the FASTAs with pyfaidx, sampled (with replacement) by a generator seeded with (seed, step).

Masking (`mask_tokens`): `mask_prob` of the body tokens are selected; each selected token becomes `[MASK]` (80%),
a random body token (10%) or stays (10%), decided per token as in BERT and DNABERT, and only selected tokens are
predicted. The specials and the species token are never selected. With overlapping 6-mers a single masked k-mer
could be read off its neighbours (which share five of its six letters), so, as in DNABERT, 6-mer tokens are
masked in spans of 6 contiguous tokens: span starts are drawn with probability q = 1 − (1 − mask_prob)^(1/6) at
every position from 5 before the body to its end, so every body token is selected with probability mask_prob.
Nucleotide tokens are selected one by one.

Resuming: `last.ckpt` (model, optimizer, history, fingerprint of the run) is written atomically after every
evaluation, every `checkpoint_minutes` of wall time in between (with the losses of the steps since the last
evaluation), and on SIGTERM/SIGUSR1 before stopping (see `dnalm.checkpoint`); the batch, the masks and the dropout
of step s depend only on (seed, s), so a run killed at any point and rerun ends with the same weights and history as
an uninterrupted one (on the CPU).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx
import torch

from dnalm import tokenize
from dnalm.io import read_fai
from dnalm.models.lm import bert_config, quiet_transformers
from dnalm.store import encode
from dnalm.checkpoint import Checkpointer, previous, save_atomic
from dnalm.models.dropout import use_fast_dropout
from dnalm.training import autocast, load_resume, pick_device, resolve_precision

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["step", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
#: Bases read per FASTA access while indexing windows.
_CHUNK = 1 << 20
#: Stream id of the validation masks (train steps use their step number).
_VAL_STREAM = 2**31 - 1


@dataclass
class WindowIndex:
    """Windows of one split: genome number, chromosome (index into `chrom_names`) and start of each window.

    `dropped` counts the windows left out for a base other than A, C, G, T.
    """

    genome: np.ndarray
    chrom: np.ndarray
    start: np.ndarray
    chrom_names: list[str]
    dropped: int

    def __len__(self) -> int:
        return len(self.start)


def corpus_genomes(genomes: list[dict], gate: str | Path | None = None) -> list[dict]:
    """The pretraining corpus in `pretrain_lm`'s form, from the workflow's genome list and the QC gate.

    Args:
        genomes: Dicts with `id` (species id of the config), `species` (token), `fasta`, `fai`, `exclude`
            (chromosomes never trained on: the tasks' validation and test chromosomes) and `val` (validation ones).
        gate: The QC gate's list of admitted species ids (one per line), or None to take every genome.

    Returns:
        Dicts with `species`, `fasta`, `train_chroms` (every chromosome of the index not excluded) and `val_chroms`.

    Raises:
        ValueError: when the gate admits none of the genomes.
    """
    if gate is not None:
        admitted = set(Path(gate).read_text().split())
        kept = [g for g in genomes if g["id"] in admitted]
        if not kept:
            raise ValueError(f"the QC gate ({gate}) admitted none of the candidate genomes "
                             f"{[g['id'] for g in genomes]}; relax qc.thresholds or set pretrain.<name>.corpus")
        log.info("corpus: %d of %d genomes admitted by the QC gate: %s", len(kept), len(genomes),
                 ", ".join(g["id"] for g in kept))
        genomes = kept
    out = []
    for g in genomes:
        chroms = list(read_fai(g["fai"]))
        out.append({"id": g["id"], "species": g["species"], "fasta": g["fasta"],
                    "train_chroms": [c for c in chroms if c not in set(g["exclude"])],
                    "val_chroms": [c for c in g["val"] if c in chroms]})
    return out


def valid_starts(codes: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """The starts (offsets into `codes`) whose window holds only A, C, G, T."""
    bad = np.concatenate([[0], np.cumsum(codes >= 4, dtype=np.int64)])
    return starts[bad[starts + window] == bad[starts]]


def index_windows(genomes: list[dict], split: str, window: int, stride: int) -> WindowIndex:
    """Index the windows of one split (`train` or `val` chromosomes) of every genome, reading chunk by chunk.

    Args:
        genomes: Dicts with `species`, `fasta`, `train_chroms` and optionally `val_chroms`.
        split: `train` or `val`.
        window: Window length (bp).
        stride: Distance between window starts (bp).

    Returns:
        The index; `dropped` counts windows with a base other than ACGT.
    """
    parts, names, dropped = [], [], 0
    for g, genome in enumerate(genomes):
        fasta = pyfaidx.Fasta(genome["fasta"], as_raw=True, sequence_always_upper=True)
        try:
            for chrom in genome.get(f"{split}_chroms") or []:
                if chrom not in fasta:
                    raise ValueError(f"chromosome {chrom!r} ({split}) is not in {genome['fasta']}")
                length = len(fasta[chrom])
                names.append(chrom)
                for lo in range(0, max(length - window + 1, 0), _CHUNK):
                    starts = np.arange(lo + (-lo) % stride, min(lo + _CHUNK, length - window + 1), stride)
                    codes = encode(fasta[chrom][lo : min(lo + _CHUNK + window - 1, length)])
                    kept = valid_starts(codes, starts - lo, window) + lo
                    dropped += len(starts) - len(kept)
                    kept = _drop_excluded(kept, genome, chrom, split)
                    parts.append((np.full(len(kept), g), np.full(len(kept), len(names) - 1), kept))
            if split == "val":
                for chrom, starts in (genome.get("val_starts") or {}).items():
                    names.append(chrom)
                    parts.append((np.full(len(starts), g), np.full(len(starts), len(names) - 1),
                                  np.asarray(starts, dtype=np.int64)))
        finally:
            fasta.close()
    if not parts:
        return WindowIndex(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), names, dropped)
    g, c, s = (np.concatenate(x) for x in zip(*parts))
    return WindowIndex(g.astype(np.int64), c.astype(np.int32), s.astype(np.int64), names, dropped)


def _drop_excluded(starts: np.ndarray, genome: dict, chrom: str, split: str) -> np.ndarray:
    """Train window starts without those `exclude_windows` listed for the genome (val windows are kept)."""
    excluded = (genome.get("exclude_starts") or {}).get(chrom)
    if split != "train" or not excluded:
        return starts
    return starts[~np.isin(starts, np.asarray(excluded, dtype=np.int64))]


def exclude_windows(genomes: list[dict], excluded_tsv: str | Path) -> None:
    """Attach the train windows the homology filter excludes (rule pretrain_homology's table) to the genomes.

    Each genome gets `exclude_starts`: chromosome → sorted window starts, which `index_windows` leaves out of the
    train split, and `val_starts`, those wholly inside a fold task's val fold (reason `val_fold`), which it adds to
    the val split. The table must come from the same window length and stride.
    """
    table = pd.read_csv(excluded_tsv, sep="\t", dtype={"genome": str, "chrom": str, "reason": str})
    for genome in genomes:
        rows = table[table["genome"] == genome.get("id")]
        genome["exclude_starts"] = {c: sorted(int(x) for x in g["start"]) for c, g in rows.groupby("chrom")}
        val = rows[rows["reason"] == "val_fold"]
        genome["val_starts"] = {c: sorted(int(x) for x in g["start"]) for c, g in val.groupby("chrom")}
    log.info("homology filter: %d corpus windows excluded (%s)", len(table), excluded_tsv)


class WindowReader:
    """Reads windows of an index as base codes, opening each genome's FASTA lazily on first use."""

    def __init__(self, genomes: list[dict], window: int):
        self.paths = [g["fasta"] for g in genomes]
        self.window = window
        self.handles: dict[int, pyfaidx.Fasta] = {}

    def codes(self, index: WindowIndex, rows: np.ndarray) -> np.ndarray:
        """(len(rows), window) uint8 codes of the given rows of the index."""
        out = np.empty((len(rows), self.window), dtype=np.uint8)
        for i, row in enumerate(rows):
            g = int(index.genome[row])
            if g not in self.handles:
                self.handles[g] = pyfaidx.Fasta(self.paths[g], as_raw=True, sequence_always_upper=True)
            start = int(index.start[row])
            chrom = index.chrom_names[index.chrom[row]]
            out[i] = encode(self.handles[g][chrom][start : start + self.window])
        return out

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()


def mask_tokens(ids: np.ndarray, kind: str, mask_prob: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MLM inputs and labels of full inputs `[CLS] <species> body [SEP]` (B, T); see the module docstring.

    Args:
        ids: Token ids (B, T); positions 0, 1 and T-1 are `[CLS]`, species and `[SEP]`.
        kind: Tokenizer kind (6-mers are masked in spans of 6).
        mask_prob: Fraction of body tokens selected.
        rng: Random generator.

    Returns:
        (inputs, labels): labels are the original ids at selected positions and -100 elsewhere.
    """
    body = ids[:, 2:-1]
    batch, n = body.shape
    if tokenize.check_kind(kind) == "kmer6_species":
        q = 1 - (1 - mask_prob) ** (1 / tokenize.K)
        starts = rng.random((batch, n + tokenize.K - 1)) < q
        windows = np.lib.stride_tricks.sliding_window_view(starts, tokenize.K, axis=1)
        selected = windows.any(axis=-1)
        n_body = 4**tokenize.K
    else:
        selected = rng.random((batch, n)) < mask_prob
        n_body = 4
    if not selected.any():  # a loss over no tokens is undefined: select one
        selected[rng.integers(batch), rng.integers(n)] = True
    action = rng.random((batch, n))
    replaced = np.where(action < 0.8, tokenize.MASK,
                        np.where(action < 0.9, rng.integers(0, n_body, (batch, n)) + len(tokenize.SPECIALS), body))
    inputs, labels = ids.copy(), np.full_like(ids, -100)
    inputs[:, 2:-1] = np.where(selected, replaced, body)
    labels[:, 2:-1] = np.where(selected, body, -100)
    return inputs, labels


def batch_ids(reader: WindowReader, index: WindowIndex, rows: np.ndarray, kind: str,
              species_ids: np.ndarray) -> np.ndarray:
    """Full token ids `[CLS] <species> body [SEP]` (B, T) of index rows."""
    body = tokenize.encode(reader.codes(index, rows), kind)
    n = len(rows)
    cls, sep = np.full((n, 1), tokenize.CLS), np.full((n, 1), tokenize.SEP)
    return np.concatenate([cls, species_ids[index.genome[rows]][:, None], body, sep], axis=1)


def learning_rate(step: int, steps: int, lr: float, warmup: float) -> float:
    """Linear warm-up over the first `warmup` fraction of steps, then linear decay to 0 (step counts from 0)."""
    n_warm = max(1, round(warmup * steps))
    if step < n_warm:
        return lr * (step + 1) / n_warm
    return lr * max(0.0, (steps - step) / max(1, steps - n_warm))


def run_fingerprint(genomes: list[dict], settings: dict) -> str:
    """Hash of everything that defines a pretraining run (genome files by path and size), as in `dnalm.training`."""
    files = [{**g, "size": Path(g["fasta"]).stat().st_size} for g in genomes]
    data = {"genomes": files, "settings": settings}
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def masked_logits(model, inputs: np.ndarray, labels: np.ndarray, device: torch.device,
                  precision: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MLM logits (N, vocab) at the selected positions only (fp32), and their labels (N,).

    The same loss as `BertForMaskedLM(labels=…)`, but the vocabulary projection runs on the ~15% selected tokens
    instead of all of them (with 4,101 tokens it is a large share of the step otherwise). `precision` as
    `dnalm.training.autocast` takes it (None: the rule of inference).
    """
    labels_t = torch.from_numpy(labels).to(device)
    chosen = labels_t != -100
    with autocast(device, precision):
        hidden = model.bert(input_ids=torch.from_numpy(inputs).to(device)).last_hidden_state
        logits = model.cls(hidden[chosen])
    return logits.float(), labels_t[chosen]


@torch.no_grad()
def evaluate(model, reader: WindowReader, index: WindowIndex, rows: np.ndarray, *, kind: str,
             species_ids: np.ndarray, mask_prob: float, batch_size: int, seed: int,
             device: torch.device) -> tuple[float, float]:
    """Masked-token loss and accuracy on fixed validation windows with fixed masks; restores the model's mode."""
    was_training = model.training
    model.eval()
    loss_sum, correct, total = 0.0, 0, 0
    try:
        for b, lo in enumerate(range(0, len(rows), batch_size)):
            ids = batch_ids(reader, index, rows[lo : lo + batch_size], kind, species_ids)
            inputs, labels = mask_tokens(ids, kind, mask_prob, np.random.default_rng([seed, _VAL_STREAM, b]))
            logits, targets = masked_logits(model, inputs, labels, device)
            loss_sum += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            correct += int((logits.argmax(-1) == targets).sum())
            total += len(targets)
    finally:
        model.train(was_training)
    return (loss_sum / total, correct / total) if total else (float("nan"), float("nan"))


def pretrain_lm(genomes: list[dict], out_dir: str, *, tokenizer: str, species: list[str], window: int, stride: int,
                layers: int, hidden: int, heads: int, intermediate: int | None = None, steps: int, batch_size: int,
                lr: float, warmup: float = 0.05, mask_prob: float = 0.15, dropout: float = 0.1,
                attention_dropout: float = 0.1, eval_every: int = 100, val_windows: int = 256, seed: int = 0,
                checkpoint_minutes: float | None = 30.0, precision: str = "auto", threads: int = 1,
                device: str | None = None) -> dict:
    """Pretrain a `BertForMaskedLM` and write it as a Hugging Face directory, resuming from `out_dir/last.ckpt`.

    Writes `config.json`, `model.safetensors`, tokenizer files (see `dnalm.tokenize.save_tokenizer`),
    `history.tsv` (one row per evaluation), `pretrain.json` (the summary) and `last.ckpt` (resumable state).

    Args:
        genomes: Dicts with `species` (a name in `species`), `fasta`, `train_chroms`, `val_chroms` (optional).
        out_dir: Output directory.
        tokenizer: `kmer6_species` or `nucleotide`.
        species: Species of the vocabulary, in token order (ids from 4101 for 6-mers, 9 for nucleotides).
        window: Window length (bp).
        stride: Distance between window starts (bp).
        layers: Encoder layers.
        hidden: Hidden size.
        heads: Attention heads.
        intermediate: FFN size (default 4 × hidden).
        steps: Optimiser steps.
        batch_size: Windows per step.
        lr: Peak learning rate (fused AdamW, weight decay 0.01).
        warmup: Fraction of steps of linear warm-up; then linear decay to 0.
        mask_prob: Fraction of body tokens selected for prediction.
        dropout: Dropout of hidden states (BERT's `hidden_dropout_prob`).
        attention_dropout: Dropout of attention weights (BERT's `attention_probs_dropout_prob`); 0 lets the CPU
            use its fused attention kernel and saves ~15% of a step.
        eval_every: Steps between evaluations and checkpoints.
        val_windows: Validation windows (a fixed random subset of the val chromosomes' windows).
        seed: Seed of initialisation, batches, masks and dropout.
        checkpoint_minutes: Wall time between checkpoints within an evaluation interval (None: only at
            evaluations; 0: after every step). Does not change the result.
        precision: `auto`, `fp32` or `bf16` (autocast of the training steps; see
            `dnalm.training.resolve_precision`); validation runs in the precision of inference.
        threads: CPU threads for torch.
        device: Device name, or None to choose automatically.

    Returns:
        The summary written to `pretrain.json`.
    """
    from transformers import BertForMaskedLM

    torch.set_num_threads(threads)
    dev = pick_device(device)
    precision = resolve_precision(precision, dev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = tokenize.vocabulary(tokenizer, species)
    species_ids = np.array([tokenize.species_id(vocab, g["species"]) for g in genomes], dtype=np.int64)
    n_tokens = (window - tokenize.K + 1 if tokenizer == "kmer6_species" else window) + 3
    arch = {"layers": layers, "hidden": hidden, "heads": heads, "intermediate": intermediate,
            "max_positions": max(512, n_tokens)}
    settings = {"tokenizer": tokenizer, "species": list(species), "window": window, "stride": stride, **arch,
                "steps": steps, "batch_size": batch_size, "lr": lr, "warmup": warmup, "mask_prob": mask_prob,
                "dropout": dropout, "attention_dropout": attention_dropout, "eval_every": eval_every,
                "val_windows": val_windows, "seed": seed, "precision": precision}
    train_index = index_windows(genomes, "train", window, stride)
    val_index = index_windows(genomes, "val", window, stride)
    if not len(train_index):
        raise ValueError(f"no {window} bp training windows without N in the train chromosomes of the genomes")
    log.info("windows: %d train (%d with non-ACGT bases dropped), %d val (%d dropped)", len(train_index),
             train_index.dropped, len(val_index), val_index.dropped)
    val_rows = np.sort(np.random.default_rng([seed, _VAL_STREAM]).permutation(len(val_index))[:val_windows])

    torch.manual_seed(seed)
    overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": attention_dropout}
    model = use_fast_dropout(BertForMaskedLM(bert_config(len(vocab), arch, overrides)).to(dev))
    log.info("BERT %d layers × hidden %d on %s, %s", layers, hidden, dev, precision)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, fused=True)
    fp = run_fingerprint(genomes, settings)
    last = out / "last.ckpt"
    state = _load_state(last, fp, model, optimizer) or {"step": 0, "history": [], "losses": []}
    reader = WindowReader(genomes, window)
    context = {"reader": reader, "kind": tokenizer, "species_ids": species_ids, "mask_prob": mask_prob,
               "seed": seed, "device": dev, "precision": precision}

    def save(now: dict) -> None:
        save_atomic({**now, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "fingerprint": fp},
                    last, keep_previous=True)

    try:
        with Checkpointer(None, checkpoint_minutes) as clock:

            def on_step(now: dict) -> None:
                if clock.step():
                    save(now)
                    clock.saved(f"{last} (step {now['step']}, between evaluations)")

            while state["step"] < steps:
                state = _train_until_eval(model, optimizer, state, train_index, val_index, val_rows, steps=steps,
                                          lr=lr, warmup=warmup, batch_size=batch_size, eval_every=eval_every,
                                          on_step=on_step, **context)
                save(state)
                clock.saved(f"{last} (step {state['step']})")
    finally:
        reader.close()
    previous(last).unlink(missing_ok=True)  # the fallback is not needed once the run is complete
    corpus = [{"genome": g.get("id", g["fasta"]), "species": g["species"], "train_chroms": len(g["train_chroms"]),
               "val_chroms": len(g.get("val_chroms") or [])} for g in genomes]
    return _write_outputs(model, vocab, state, out, {**settings, "corpus": corpus}, train_index, val_index,
                          len(val_rows))


def _train_until_eval(model, optimizer, state: dict, train_index: WindowIndex, val_index: WindowIndex,
                      val_rows: np.ndarray, *, steps: int, lr: float, warmup: float, batch_size: int,
                      eval_every: int, reader: WindowReader, kind: str, species_ids: np.ndarray, mask_prob: float,
                      seed: int, device: torch.device, precision: str = "fp32",
                      on_step: Callable[[dict], None] | None = None) -> dict:
    """Train from `state['step']` to the next evaluation step, evaluate, and return the new state.

    `on_step` gets the state after every step (step, history, the interval's losses so far) and may save it.
    """
    t0 = time.perf_counter()
    model.train()
    losses = list(state.get("losses") or [])
    step = state["step"]
    evaluated = state["history"][-1]["step"] if state["history"] else 0
    stop = min(steps, evaluated + eval_every)
    while step < stop:
        rng = np.random.default_rng([seed, step])
        ids = batch_ids(reader, train_index, rng.integers(0, len(train_index), batch_size), kind, species_ids)
        inputs, labels = mask_tokens(ids, kind, mask_prob, rng)
        torch.manual_seed(seed * 1000003 + step)  # dropout of this step
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr, warmup)
        logits, targets = masked_logits(model, inputs, labels, device, precision)
        loss = torch.nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if on_step is not None:
            on_step({"step": step, "history": state["history"], "losses": list(losses)})
    val_loss, val_acc = evaluate(model, reader, val_index, val_rows, kind=kind, species_ids=species_ids,
                                 mask_prob=mask_prob, batch_size=batch_size, seed=seed, device=device)
    row = {"step": step, "train_loss": float(np.mean(losses)), "val_loss": val_loss, "val_accuracy": val_acc,
           "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
    log.info("step %d: train loss %.4f, val loss %.4f, val masked accuracy %.4f, %.1f s", step, row["train_loss"],
             val_loss, val_acc, row["seconds"])
    return {"step": step, "history": state["history"] + [row], "losses": []}


def _load_state(path: Path, fp: str, model, optimizer) -> dict | None:
    """Resume state of the same run from `last.ckpt`, or None (absent, unreadable, or another run's)."""
    ckpt = load_resume(path, fp, model, optimizer)
    return None if ckpt is None else {"step": ckpt["step"], "history": ckpt["history"],
                                      "losses": ckpt.get("losses", [])}


def _write_outputs(model, vocab: dict, state: dict, out: Path, settings: dict, train_index: WindowIndex,
                   val_index: WindowIndex, n_val: int) -> dict:
    """Write the Hugging Face directory, history.tsv and pretrain.json; return the summary."""
    with quiet_transformers():
        model.cpu().save_pretrained(str(out))
    tokenize.save_tokenizer(vocab, out, max_length=settings["max_positions"])
    pd.DataFrame(state["history"], columns=HISTORY_COLUMNS).to_csv(out / "history.tsv", sep="\t", index=False)
    last = state["history"][-1] if state["history"] else {}
    summary = {**settings, "parameters": sum(p.numel() for p in model.parameters()),
               "train_windows": len(train_index), "dropped_train_windows": train_index.dropped,
               "val_windows_available": len(val_index), "dropped_val_windows": val_index.dropped,
               "val_windows_used": n_val, "final_val_loss": last.get("val_loss", math.nan),
               "final_val_accuracy": last.get("val_accuracy", math.nan), "steps_run": state["step"]}
    (out / "pretrain.json").write_text(json.dumps(summary, indent=2))
    return summary
