"""A classification run's per-example tables from its predictions.h5: predictions.tsv and projection.tsv."""

from __future__ import annotations

import logging

import h5py
import numpy as np

from dnalm.classification.evaluation import evaluate_probabilities, write_predictions
from dnalm.classification.projection import projection_table
from dnalm.io import write_tsv

log = logging.getLogger(__name__)


def read_split(h5: h5py.File, split: str) -> dict[str, np.ndarray]:
    """Logits, label indexes, ids and pooled features of one split of predictions.h5."""
    group = h5[split]
    return {key: group[key][:] for key in group}


def write_tables(predictions_h5: str, store, out_predictions: str, out_projection: str, *, calibration: str,
                 threshold: float | str, seed: int = 0) -> None:
    """Write predictions.tsv (validation and test examples: probabilities before and after the calibration fitted
    on validation, the call and its outcome) and projection.tsv (test examples: PaCMAP of their 3-mer profiles and
    of the model's pooled features).

    Args:
        predictions_h5: The run's predictions.h5 (`ClassificationTask.evaluate`).
        store: The test windows (their sequences give the 3-mer profiles).
        out_predictions: predictions.tsv.
        out_projection: projection.tsv.
        calibration: The task's calibration method.
        threshold: Its threshold rule.
        seed: Seed of the projections.
    """
    with h5py.File(predictions_h5, "r") as h5:
        classes = [str(c) for c in h5.attrs["classes"]]
        test = read_split(h5, "test")
        val = read_split(h5, "val") if "val" in h5 else test
    ids = {k: [i.decode() for i in part["ids"]] for k, part in (("val", val), ("test", test))}
    _, table = evaluate_probabilities(val["logits"], val["labels"], test["logits"], test["labels"], classes,
                                      calibration=calibration, threshold=threshold, val_ids=ids["val"],
                                      test_ids=ids["test"])
    write_predictions(table, out_predictions)
    onehot, _ = store.batch(np.arange(len(store)))
    if list(store.meta["ids"]) != ids["test"]:
        raise ValueError(f"{predictions_h5}: its test ids are not those of the test store; evaluate the run again")
    labels = np.asarray(classes, dtype=object)[test["labels"]]
    write_tsv(projection_table(ids["test"], labels, onehot, test["embedding"], seed=seed), out_projection)
    log.info("%d predictions, %d projected test examples", len(table), len(labels))
