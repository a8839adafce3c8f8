"""Cross-validation over genome folds (dnalm.crossfold): fold tasks from one config task, the cross-fold and
pretrained-against-scratch tables (dnalm.fold_tables), and the fold ensemble's combination of outputs."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats

from dnalm import config as dc
from dnalm import crossfold, tasks
from dnalm.fold_tables import cross_fold_table, fold_runs, mean_ci, pretraining_table
from dnalm.outputs import report_manifest

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def cross_validated(k: int = 4, **folds) -> dict:
    """The demo config with its task split into k folds (val and test from `folds`, none by default), checked."""
    cfg = copy.deepcopy(DEMO)
    cfg["tasks"]["polya"]["split"] = {"folds": {"k": k, **folds}}
    dc.validate(cfg)
    dc.check(cfg, REPO)
    return cfg


def test_a_task_without_val_and_test_becomes_one_task_per_fold_tested_on_it() -> None:
    cfg = cross_validated(4)
    groups = crossfold.expand_folds(cfg)
    ids = [f"polya_fold{i}" for i in range(4)]
    assert groups == {"polya": ids} and list(cfg["tasks"]) == ids
    assert [(cfg["tasks"][t]["split"]["folds"]["test"], cfg["tasks"][t]["split"]["folds"]["val"]) for t in ids] == \
        [(0, 1), (1, 2), (2, 3), (3, 0)]  # each fold test once and validation once
    assert all(cfg["models"][m]["tasks"] == [] for m in cfg["models"])  # every task, so every fold
    assert crossfold.fold_groups(cfg) == groups and crossfold.layout_task(cfg, "polya_fold2") == "polya"
    assert crossfold.task_spec(cfg, "polya")["fold"] == 0  # the group's shared settings
    assert crossfold.comparison_units(cfg) == {"polya": ids}
    before = copy.deepcopy(cfg)
    assert crossfold.expand_folds(cfg) == {} and cfg == before  # a second call changes nothing
    # interpretation of a cross-validated task explains its first fold only
    assert {t for t, _ in dc.interpret_pairs(cfg)} == {"polya_fold0"}
    kinds = {(r["kind"], r["task"]) for r in report_manifest(cfg) if r["kind"] in ("cross_fold", "pretraining")}
    assert kinds == {("cross_fold", "polya"), ("pretraining", "polya")}


def test_models_naming_the_task_name_its_folds_and_a_fixed_choice_stays_one_task() -> None:
    cfg = cross_validated(3)
    cfg["models"]["bpnet"]["tasks"] = ["polya"]
    crossfold.expand_folds(cfg)
    assert dc.model_tasks(cfg, "bpnet") == ["polya_fold0", "polya_fold1", "polya_fold2"]
    fixed = cross_validated(3, val=2, test=0)
    assert crossfold.expand_folds(fixed) == {} and list(fixed["tasks"]) == ["polya"]


@pytest.mark.parametrize(("folds", "message"), [
    ({"val": 1}, "tasks.polya.split.folds.val is given without test"),
    ({"test": 1}, "tasks.polya.split.folds.test is given without val"),
])
def test_one_of_val_and_test_is_an_error_naming_the_key(folds: dict, message: str) -> None:
    cfg = cross_validated(3, **folds)
    with pytest.raises(ValueError, match=message):
        crossfold.expand_folds(cfg)


def test_a_fold_task_id_taken_by_another_task_is_an_error() -> None:
    cfg = cross_validated(3)
    cfg["tasks"]["polya_fold1"] = copy.deepcopy(DEMO["tasks"]["polya"])
    with pytest.raises(ValueError, match="tasks.polya_fold1: this id is fold 1 of cross-validated task 'polya'"):
        crossfold.expand_folds(cfg)


def test_pretrained_models_pair_with_the_scratch_model_of_the_same_backbone_and_head() -> None:
    cfg = dc.with_defaults(DEMO)
    assert crossfold.pretraining_pairs(cfg, "polya") == [("lm_lora_conv", "lm_scratch"), ("lm_frozen", "lm_scratch")]


def test_unets_pair_with_the_scratch_unet_of_the_same_backbone() -> None:
    raw = copy.deepcopy(DEMO)
    raw["pretrain"]["unet_mlm"] = {"arch": "unet"}
    raw["models"].update({"u_full": {"arch": "unet", "unet": {"backbone": "unet_mlm", "finetune": "full"}},
                          "u_lora": {"arch": "unet", "unet": {"backbone": "unet_mlm", "finetune": "lora"}},
                          "u_scratch": {"arch": "unet", "unet": {"backbone": "unet_mlm", "finetune": "scratch"}},
                          "u_alone": {"arch": "unet"}})  # scratch without a backbone: no pretrained partner
    pairs = crossfold.pretraining_pairs(dc.with_defaults(raw), "polya")
    assert pairs[2:] == [("u_full", "u_scratch"), ("u_lora", "u_scratch")] and len(pairs) == 4


def test_mean_ci_is_the_student_t_interval() -> None:
    x = np.array([0.61, 0.58, 0.66, 0.60, 0.63])
    mean, half, n = mean_ci(x)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (mean, n) == (pytest.approx(x.mean()), 5) and half == pytest.approx((high - low) / 2)
    assert math.isnan(mean_ci(np.array([0.5, np.nan]))[1])  # one finite value: no interval


def _runs(tmp_path: Path, fold: int, values: dict[str, list[float]]) -> str:
    rows = [{"run": f"{m}~seed{s}", "model": m, "seed": s, "arch": "lm", "pearson_median": v, "n_windows": 10,
             "track_pearson/rna": v / 2} for m, vs in values.items() for s, v in enumerate(vs)]
    path = tmp_path / f"runs{fold}.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return str(path)


def test_cross_fold_table_averages_seeds_within_a_fold_then_folds(tmp_path: Path) -> None:
    files = {f: _runs(tmp_path, f, {"a": [0.1 * f, 0.1 * f + 0.2], "b": [0.5, 0.5]}) for f in range(3)}
    (tmp_path / "a~seed0").mkdir()
    (tmp_path / "a~seed0" / "ensemble.json").write_text('{"pearson_median": 0.9, "members": 2, "n_windows": 10}')
    table = cross_fold_table(fold_runs(files, {0: [str(tmp_path / "a~seed0" / "ensemble.json")]}))
    a = table[(table["model"] == "a") & (table["predictor"] == "single")].set_index("metric")
    assert [a.at["pearson_median", f"fold_{f}"] for f in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert a.at["pearson_median", "mean"] == pytest.approx(0.2) and a.at["pearson_median", "n_folds"] == 3
    assert a.at["track_pearson/rna", "mean"] == pytest.approx(0.1)  # per-track metrics too
    ensemble = table[table["predictor"] == "ensemble"]
    assert ensemble["metric"].tolist() == ["pearson_median"] and ensemble["mean"].iloc[0] == pytest.approx(0.9)


def test_pretraining_table_pairs_by_fold(tmp_path: Path) -> None:
    parts = [pd.read_csv(_runs(tmp_path, f, {"lora": [0.6 + 0.01 * f], "scratch": [0.4 + 0.03 * f]}), sep="\t")
             .assign(fold=f) for f in range(4)]
    table = pretraining_table(pd.concat(parts), [("lora", "scratch")]).set_index("metric")
    diffs = np.array([0.2 - 0.02 * f for f in range(4)])
    row = table.loc["pearson_median"]
    assert row["difference"] == pytest.approx(diffs.mean()) and row["n_pairs"] == 4 and row["paired_by"] == "fold"
    assert row["p_value"] == pytest.approx(stats.ttest_rel(0.6 + 0.01 * np.arange(4), 0.4 + 0.03 * np.arange(4)).pvalue)


def test_fold_ensembles_average_rates_and_profile_probabilities() -> None:
    a, b = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    mixed = tasks.get("tracks").ensemble([a, b])
    assert torch.allclose(mixed.exp(), (a.exp() + b.exp()) / 2, atol=1e-6)
    (la, ca), (lb, cb) = (torch.randn(2, 2, 50), torch.randn(2, 2)), (torch.randn(2, 2, 50), torch.randn(2, 2))
    logits, counts = tasks.get("profile").ensemble([(la, ca), (lb, cb)])
    assert torch.allclose(logits.softmax(-1), (la.softmax(-1) + lb.softmax(-1)) / 2, atol=1e-6)
    assert torch.allclose(counts.exp(), (ca.exp() + cb.exp()) / 2, atol=1e-5)
