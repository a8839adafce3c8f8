"""Masked-LM pretraining on genome windows, resumable after a kill to the same final weights.

One loop for every architecture (`pretrain.<name>.arch`): `bert` (a BERT encoder on tokens, `bert_setup`), `unet`
(the transformer U-Net on bases, `dnalm.pretrain_unet`) and `enbed` (the byte-level encoder-decoder by span
corruption, `dnalm.pretrain_enbed`); each gives a `Setup`: its model, its `Objective` (masked inputs of corpus rows,
logits at the predicted positions) and how its directory is written. Below, the BERT path.

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

Data-parallel pretraining (`devices` × `nodes` > 1, `dnalm.distributed`, as `dnalm.training` does it): every process
draws and masks the whole global batch of step s from (seed, s) — reading and masking are cheap next to the model —
and runs its share of the rows (rank, rank + world, …) in micro-batches of at most `micro_batch`, each loss summed over
its masked tokens and divided by the batch's masked tokens over all processes, so the gradient is the whole batch's.
Validation batches are spread over the processes; rank 0 alone writes checkpoints and the model directory, whose
state does not depend on the number of processes (a run resumes with another number of them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from dnalm import distributed, tokenize
from dnalm.checkpoint import Checkpointer, load_resume, previous, run_lock, save_atomic
from dnalm.corpus import WindowIndex, WindowReader, index_windows
from dnalm.device import autocast, pick_device, resolve_precision, set_threads
from dnalm.distributed import SINGLE, Group, all_sum, checkpoint_due, gather
from dnalm.jobs import world_size
from dnalm.models.backbones import bert_config, checkpoint_activations, quiet_transformers
from dnalm.models.dropout import use_fast_dropout
from dnalm.pretrain_setup import TRAIN_KEYS, Objective, Setup
from dnalm.schema import pretrain_block

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["step", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
#: Stream id of the validation masks (train steps use their step number).
_VAL_STREAM = 2**31 - 1


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


def bert_objective(reader: WindowReader, kind: str, species_ids: np.ndarray, mask_prob: float) -> Objective:
    """BERT's objective: token ids `[CLS] <species> body [SEP]` masked by `mask_tokens`, `masked_logits`."""

    def batch(index: WindowIndex, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return mask_tokens(batch_ids(reader, index, rows, kind, species_ids), kind, mask_prob, rng)

    return Objective(batch, masked_logits)


@torch.no_grad()
def evaluate(model, objective: Objective, index: WindowIndex, rows: np.ndarray, *, batch_size: int, seed: int,
             device: torch.device, group: Group = SINGLE) -> tuple[float, float]:
    """Masked-token loss and accuracy on fixed validation windows with fixed masks; restores the model's mode.

    In a data-parallel run each process takes every world-th batch and the sums are gathered in batch order."""
    was_training = model.training
    model.eval()
    sums = []
    try:
        for b, lo in enumerate(range(0, len(rows), batch_size)):
            if b % group.world != group.rank:
                continue
            rng = np.random.default_rng([seed, _VAL_STREAM, b])
            inputs, labels = objective.batch(index, rows[lo : lo + batch_size], rng)
            logits, targets = objective.logits(model, inputs, labels, device)
            sums.append((b, torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item(),
                         int((logits.argmax(-1) == targets).sum()), len(targets)))
    finally:
        model.train(was_training)
    loss_sum, correct, total = 0.0, 0, 0
    for _, loss, right, n in sorted(row for rows_ in gather(sums, group) for row in rows_):
        loss_sum, correct, total = loss_sum + loss, correct + right, total + n
    return (loss_sum / total, correct / total) if total else (float("nan"), float("nan"))


def pretrain_lm(genomes: list[dict], out_dir: str, spec: dict, *, species: list[str], threads: int = 1,
                device: str | None = None, log_file: str | None = None) -> dict:
    """Pretrain by masked LM and write the model directory, resuming from `out_dir/last.ckpt`.

    arch `bert` writes a `BertForMaskedLM` as a Hugging Face directory (`config.json`, `model.safetensors`, tokenizer
    files, see `dnalm.tokenize.save_tokenizer`); arch `unet` a U-Net directory (`dnalm.pretrain_unet`); arch
    `enbed` a `LongT5ForConditionalGeneration` directory (`dnalm.pretrain_enbed`). All also write `history.tsv` (one row per evaluation), `pretrain.json` (the summary) and `last.ckpt` (resumable state).
    Holds `out_dir`'s lock throughout (`dnalm.checkpoint.run_lock`): a second pretraining of the directory waits.

    Args:
        genomes: Dicts with `species` (a name in `species`), `fasta`, `train_chroms`, `val_chroms` (optional).
        out_dir: Output directory.
        spec: The `pretrain.<name>` config block (keys as documented in the schema, which also gives the defaults of
            missing ones; `corpus` and `homology` are not read here): arch, tokenizer, window, stride, layers, hidden,
            heads, intermediate, unet, steps, batch_size, lr (peak, fused AdamW, weight decay 0.01), warmup (linear,
            then linear decay to 0), mask_prob, dropout, attention_dropout (0 lets the CPU use its fused attention
            kernel), eval_every, val_windows, seed, precision (`dnalm.device.resolve_precision`; validation runs in
            the precision of inference), checkpoint_minutes (None: only at evaluations; 0: every step).
        species: Species of the vocabulary, in token order (ids from 4101 for 6-mers, 9 for nucleotides; the
            U-Net's species embedding rows).
        threads: CPU threads for torch (of all processes together).
        device: Device name, or None to choose automatically.
        log_file: The job's log, which the processes of a data-parallel run append to.

    Returns:
        The summary written to `pretrain.json`.
    """
    p = pretrain_block(spec)
    devices, nodes = world_size(p)
    with run_lock(out_dir):
        if devices * nodes > 1:
            kwargs = {"genomes": genomes, "out_dir": str(out_dir), "p": p, "species": species, "device": device}
            return distributed.launch("dnalm.pretrain:pretrain_rank", kwargs, devices=devices, nodes=nodes,
                                      threads=threads, run_dir=out_dir, log_file=log_file)
        set_threads(threads)
        return _pretrain(genomes, Path(out_dir), p, species=species, dev=pick_device(device))


def pretrain_rank(genomes: list[dict], out_dir: str, p: dict, *, species: list[str], device: str | None) -> dict:
    """One process of a data-parallel `pretrain_lm` (started by `dnalm.distributed.launch`, which holds the lock)."""
    group = distributed.current()
    set_threads(torch.get_num_threads())
    return _pretrain(genomes, Path(out_dir), p, species=species, dev=distributed.device(group, device), group=group)


def bert_setup(genomes: list[dict], p: dict, species: list[str], reader: WindowReader, dev: torch.device) -> Setup:
    """A `BertForMaskedLM` of the spec's size with a vocabulary of the tokenizer and every species."""
    from transformers import BertForMaskedLM

    tokenizer, window = p["tokenizer"], p["window"]
    vocab = tokenize.vocabulary(tokenizer, species)
    species_ids = np.array([tokenize.species_id(vocab, g["species"]) for g in genomes], dtype=np.int64)
    n_tokens = (window - tokenize.K + 1 if tokenizer == "kmer6_species" else window) + 3
    arch = {"layers": p["layers"], "hidden": p["hidden"], "heads": p["heads"], "intermediate": p["intermediate"],
            "max_positions": max(512, n_tokens)}
    settings = {"tokenizer": tokenizer, "species": list(species), "window": window, "stride": p["stride"], **arch,
                **{k: p[k] for k in (*TRAIN_KEYS, "dropout", "attention_dropout")}}
    overrides = {"hidden_dropout_prob": p["dropout"], "attention_probs_dropout_prob": p["attention_dropout"]}
    model = use_fast_dropout(BertForMaskedLM(bert_config(len(vocab), arch, overrides)).to(dev))
    log.info("BERT %d layers × hidden %d on %s", p["layers"], p["hidden"], dev)

    def write(out: Path, _settings: dict) -> None:
        with quiet_transformers():
            model.cpu().save_pretrained(str(out))
        tokenize.save_tokenizer(vocab, out, max_length=arch["max_positions"])

    return Setup(model, bert_objective(reader, tokenizer, species_ids, p["mask_prob"]), settings, write)


def _pretrain(genomes: list[dict], out: Path, p: dict, *, species: list[str], dev: torch.device,
              group: Group = SINGLE) -> dict:
    """`pretrain_lm` once the directory is locked, with the spec's missing keys filled from the schema."""
    precision = resolve_precision(p["precision"], dev)
    window, stride, seed = p["window"], p["stride"], p["seed"]
    train_index = index_windows(genomes, "train", window, stride)
    val_index = index_windows(genomes, "val", window, stride)
    if not len(train_index):
        raise ValueError(f"no {window} bp training windows without N in the train chromosomes of the genomes")
    log.info("windows: %d train (%d with non-ACGT bases dropped), %d val (%d dropped)", len(train_index),
             train_index.dropped, len(val_index), val_index.dropped)
    val_rows = np.sort(np.random.default_rng([seed, _VAL_STREAM]).permutation(len(val_index))[:p["val_windows"]])
    reader = WindowReader(genomes, window)
    try:
        torch.manual_seed(seed)
        if p["arch"] == "unet":
            from dnalm.pretrain_unet import unet_setup

            def masked(kind: str, species_ids: np.ndarray) -> Callable:
                return bert_objective(reader, kind, species_ids, p["mask_prob"]).batch

            setup = unet_setup(genomes, p, species, masked, dev)
        elif p["arch"] == "enbed":
            from dnalm.pretrain_enbed import enbed_setup

            setup = enbed_setup(p, reader, dev)
        else:
            setup = bert_setup(genomes, p, species, reader, dev)
        settings = {**setup.settings, "precision": precision}
        state = _run(setup, out, p, run_fingerprint(genomes, settings), train_index, val_index, val_rows,
                     dev=dev, precision=precision, group=group)
    finally:
        reader.close()
    if not group.main:
        return {}
    previous(out / "last.ckpt").unlink(missing_ok=True)  # the fallback is not needed once the run is complete
    corpus = [{"genome": g.get("id", g["fasta"]), "species": g["species"], "train_chroms": list(g["train_chroms"]),
               "val_chroms": list(g.get("val_chroms") or [])} for g in genomes]
    settings = {**settings, "corpus": corpus}
    setup.write(out, settings)
    return _write_summary(setup.model, state, out, settings, train_index, val_index, len(val_rows))


class ObjectiveModel(nn.Module):
    """A masked-LM model and its objective's logits as one module, so DistributedDataParallel sees the forward pass."""

    def __init__(self, model: nn.Module, logits: Callable):
        super().__init__()
        self.model = model
        self.logits = logits

    def forward(self, inputs: np.ndarray, labels: np.ndarray, device: torch.device, precision: str | None):
        """(logits, targets) at the masked positions (`Objective.logits`)."""
        return self.logits(self.model, inputs, labels, device, precision)


def _run(setup: Setup, out: Path, p: dict, fp: str, train_index: WindowIndex, val_index: WindowIndex,
         val_rows: np.ndarray, *, dev: torch.device, precision: str, group: Group = SINGLE) -> dict:
    """The training loop from `last.ckpt` (if it is this run's) to `steps`, checkpointing; the final state."""
    model = setup.model
    log.info("masked LM with %d parameters on %s, %s; %d process(es)", sum(x.numel() for x in model.parameters()),
             dev, precision, group.world)
    if p.get("activation_checkpointing"):
        checkpoint_activations(model, p["arch"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=0.01, fused=True)
    last = out / "last.ckpt"
    state = _load_state(last, fp, model, optimizer) or {"step": 0, "history": [], "losses": []}
    parallel = distributed.wrap(ObjectiveModel(model, setup.objective.logits), group, dev)

    def save(now: dict) -> None:
        if group.main:
            save_atomic({**now, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "fingerprint": fp},
                        last, keep_previous=True)

    with Checkpointer(None, p["checkpoint_minutes"]) as clock:

        def on_step(now: dict) -> None:
            if checkpoint_due(clock, group):
                save(now)
                clock.saved(f"{last} (step {now['step']}, between evaluations)")

        while state["step"] < p["steps"]:
            state = _train_until_eval(parallel, optimizer, setup.objective, state, train_index, val_index, val_rows,
                                      steps=p["steps"], lr=p["lr"], warmup=p["warmup"], batch_size=p["batch_size"],
                                      eval_every=p["eval_every"], seed=p["seed"], device=dev, precision=precision,
                                      on_step=on_step, group=group, micro_batch=p.get("micro_batch"))
            save(state)
            checkpoint_due(clock, group)  # every process stops here if any was asked to
            clock.saved(f"{last} (step {state['step']})")
    return state


def pretrain_step(parallel: nn.Module, optimizer, inputs: np.ndarray, labels: np.ndarray, *, device: torch.device,
                  precision: str, group: Group = SINGLE, micro_batch: int | None = None) -> float:
    """One optimizer step on a global batch of masked inputs; returns its loss (mean over its masked tokens).

    This process takes rows rank, rank + world, … (one left without a row takes part with a row of weight 0) in
    micro-batches of at most `micro_batch`; each micro-batch's cross-entropy is summed over its masked tokens and
    divided by the whole batch's (times the world size, which DistributedDataParallel's averaging divides out).
    """
    chunks, empty = distributed.share(len(inputs), group, micro_batch)
    weights = [0 if empty else int((labels[c] != -100).sum()) for c in chunks]
    total = all_sum([float(sum(weights))], group)[0]
    optimizer.zero_grad(set_to_none=True)
    loss_sum = 0.0
    for i, (chunk, weight) in enumerate(zip(chunks, weights, strict=True)):
        with distributed.no_sync(parallel, last=i == len(chunks) - 1):
            logits, targets = parallel(inputs[chunk], labels[chunk], device, precision)
            summed = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
            (summed / total * group.world if weight else summed * 0.0).backward()
        loss_sum += summed.item() if weight else 0.0
    optimizer.step()
    return all_sum([loss_sum], group)[0] / total


def _train_until_eval(model, optimizer, objective: Objective, state: dict, train_index: WindowIndex,
                      val_index: WindowIndex, val_rows: np.ndarray, *, steps: int, lr: float, warmup: float,
                      batch_size: int, eval_every: int, seed: int, device: torch.device, precision: str = "fp32",
                      on_step: Callable[[dict], None] | None = None, group: Group = SINGLE,
                      micro_batch: int | None = None) -> dict:
    """Train from `state['step']` to the next evaluation step, evaluate, and return the new state.

    `model` is an `ObjectiveModel` (or its DistributedDataParallel). `on_step` gets the state after every step
    (step, history, the interval's losses so far) and may save it.
    """
    t0 = time.perf_counter()
    model.train()
    losses = list(state.get("losses") or [])
    step = state["step"]
    evaluated = state["history"][-1]["step"] if state["history"] else 0
    stop = min(steps, evaluated + eval_every)
    while step < stop:
        rng = np.random.default_rng([seed, step])
        inputs, labels = objective.batch(train_index, rng.integers(0, len(train_index), batch_size), rng)
        torch.manual_seed(seed * 1000003 + step)  # dropout of this step
        for param_group in optimizer.param_groups:
            param_group["lr"] = learning_rate(step, steps, lr, warmup)
        losses.append(pretrain_step(model, optimizer, inputs, labels, device=device, precision=precision, group=group,
                                    micro_batch=micro_batch))
        step += 1
        if on_step is not None:
            on_step({"step": step, "history": state["history"], "losses": list(losses)})
    module = getattr(model, "module", model).model
    val_loss, val_acc = evaluate(module, objective, val_index, val_rows, batch_size=batch_size, seed=seed,
                                 device=device, group=group)
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


def _write_summary(model, state: dict, out: Path, settings: dict, train_index: WindowIndex,
                   val_index: WindowIndex, n_val: int) -> dict:
    """Write history.tsv and pretrain.json; return the summary."""
    pd.DataFrame(state["history"], columns=HISTORY_COLUMNS).to_csv(out / "history.tsv", sep="\t", index=False)
    last = state["history"][-1] if state["history"] else {}
    summary = {**settings, "parameters": sum(p.numel() for p in model.parameters()),
               "train_windows": len(train_index), "dropped_train_windows": train_index.dropped,
               "val_windows_available": len(val_index), "dropped_val_windows": val_index.dropped,
               "val_windows_used": n_val, "final_val_loss": last.get("val_loss", math.nan),
               "final_val_accuracy": last.get("val_accuracy", math.nan), "steps_run": state["step"]}
    (out / "pretrain.json").write_text(json.dumps(summary, indent=2))
    return summary
