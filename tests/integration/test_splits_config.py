"""Fold splits, extra train species and the homology filter in the DAG; bad fold configs name the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from test_config import DEMO, dry_run


def fold_config(**folds) -> dict:
    config = copy.deepcopy(DEMO)
    config["tasks"]["polya"]["split"] = {"folds": {"k": 8, "val": 0, "test": 1, **folds}}
    return config


def tracks_with_extra_species() -> dict:
    """The demo task as a tracks task (tiled 320 bp windows) with an extra species that has the same tracks."""
    config = copy.deepcopy(DEMO)
    config["species"]["scer2"] = {**copy.deepcopy(config["species"]["scer"]), "reference": False}
    task = config["tasks"]["polya"]
    task.update(type="tracks", window={"length": 320, "flank": 32}, extra_train_species=["scer2"])
    task.pop("sites", None)
    config["models"] = {"bpnet": config["models"]["bpnet"]}  # tracks tasks train BPNet models only
    config.pop("interpret", None)
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


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (fold_config(val=2, test=2), "tasks.polya.split.folds: val and test are both fold 2"),
        (fold_config(test=8), "tasks.polya.split.folds.test: fold 8 does not exist with k = 8"),
        ({**copy.deepcopy(DEMO), "tasks": {"polya": {**DEMO["tasks"]["polya"], "extra_train_species": ["calb"]}}},
         "tasks.polya.extra_train_species: species 'calb' lacks the task's tracks"),
        (tracks_with_extra_species(), "tasks.polya.extra_train_species: not available for tracks tasks"),
    ],
    ids=["val-equals-test", "fold-out-of-range", "extra-species-without-tracks", "extra-species-tracks-task"],
)
def test_bad_split_config_names_the_key(tmp_path: Path, config: dict, expected: str) -> None:
    proc = dry_run(tmp_path, config)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]


def test_chromosomes_and_folds_together_are_an_error(tmp_path: Path) -> None:
    config = fold_config()
    config["tasks"]["polya"]["split"]["chromosomes"] = {"val": ["XV"], "test": ["VII"]}
    proc = dry_run(tmp_path, config)
    assert proc.returncode != 0 and "tasks.polya.split" in proc.stdout + proc.stderr
