"""LM + LoRA classifier fine-tuning on the CPU: dnalm's training loop against a Hugging Face `Trainer` as the
DNABERT-2 / GUE and Nucleotide Transformer fine-tuning scripts run it, sequences per second, in the same run.

Both sides start from the same random BERT (`--size` layers × hidden, `--heads` heads, FFN 4 × hidden, BERT's
dropouts 0.1), saved once as dnalm loads a downloaded checkpoint (`save_pretrained` weights, `vocab.txt` in dnalm's
`--tokenizer` layout: `tests/helpers.py::tiny_bert`), and train on the same random `--length` bp sequences with
random binary labels, `--batch` sequences a step, AdamW at `--lr` with `--weight-decay`, LoRA r 8, alpha 16,
dropout 0.1 on `query`, `value`, `dense`, `--warmup` + `--steps` optimizer steps per repeat:

- `dnalm`: the workflow's path. A window store with classification targets ((N, 2, 1) one-hot, meta `labels: true`;
  `--jitter` bases of flank each side, default 0), `dnalm.models.build_model("lm", params, "pooled", 2, …)` with
  `params` as `get_model_params` gives them for `arch: lm`, `lm.finetune: lora`, `lm.head: conv` (SpeciesLM's conv
  stack; head pooling `--pool`, head dropout 0.1), the classification task's `prepare` and loss, AdamW as
  `dnalm.training.train` makes it, and `dnalm.training.run_epoch` (store reads, one-hot batches, differentiable token
  embeddings, the workflow's dropout, under `--precision`).
- `hf-trainer`: `AutoModelForSequenceClassification` of the same directory (BERT's pooler and classifier, random) +
  `peft.get_peft_model` (task type SEQ_CLS, as DNABERT-2's `train.py`), input ids tokenized up front
  (`[CLS] <species> bases [SEP]`, the tokens dnalm's trunk builds), DNABERT-2's collator (padding, attention mask),
  `transformers.Trainer` with `TrainingArguments` of the same batch size, learning rate and weight decay,
  `optim="adamw_torch"` (DNABERT-2's), the default linear schedule without warm-up and gradient clipping at 1.0, no
  evaluation, no saving, no logging, `report_to=[]`, the dataloader in the main process, `bf16` with
  `--precision bf16`.

Each repeat runs both sides in turn (so a burst of load from other processes hits both) and times the last
`--steps` steps from the end of step `--warmup` to the end of the last step (dnalm: `run_epoch`'s `on_batch`;
Hugging Face: a `TrainerCallback.on_step_end`), data loading included on both sides. Before the timed repeats, one
untimed repeat per side counts its FLOPs per step (torch's FlopCounterMode; it is also the warm-up of oneDNN and the
allocator). Prints, per side, the trainable and total parameters, GFLOP per step, sequences/s of every repeat and
their median, seconds per step and GFLOP/s at the median, and dnalm ÷ hf-trainer of the medians; and the torch thread
count both ran with (`--threads`, set once for both). The sides do not compute the same function (see
benchmarks/README.md): the GFLOP column says how much work each step is.

Usage: .venv/bin/python benchmarks/bench_classifier_finetune.py [--threads 2] [--repeats 5] [--size 4x256]
       [--heads 4] [--length 81] [--batch 32] [--warmup 3] [--steps 20] [--precision fp32] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
sys.path.insert(0, str(REPO / "tests"))
from dnalm import tasks, tokenize
from dnalm.device import native_bf16, resolve_precision
from dnalm.models import build_model
from dnalm.models.backbones import quiet_transformers
from dnalm.models.lm import parameter_counts
from dnalm.schema import block_defaults
from dnalm.store import WindowStore
from dnalm.training import run_epoch
from helpers import save_store, tiny_bert

LORA = {"r": 8, "alpha": 16, "dropout": 0.1, "target_modules": ["query", "value", "dense"]}
SPECIES = "ecoli"
CLASSES = ["non_promoter", "promoter"]
CPU = torch.device("cpu")


def random_lm(directory: Path, size: str, heads: int, kind: str, length: int, lora: dict | None = None) -> dict:
    """Save a random BERT in `directory` and return the `lm` params `get_model_params` gives for it (`arch: lm`,
    `finetune: lora`, `head: conv`, the species token resolved).

    Args:
        directory: Where the checkpoint goes (created).
        size: `<layers>x<hidden>`.
        heads: Attention heads.
        kind: Tokenizer layout (`nucleotide`, `kmer6_species`).
        length: Window length in bp (the positions must hold its tokens).
        lora: LoRA settings (default `LORA`).
    """
    layers, hidden = (int(v) for v in size.split("x"))
    architecture = {"layers": layers, "hidden": hidden, "heads": heads, "max_positions": max(512, length + 8)}
    directory.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        backbone = tiny_bert(directory, kind, [SPECIES], architecture, seed=0)
    return {**block_defaults("models", "lm"), "backbone": backbone, "finetune": "lora", "head": "conv",
            "lora": dict(lora or LORA), "species": SPECIES, "species_list": [SPECIES]}


def random_store(directory: Path, n: int, length: int, flank: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """A classification window store of `n` random windows (`length` + 2 `flank` bp) with random balanced labels;
    its prefix and the labels."""
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, 4, (n, length + 2 * flank), dtype=np.uint8)
    labels = rng.permutation(np.arange(n) % len(CLASSES))
    targets = np.zeros((n, len(CLASSES), 1), dtype=np.float32)
    targets[np.arange(n), labels, 0] = 1.0
    prefix = save_store(directory, "train", seq, targets, length=length, flank=flank, channels=CLASSES,
                        rc_perm=list(range(len(CLASSES))), task_type="classification", bin_size=1, labels=True)
    return prefix, labels


class Dnalm:
    """dnalm's side: the model, optimizer and train settings `dnalm.training.train` would make for the store."""

    def __init__(self, params: dict, store: WindowStore, args: argparse.Namespace):
        self.store = store
        self.task = tasks.get(store.task_type)
        self.tp = {**block_defaults("models", "train"), "batch_size": args.batch, "lr": args.lr,
                   "weight_decay": args.weight_decay, "jitter": args.jitter, "revcomp": False,
                   "head_pool": args.pool, "head_dropout": 0.1, "precision": args.precision,
                   "max_batches_per_epoch": args.warmup + args.steps}
        head, head_params = self.task.head(store, self.tp, "lm")
        torch.manual_seed(0)
        self.model = build_model("lm", params, head, len(store.channels), head_params)
        self.task.prepare(self.model, store, revcomp=False)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=self.tp["lr"], weight_decay=self.tp["weight_decay"])
        self.count_weight = self.task.count_weight(store, self.tp)
        self.precision = resolve_precision(self.tp["precision"], CPU)
        self.epoch = 0

    def step_times(self) -> list[float]:
        """Run one epoch of `warmup + steps` batches; the wall clock at the end of every step."""
        stamps: list[float] = []
        self.epoch += 1
        run_epoch(self.model, self.store, self.optimizer, epoch=self.epoch, seed=0, batch_size=self.tp["batch_size"],
                  jitter=self.tp["jitter"], revcomp=self.tp["revcomp"], max_batches=self.tp["max_batches_per_epoch"],
                  count_weight=self.count_weight, device=CPU, on_batch=lambda _: stamps.append(time.perf_counter()),
                  precision=self.precision, tp=self.tp)
        return stamps


class IdsDataset(torch.utils.data.Dataset):
    """Tokenized sequences and labels, as DNABERT-2's `SupervisedDataset` holds them."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray):
        self.ids = torch.from_numpy(ids)
        self.labels = labels.tolist()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def collate(instances: list[dict]) -> dict[str, torch.Tensor]:
    """DNABERT-2's `DataCollatorForSupervisedDataset`: pad the ids, long labels, attention mask of non-padding."""
    ids = torch.nn.utils.rnn.pad_sequence([x["input_ids"] for x in instances], batch_first=True,
                                          padding_value=tokenize.PAD)
    labels = torch.tensor([x["labels"] for x in instances], dtype=torch.long)
    return {"input_ids": ids, "labels": labels, "attention_mask": ids.ne(tokenize.PAD)}


class HfTrainer:
    """The Hugging Face side: a peft LoRA sequence classifier trained by `transformers.Trainer`."""

    def __init__(self, params: dict, store: WindowStore, labels: np.ndarray, args: argparse.Namespace, out: Path):
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForSequenceClassification, TrainingArguments

        torch.manual_seed(0)
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(params["backbone"], num_labels=len(CLASSES),
                                                                       local_files_only=True)
        lora = params["lora"]
        config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], target_modules=list(lora["target_modules"]),
                            lora_dropout=lora["dropout"], bias="none", task_type="SEQ_CLS", inference_mode=False)
        with warnings.catch_warnings():  # peft 0.21 calls a transformers method deprecated in 5.x
            warnings.simplefilter("ignore", FutureWarning)
            self.model = get_peft_model(model, config)
        vocab = tokenize.load_vocab(params["backbone"])
        kind = tokenize.infer_kind(vocab)
        codes = np.asarray(store.seq[:, store.flank : store.flank + store.length])
        ids = tokenize.model_input(codes, kind, tokenize.species_id(vocab, SPECIES))
        self.n_tokens = ids.shape[1]
        self.dataset = IdsDataset(ids, labels)
        self.args = TrainingArguments(
            output_dir=str(out), per_device_train_batch_size=args.batch, learning_rate=args.lr,
            weight_decay=args.weight_decay, max_steps=args.warmup + args.steps, optim="adamw_torch",
            eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True,
            dataloader_num_workers=0, dataloader_pin_memory=False, use_cpu=True, bf16=args.precision == "bf16",
            label_names=["labels"], seed=0)

    def step_times(self) -> list[float]:
        """Train `warmup + steps` steps with a fresh `Trainer`; the wall clock at the end of every step."""
        from transformers import PrinterCallback, Trainer, TrainerCallback

        stamps: list[float] = []

        class StepClock(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                stamps.append(time.perf_counter())

        trainer = Trainer(model=self.model, args=self.args, train_dataset=self.dataset, data_collator=collate,
                          callbacks=[StepClock()])
        trainer.remove_callback(PrinterCallback)  # its end-of-training summary times the whole run, warm-up included
        trainer.train()
        return stamps


def step_flops(side, steps: int) -> float:
    """FLOPs per step as torch's FlopCounterMode counts one untimed repeat of `steps` steps (also the warm-up)."""
    counter = FlopCounterMode(display=False)
    with counter:
        side.step_times()
    return counter.get_total_flops() / steps


def steady_rate(stamps: list[float], warmup: int, batch: int) -> float:
    """Sequences/s over the steps after the first `warmup` (from the end of step `warmup` to the end of the last)."""
    if len(stamps) <= warmup:
        raise RuntimeError(f"only {len(stamps)} steps ran; expected more than the {warmup} warm-up steps")
    return (len(stamps) - warmup) * batch / (stamps[-1] - stamps[warmup - 1])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads, both sides (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per side; the median is reported")
    parser.add_argument("--size", default="4x256", help="backbone <layers>x<hidden> (default 4x256)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    parser.add_argument("--tokenizer", default="nucleotide", choices=["nucleotide", "kmer6_species"],
                        help="token layout of the backbone (default nucleotide)")
    parser.add_argument("--length", type=int, default=81, help="sequence length in bp (default 81)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per step (default 32)")
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate, both sides (default 1e-4)")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay, both sides")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of every repeat")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat (default 20)")
    parser.add_argument("--pool", default="meanmax", choices=["mean", "max", "meanmax"],
                        help="dnalm's pooled-head pooling (train.head_pool; default meanmax)")
    parser.add_argument("--jitter", type=int, default=0, help="dnalm's train.jitter (the store gets that flank)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                        help="fp32, or bf16 autocast on both sides (dnalm train.precision, Trainer bf16)")
    parser.add_argument("--quick", action="store_true",
                        help="a check that it runs, not a figure: 2x64, 2 heads, batch 8, 1 + 3 steps, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.size, args.heads, args.batch, args.warmup, args.steps, args.repeats = "2x64", 2, 8, 1, 3, 1
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1 (the clock starts at the end of a warm-up step)")
    return args


def report(args: argparse.Namespace, sides: dict, rates: dict[str, list[float]], flops: dict[str, float],
           n_tokens: int) -> None:
    """Print the settings, every repeat's sequences/s, the medians and the counted FLOPs."""
    layers, hidden = args.size.split("x")
    print(f"torch threads {torch.get_num_threads()} (--threads {args.threads}); BERT {layers} layers x hidden {hidden}"
          f" x {args.heads} heads, {args.tokenizer} tokens ({n_tokens} per sequence), batch {args.batch} x "
          f"{args.length} bp, LoRA r {LORA['r']} alpha {LORA['alpha']} dropout {LORA['dropout']} on "
          f"{','.join(LORA['target_modules'])}; {args.precision}; CPU with native bf16: {native_bf16(CPU)}")
    print(f"{args.warmup} warm-up + {args.steps} timed steps per repeat, median of {args.repeats}")
    print(f"{'side':<11}{'trainable/total':>22}{'GFLOP/step':>11}{'median seq/s':>14}{'s/step':>8}{'GFLOP/s':>8}"
          "  seq/s per repeat")
    median = {name: statistics.median(v) for name, v in rates.items()}
    for name, side in sides.items():
        trainable, total = parameter_counts(side.model)
        seconds = args.batch / median[name]
        print(f"{name:<11}{f'{trainable:,}/{total:,}':>22}{flops[name] / 1e9:>11.2f}{median[name]:>14.1f}"
              f"{seconds:>8.3f}{flops[name] / seconds / 1e9:>8.1f}  " + " ".join(f"{r:.1f}" for r in rates[name]))
    print(f"ratio dnalm / hf-trainer: {median['dnalm'] / median['hf-trainer']:.2f}x")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_cls_") as tmp:
        tmp = Path(tmp)
        params = random_lm(tmp / "backbone", args.size, args.heads, args.tokenizer, args.length)
        prefix, labels = random_store(tmp, (args.warmup + args.steps) * args.batch, args.length, args.jitter)
        store = WindowStore(prefix)
        sides = {"dnalm": Dnalm(params, store, args), "hf-trainer": HfTrainer(params, store, labels, args, tmp / "hf")}
        flops = {name: step_flops(side, args.warmup + args.steps) for name, side in sides.items()}
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, side in sides.items():
                rates[name].append(steady_rate(side.step_times(), args.warmup, args.batch))
        report(args, sides, rates, flops, sides["hf-trainer"].n_tokens)


if __name__ == "__main__":
    main()
