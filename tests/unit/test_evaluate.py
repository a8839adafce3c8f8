"""Tests for dnalm.evaluate: test-set predictions and metrics of a checkpoint, and the model comparison table."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from dnalm.evaluate import METRICS, compare_models, evaluate, sweep_table
from dnalm.losses import profile_count_loss
from dnalm.metrics import profile_metrics
from dnalm.predict import load_model
from dnalm.store import WindowStore
from dnalm.training import train
from helpers import save_store

torch.use_deterministic_algorithms(True)

LENGTH, FLANK = 32, 2
CHANNELS = ["pa/+", "pa/-"]


def write_store(directory: Path, split: str, n: int, seed: int) -> str:
    """A small store in the `write_store` format: random sequences, sparse Poisson targets."""
    rng = np.random.default_rng(seed)
    width = LENGTH + 2 * FLANK
    seq = rng.integers(0, 4, size=(n, width)).astype(np.uint8)
    targets = rng.poisson(0.3, size=(n, len(CHANNELS), width)).astype(np.float32)
    targets[:, 0, FLANK + 10] += 5  # a site in every window
    return save_store(directory, split, seq, targets, length=LENGTH, flank=FLANK, channels=CHANNELS, rc_perm=[1, 0],
                      ids=[f"sp:chr1:{100 * i}:+" for i in range(n)])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("eval")
    params = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "weight_decay": 0.0, "patience": 5, "count_weight": 0.5,
              "jitter": 0, "revcomp": False, "max_batches_per_epoch": None}
    train(WindowStore(write_store(tmp, "train", 16, 1)), WindowStore(write_store(tmp, "val", 8, 2)),
          str(tmp / "model"), arch="bpnet", model_params={"filters": 4, "layers": 1, "input_kernel": 5,
                                                         "profile_kernel": 5}, train_params=params, seed=0)
    return tmp / "model" / "best.ckpt"


def test_evaluate_writes_predictions_and_metrics(checkpoint, tmp_path):
    store = WindowStore(write_store(tmp_path, "test", 7, 3))
    out_h5, out_json = tmp_path / "out" / "predictions.h5", tmp_path / "out" / "metrics.json"
    out_h5.parent.mkdir()

    returned = evaluate(str(checkpoint), store, str(out_h5), str(out_json), site_threshold=3.0, batch_size=3)

    assert sorted(p.name for p in out_h5.parent.iterdir()) == ["metrics.json", "predictions.h5"]
    targets = np.array(store.targets[:, :, FLANK : FLANK + LENGTH])
    with h5py.File(out_h5) as h5:
        observed, predicted = h5["observed"][:], h5["predicted"][:]
        ids = [i.decode() for i in h5["window_id"][:]]
        channels = [c.decode() if isinstance(c, bytes) else str(c) for c in h5.attrs["channels"]]
    np.testing.assert_array_equal(observed, targets)
    assert ids == store.meta["ids"]
    assert channels == CHANNELS

    # predictions of every window (batches of 3 over 7 windows), computed here from the model itself
    model, info = load_model(str(checkpoint))
    x, _ = store.batch(np.arange(7))
    with torch.no_grad():
        logits, log_counts = model(torch.from_numpy(x))
    expected = torch.softmax(logits, -1).numpy() * np.expm1(log_counts.numpy()).clip(min=0)[:, :, None]
    assert predicted.shape == (7, 2, LENGTH)
    assert (predicted >= 0).all()
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-7)

    metrics = json.loads(out_json.read_text())
    assert metrics == pytest.approx(returned)
    assert set(metrics) == {"pearson_median", "pearson_mean", "auroc", "auprc", "count_pearson", "n_windows",
                            "test_loss", "profile_nll", "count_mse", "arch", "best_epoch", "trainable_params"}
    total, profile, count = profile_count_loss(logits, log_counts, torch.from_numpy(targets), 0.5)
    assert metrics["test_loss"] == pytest.approx(total.item(), rel=1e-5)
    assert metrics["profile_nll"] == pytest.approx(profile.item(), rel=1e-5)
    assert metrics["count_mse"] == pytest.approx(count.item(), rel=1e-5)
    for key, value in profile_metrics(expected, targets, 3.0).items():
        assert metrics[key] == pytest.approx(value, rel=1e-4), key
    assert metrics["n_windows"] == 7
    assert (metrics["arch"], metrics["best_epoch"]) == ("bpnet", info["best_epoch"])
    assert metrics["trainable_params"] == sum(p.numel() for p in model.parameters())


def test_compare_models_one_row_per_metrics_file(tmp_path):
    files = []
    for i, name in enumerate(["bpnet_small", "bpnet_wide"]):
        path = tmp_path / "eval" / "task" / name / "metrics.json"
        path.parent.mkdir(parents=True)
        metrics = {m: 0.1 * (i + 1) + 0.01 * j for j, m in enumerate(METRICS)}
        metrics.update(arch="bpnet", n_windows=40 + i, best_epoch=3, profile_nll=1.0)
        path.write_text(json.dumps(metrics))
        files.append(str(path))
    out = tmp_path / "comparison.tsv"

    table = compare_models(files, str(out))

    written = pd.read_csv(out, sep="\t")
    assert list(written.columns) == ["model", "arch", "n_seeds", *(c for m in METRICS for c in (m, f"{m}_sd")),
                                     "n_windows"]
    assert written[[f"{m}_sd" for m in METRICS]].isna().all().all()  # one run: no sd
    assert list(written["model"]) == ["bpnet_small", "bpnet_wide"]
    assert list(written["arch"]) == ["bpnet", "bpnet"]
    assert list(written["n_seeds"]) == [1, 1]
    assert list(written["n_windows"]) == [40, 41]
    for j, m in enumerate(METRICS):
        np.testing.assert_allclose(written[m], [0.1 + 0.01 * j, 0.2 + 0.01 * j], atol=1e-9)
    assert len(table) == 2


def write_metrics(root: Path, run: str, value: float) -> str:
    """A metrics.json of a run whose every metric is `value`."""
    path = root / run / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**{m: value for m in METRICS}, "arch": "lm", "n_windows": 50}))
    return str(path)


def test_seeds_are_averaged_with_sd_and_n_and_every_run_is_listed(tmp_path):
    values = {"m~seed0": 0.5, "m~seed1": 0.6, "m~seed2": 0.7, "b": 0.2}
    files = [write_metrics(tmp_path, run, v) for run, v in values.items()]
    runs = [{"run": f"m~seed{s}", "point": "m", "seed": s} for s in range(3)] + [{"run": "b", "point": "b", "seed": 4}]

    table = compare_models(files, str(tmp_path / "comparison.tsv"), runs, str(tmp_path / "runs.tsv"))

    written = pd.read_csv(tmp_path / "comparison.tsv", sep="\t").set_index("model")
    assert list(written.index) == ["m", "b"] and list(written["n_seeds"]) == [3, 1]
    assert written.loc["m", "pearson_median"] == pytest.approx(0.6)
    assert written.loc["m", "pearson_median_sd"] == pytest.approx(0.1, abs=1e-4)  # sample sd (ddof 1)
    assert np.isnan(written.loc["b", "auroc_sd"])
    per_run = pd.read_csv(tmp_path / "runs.tsv", sep="\t")
    assert list(per_run["run"]) == list(values) and list(per_run["model"]) == ["m", "m", "m", "b"]
    assert list(per_run["seed"]) == [0, 1, 2, 4]
    assert len(table) == 2


def test_sweep_table_marks_the_point_with_the_lowest_validation_loss(tmp_path):
    runs, files, histories = [], [], []
    for dropout, val in [(0.1, [3.0, 2.5]), (0.5, [2.0, 1.8])]:
        for seed, shift in enumerate([0.0, 0.2]):
            point = f"m~dropout{dropout}"
            run = f"{point}~seed{seed}"
            runs.append({"run": run, "point": point, "seed": seed, "overrides": {"lm.lora.dropout": dropout}})
            files.append(write_metrics(tmp_path / "eval", run, dropout + shift))
            history = tmp_path / "models" / run / "history.tsv"
            history.parent.mkdir(parents=True)
            pd.DataFrame({"epoch": [1, 2], "val_loss": [v + shift for v in val]}).to_csv(history, sep="\t")
            histories.append(str(history))

    sweep_table(files, histories, runs, str(tmp_path / "sweep.tsv"))

    table = pd.read_csv(tmp_path / "sweep.tsv", sep="\t")
    assert list(table.columns[:3]) == ["model", "lm.lora.dropout", "n_seeds"]
    assert list(table["lm.lora.dropout"]) == [0.1, 0.5] and list(table["n_seeds"]) == [2, 2]
    assert list(table["val_loss"]) == pytest.approx([2.6, 1.9])  # best epoch of each run, mean over seeds
    assert list(table["pearson_median"]) == pytest.approx([0.2, 0.6])
    assert list(table["best"]) == [False, True]


CF_SPECIES = ["saccharomyces_cerevisiae", "candida_glabrata", "kluyveromyces_lactis"]


@pytest.fixture(scope="module")
def lm_model(tmp_path_factory):
    from dnalm.models import build_model
    from helpers import tiny_bert

    ckpt = tiny_bert(tmp_path_factory.mktemp("cf_lm"), "nucleotide", CF_SPECIES,
                     {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32})
    torch.manual_seed(0)
    model = build_model("lm", {"backbone": ckpt, "species": CF_SPECIES[0], "species_list": CF_SPECIES,
                               "finetune": "full"}, "profile", 2)
    return model.eval()


def test_counterfactual_swaps_in_the_listed_species_only(lm_model, tmp_path):
    from dnalm.evaluate import species_counterfactual

    store = WindowStore(write_store(tmp_path, "test", 5, 4))
    listed = species_counterfactual(lm_model, store, 2, torch.device("cpu"), ["Kluyveromyces_Lactis"])
    assert list(listed["species"]) == [CF_SPECIES[0], CF_SPECIES[2]]  # the token in use always, vocabulary order
    assert list(listed["token_in_use"]) == [True, False]
    in_use = listed.iloc[0]
    assert in_use["mean_abs_delta_log_count"] == 0 and in_use["profile_pearson_median"] == pytest.approx(1)
    assert listed.iloc[1]["mean_abs_delta_log_count"] > 0  # another token changes a random model's output
    every = species_counterfactual(lm_model, store, 2, torch.device("cpu"))
    assert list(every["species"]) == CF_SPECIES
    pd.testing.assert_frame_equal(every.iloc[[0, 2]].reset_index(drop=True), listed)
    reordered = species_counterfactual(lm_model, store, 2, torch.device("cpu"), CF_SPECIES[::-1])
    pd.testing.assert_frame_equal(reordered, every)
    assert lm_model.trunk.species == CF_SPECIES[0] and not lm_model.training
    with pytest.raises(ValueError, match=r"evaluate.counterfactual_species: \['homo_sapiens'\].*kluyveromyces_lactis"):
        species_counterfactual(lm_model, store, 2, torch.device("cpu"), ["homo_sapiens"])


def test_counterfactual_species_default_to_the_task_species_and_the_reference():
    from dnalm.config_conservation import counterfactual_species

    cfg = {"species": {"scer": {"token": "saccharomyces_cerevisiae", "reference": True},
                       "cgla": {"token": None, "reference": False}, "klac": {"token": None, "reference": False}},
           "tasks": {"t": {"species": "cgla", "extra_train_species": ["klac"]}},
           "evaluate": {"counterfactual_species": None}}
    assert counterfactual_species(cfg, "t") == ["cgla", "klac", "saccharomyces_cerevisiae"]
    cfg["evaluate"]["counterfactual_species"] = ["scer", "homo_sapiens"]  # an id becomes its token; others stay
    assert counterfactual_species(cfg, "t") == ["saccharomyces_cerevisiae", "homo_sapiens"]


def test_counterfactual_species_of_lms_pretrained_here_are_checked_against_the_config():
    from dnalm.config_conservation import check_counterfactual

    cfg = {"species": {"scer": {"token": "saccharomyces_cerevisiae"}}, "pretrain": {"lm": {}},
           "models": {"m": {"arch": "lm", "lm": {"backbone": "lm"}}},
           "evaluate": {"counterfactual_species": ["scer", "Saccharomyces_Cerevisiae"]}}
    check_counterfactual(cfg)
    cfg["evaluate"]["counterfactual_species"] = ["homo_sapiens"]
    with pytest.raises(ValueError, match=r"evaluate.counterfactual_species: \['homo_sapiens'\] are neither"):
        check_counterfactual(cfg)
    cfg["models"]["m"]["lm"]["backbone"] = "/models/specieslm"  # a downloaded vocabulary: checked when loaded
    check_counterfactual(cfg)
