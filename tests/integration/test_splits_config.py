"""Fold splits, extra train species and the homology filter in the DAG (bad split configs: tests/unit/test_config.py)."""

from __future__ import annotations

import copy
from pathlib import Path

from test_config_dag import DEMO, dry_run


def fold_config(**folds) -> dict:
    config = copy.deepcopy(DEMO)
    config["tasks"]["polya"]["split"] = {"folds": {"k": 8, "val": 0, "test": 1, **folds}}
    return config


def test_fold_task_with_extra_species_builds_the_dag(tmp_path: Path) -> None:
    config = fold_config()
    config["species"]["scer2"] = copy.deepcopy(config["species"]["scer"])
    config["species"]["scer2"]["reference"] = False
    config["tasks"]["polya"]["extra_train_species"] = ["scer2"]
    proc = dry_run(tmp_path, config)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rule in ("make_folds", "make_extra_windows", "filter_homology", "pretrain_homology", "build_window_store"):
        assert rule in proc.stdout
