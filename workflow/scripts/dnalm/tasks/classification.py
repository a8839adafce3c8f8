"""Classification tasks: labelled sequences, one class per example (promoter / non-promoter, GUE-style benchmarks).

Windows: the task's `examples` (intervals on the species' genome, labelled FASTA, or sequence,label tables), written by
rule make_examples (`dnalm.examples`) as records of `results/windows/<task>/examples.fa`, one window per record.
Targets: the one-hot class (K classes, `classes` of the store). Head: `pooled` (features averaged over positions,
dropout, linear → K logits; binary tasks have two). Loss: cross-entropy, with class weights under
`train.class_balance: weights`. Validation: loss, accuracy and (binary) AUROC per epoch. Evaluation: logits of the
validation and test examples, calibration fitted on validation, metrics of the test split before and after it
(docs/classification.md).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from dnalm.tasks.base import TaskType

log = logging.getLogger(__name__)

#: Test metrics of the comparison table (mean ± sd over seeds); `*_calibrated` and per-class metrics follow.
METRICS = ("accuracy", "balanced_accuracy", "mcc", "sensitivity", "specificity", "precision", "f1", "auroc", "auprc",
           "brier", "ece", "test_loss")
#: Metric keys of the per-run table after n_windows: after calibration, per class (multi-class), thresholds.
EXTRA_METRICS = (*(f"{m}_calibrated" for m in METRICS[:-1]), *(f"{m}/" for m in METRICS[3:9]), "threshold")
#: Splits whose examples the evaluation predicts (validation fits the calibration).
EVAL_SPLITS = ("val", "test")


def class_names(spec: dict, labels) -> list[str]:
    """The task's classes: `examples.classes`, or the labels sorted (so 0/1 and non_promoter/promoter put the
    positive class second, and every table of the task gives the same order)."""
    classes = spec["examples"]["classes"]
    return list(classes) if classes is not None else sorted({str(x) for x in labels})


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Weights n / (K · n_c) per class (scikit-learn's `balanced`): every class weighs as much in the loss."""
    counts = np.asarray(counts, dtype=np.float64)
    return counts.sum() / (len(counts) * np.maximum(counts, 1))


def store_labels(store) -> np.ndarray:
    """The class index of every example of a store (its one-hot targets)."""
    return np.concatenate([chunk[:, :, 0] for chunk in store.target_chunks(4096)]).argmax(axis=1)


def label_counts(store) -> np.ndarray:
    """Examples per class of a store."""
    return np.bincount(store_labels(store), minlength=len(store.channels))


class ClassificationTask(TaskType):
    """Labelled-sequence tasks (see the module docstring)."""

    name = "classification"
    windows = "examples"
    metrics = METRICS
    extra_metrics = EXTRA_METRICS
    val_columns = ("val_accuracy", "val_auroc")
    attribution_outputs = ("class",)
    fold_ensemble = False  # calibration is fitted on validation windows
    eval_splits = EVAL_SPLITS

    def check(self, task: str, spec: dict, cfg: dict) -> None:
        """No targets or extra species; given splits need given files, chromosome and fold splits need intervals."""
        where = f"tasks.{task}"
        if spec["targets"]:
            raise ValueError(f"{where}.targets: classification tasks take their labels from {where}.examples; "
                             "remove targets")
        if spec["extra_train_species"]:
            raise ValueError(f"{where}.extra_train_species: not available for classification tasks; remove it")
        examples, split = spec["examples"], spec["split"]
        table = examples.get("table") or {}
        given = [k for k in ("train", "dev", "test") if table.get(k)]
        if "given" in split and len(given) != 3:
            raise ValueError(f"{where}.split.given needs {where}.examples.table with train, dev and test files "
                             f"(found {', '.join(given) or 'none'}); or use split.random")
        if given and "given" not in split:
            raise ValueError(f"{where}.examples.table gives train/dev/test files; set {where}.split to given: {{}}")
        if table and table.get("path") and given:
            raise ValueError(f"{where}.examples.table: path or train/dev/test files, not both")
        if table and not table.get("path") and not given:
            raise ValueError(f"{where}.examples.table: give path (one file) or train, dev and test files")
        positional = "chromosomes" in split or "folds" in split
        if positional and not examples.get("intervals"):
            raise ValueError(f"{where}.split: chromosome and fold splits need examples on the genome "
                             f"({where}.examples.intervals); sequences without coordinates take split.random "
                             "(or split.given)")

    def window_params(self, spec: dict, species: str) -> dict:
        """Params of rule make_examples (`dnalm.examples.make_examples`)."""
        return {"spec": spec["examples"], "species": species, "flank": spec["window"]["flank"]}

    def eval_settings(self, spec: dict) -> dict:
        """The task's calibration block: method and threshold."""
        return {"calibration": spec["calibration"]["method"], "threshold": spec["calibration"]["threshold"]}

    def head(self, store, tp: dict, arch: str = "bpnet") -> tuple[str, dict]:
        """The pooled head: train.head_pool pooling (`auto`: mean for BPNet, whose attributions DeepLIFT then gives
        exactly; meanmax for language models, attributed by integrated gradients anyway, whose ReLU feature stacks
        can die under a mean alone), train.head_dropout before its linear layer."""
        pool = tp.get("head_pool", "auto")
        if pool == "auto":
            pool = "meanmax" if arch == "lm" else "mean"
        return "pooled", {"dropout": float(tp.get("head_dropout", 0.0)), "pool": pool}

    def count_weight(self, store, tp: dict) -> list[float]:
        """Class weights of the loss: `class_weights` under train.class_balance: weights, else all 1."""
        counts = label_counts(store)
        if tp.get("class_balance") == "weights":
            return class_weights(counts).tolist()
        return [1.0] * len(counts)

    def epoch_order(self, store, rng: np.random.Generator, tp: dict) -> np.ndarray:
        """A permutation, or under train.class_balance: sampling as many examples drawn with replacement, each class
        equally likely."""
        if tp.get("class_balance") != "sampling":
            return rng.permutation(len(store))
        labels = store_labels(store)
        p = 1.0 / np.bincount(labels, minlength=len(store.channels))[labels]
        return rng.choice(len(store), size=len(store), replace=True, p=p / p.sum())

    def prepare(self, model, store, revcomp: bool) -> bool:
        """Start the classifier's bias at the log class frequencies of the training examples."""
        import torch

        layer = getattr(getattr(model, "head", None), "linear", None)
        if layer is None or layer.bias is None:
            return False
        counts = label_counts(store)
        with torch.no_grad():
            layer.bias.copy_(torch.as_tensor(np.log(np.maximum(counts, 1) / counts.sum()), dtype=layer.bias.dtype))
        return True

    def loss(self, output, target, count_weight):
        """Cross-entropy of the logits (B, K) against one-hot targets (B, K), weighted per class (torch's weighted
        mean: divided by the summed weights of the batch's labels)."""
        import torch

        weights = torch.as_tensor(count_weight if isinstance(count_weight, list) else [1.0] * target.shape[-1],
                                  dtype=output.dtype, device=output.device)
        per_example = -(target * torch.log_softmax(output, dim=-1)).sum(-1)
        w = (target * weights).sum(-1)
        loss = (per_example * w).sum() / w.sum().clamp_min(1e-12)
        return loss, loss, torch.zeros((), dtype=loss.dtype, device=loss.device)

    def loss_weight(self, target, count_weight) -> float:
        """The summed class weights of the batch's labels, by which `loss` divides."""
        weights = np.asarray(count_weight if isinstance(count_weight, list) else [1.0] * target.shape[-1])
        return float((np.asarray(target) * weights).sum())

    def val_pearson(self, output, target) -> np.ndarray:
        """Rows of the logits and the label index, for `val_summary`."""
        return np.column_stack([output.numpy(), target.numpy().argmax(axis=1)])

    def val_summary(self, parts: list[np.ndarray]) -> dict:
        """Validation accuracy and (binary tasks) AUROC of the positive class."""
        from dnalm.classification.calibration import softmax
        from dnalm.classification.metrics import ranking

        rows = np.concatenate(parts) if parts else np.zeros((0, 3))
        logits, labels = rows[:, :-1], rows[:, -1].astype(int)
        accuracy = float((logits.argmax(axis=1) == labels).mean()) if len(rows) else float("nan")
        score = float(ranking(softmax(logits), labels)["auroc"][1]) if logits.shape[1] == 2 else float("nan")
        return {"val_pearson_median": float("nan"), "val_accuracy": accuracy, "val_auroc": score}

    def totals(self, output):
        """(log-probabilities (B, K), probabilities (B, K)): what the species-token counterfactual compares."""
        import torch

        return torch.log_softmax(output, dim=-1), torch.softmax(output, dim=-1)

    def capture(self, model):
        """The pooled features of the model's head (`embedding`), per forward pass (none for a model without one, as
        the fold ensemble)."""
        return _pooled(model)

    def evaluate(self, batches, info: dict, store, out_predictions: str, *, site_threshold: float = 0.0,
                 model=None, val=None, captured=None, calibration: str = "platt", threshold: str = "0.5") -> dict:
        """Write predictions.h5 (logits, pooled features, labels and ids of the validation and test examples) and
        return the test metrics before and after calibration (`dnalm.classification.evaluation`)."""
        import h5py

        from dnalm.classification.evaluation import evaluate_probabilities, json_safe

        captured = captured or {}
        parts = {"test": _collect(store, batches, model, captured.get("test"))}
        if val is not None:
            parts["val"] = _collect(*val, model, captured.get("val"))
        classes = list(store.channels)
        weights = info.get("count_weight")
        loss = float(self.loss(*(_torch(parts["test"]["logits"], parts["test"]["labels"], len(classes))),
                               weights if isinstance(weights, list) else None)[0])
        val_part = parts.get("val") or parts["test"]
        if "val" not in parts:
            log.warning("no validation predictions: calibration and threshold are fitted on the test split")
        metrics, _ = evaluate_probabilities(val_part["logits"], val_part["labels"], parts["test"]["logits"],
                                            parts["test"]["labels"], classes, calibration=calibration,
                                            threshold=threshold)
        tmp = Path(out_predictions).with_name(f".{Path(out_predictions).name}.tmp")
        with h5py.File(tmp, "w") as h5:
            for split, part in parts.items():
                group = h5.create_group(split)
                for key, values in part.items():
                    group.create_dataset(key, data=values)
            h5.attrs["classes"] = classes
        tmp.replace(out_predictions)
        return json_safe({**metrics, "test_loss": loss, "n_windows": len(store)})


def _torch(logits: np.ndarray, labels: np.ndarray, k: int):
    import torch

    return torch.from_numpy(logits), torch.nn.functional.one_hot(torch.from_numpy(labels), k).float()


@contextmanager
def _pooled(model):
    """Collect the pooled features of `model`'s head per forward pass while open (`ClassificationTask.capture`)."""
    pooled, hook = [], None
    head = getattr(model, "head", None)
    if head is not None:
        hook = head.register_forward_hook(lambda module, args, out: pooled.append(module.pooled(args[0]).float().cpu()))
    try:
        yield {"embedding": pooled}
    finally:
        if hook is not None:
            hook.remove()


def _collect(store, batches, model, captured: dict | None = None) -> dict[str, np.ndarray]:
    """Logits, label indexes, example ids and the head's pooled input features of every example of a store (the
    features from `captured` when given, else from `model`'s forward passes as the batches are computed)."""
    logits, labels = [], []
    with _pooled(model if captured is None else None) as seen:
        for _, output, y in batches:
            logits.append(output.numpy())
            labels.append(y.numpy().argmax(axis=1))
    pooled = [p.numpy() for p in seen["embedding"]] if captured is None else list(captured.get("embedding", []))
    k = len(store.channels)
    return {"logits": np.concatenate(logits) if logits else np.zeros((0, k), np.float32),
            "labels": np.concatenate(labels) if labels else np.zeros(0, np.int64),
            "ids": np.array(store.meta["ids"], dtype="S"),
            "embedding": np.concatenate(pooled) if pooled else np.zeros((0, 0), np.float32)}
