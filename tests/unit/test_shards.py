"""Tests for dnalm.shards and the sharded inference steps: the split into whole-batch shards, and evaluation,
attribution, prediction tracks and variant scoring merged from shards equal to the unsharded job's outputs, to the
bit."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from dnalm.checkpoint import save_atomic
from dnalm.models import build_model
from dnalm.shards import check_parts, shard_bounds, shard_rows, step_shards
from dnalm.store import WindowStore
from helpers import save_store

torch.use_deterministic_algorithms(True)


# ------------------------------------------------------------------------------------------------------- the split
@pytest.mark.parametrize(("n", "shards"), [(10, 1), (10, 3), (9, 3), (3, 5), (0, 2), (1, 1), (7, 7)])
def test_every_item_is_in_exactly_one_shard_in_order(n: int, shards: int) -> None:
    bounds = shard_bounds(n, shards)
    assert len(bounds) == shards
    items = [i for first, stop in bounds for i in range(first, stop)]
    assert items == list(range(n))  # each once, in the original order
    sizes = [stop - first for first, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_more_shards_than_items_leaves_the_last_shards_empty() -> None:
    assert shard_bounds(3, 5) == [(0, 1), (1, 2), (2, 3), (3, 3), (3, 3)]


@pytest.mark.parametrize(("n_rows", "batch", "shards"), [(100, 8, 3), (17, 4, 2), (5, 8, 3), (64, 64, 2), (0, 4, 2)])
def test_shard_rows_cut_only_between_batches(n_rows: int, batch: int, shards: int) -> None:
    parts = [shard_rows(n_rows, batch, shards, s) for s in range(shards)]
    assert [r for part in parts for r in part] == list(range(n_rows))
    for part in parts:
        assert part.start % batch == 0 or part.start == n_rows  # a shard starts where an unsharded batch starts
    unsharded = {(s, min(s + batch, n_rows)) for s in range(0, n_rows, batch)}
    sharded = {(s, min(s + batch, p.stop)) for p in parts for s in range(p.start, p.stop, batch)}
    assert sharded == unsharded  # the same forward passes
    check_parts([(p.start, p.stop) for p in parts], n_rows, [f"part{i}" for i in range(shards)])


def test_bad_shards_and_parts_are_named() -> None:
    with pytest.raises(ValueError, match="shards must be at least 1"):
        shard_bounds(4, 0)
    with pytest.raises(ValueError, match="shard 2 is not one of 2 shards"):
        shard_rows(10, 2, 2, 2)
    with pytest.raises(ValueError, match="b.npz: rows 6-10, expected a part starting at row 4"):
        check_parts([(0, 4), (6, 10)], 10, ["a.npz", "b.npz"])
    with pytest.raises(ValueError, match="cover rows 0-8 of 10"):
        check_parts([(0, 4), (4, 8)], 10, ["a.npz", "b.npz"])


def test_step_shards_default_to_the_shared_count() -> None:
    inference = {"shards": 3, "evaluate": None, "attribute": 1, "prediction_tracks": 8, "variants": None}
    assert [step_shards(inference, s) for s in ("evaluate", "attribute", "prediction_tracks", "variants")] == [3, 1, 8, 3]
    with pytest.raises(ValueError, match="unknown inference step 'ism'"):
        step_shards(inference, "ism")


# ------------------------------------------------------------------------------------------------ prediction tracks
RNG = np.random.default_rng(5)
CHROMS = {"I": "".join(RNG.choice(list("ACGT"), 1300)), "II": "N" * 120 + "".join(RNG.choice(list("ACGT"), 380)),
          "III": "".join(RNG.choice(list("ACGT"), 60))}


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("genome") / "genome.fa"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in CHROMS.items()))
    return str(path)


def track_checkpoint(path: Path, head: str, channels: list[str], task_type: str, **head_params) -> str:
    torch.manual_seed(0)
    params = {"filters": 8, "layers": 2, "input_kernel": 5, "profile_kernel": 9}
    model = build_model("bpnet", params, head, len(channels), head_params)
    save_atomic({"arch": "bpnet", "model_params": params, "head": model.head_spec, "task_type": task_type,
                 "channels": channels, "length": 96, "bin_size": head_params.get("bin_size", 1),
                 "transform": "log1p", "state_dict": model.state_dict()}, path)
    return str(path)


@pytest.mark.parametrize(("head", "channels", "task_type", "params"), [
    ("profile", ["pa/+", "pa/-"], "profile", {}),
    ("binned", ["rna", "dnase", "mnase"], "tracks", {"bin_size": 8}),
    ("pooled", ["neg", "pos"], "classification", {}),
])
@pytest.mark.parametrize("regions", [False, True])
def test_prediction_tracks_from_shards_are_the_unsharded_bigwigs(tmp_path, genome, head, channels, task_type, params,
                                                                 regions) -> None:
    from dnalm.prediction_tracks import merge_prediction_tracks, write_prediction_track_shard, write_prediction_tracks

    best = track_checkpoint(tmp_path / "best.ckpt", head, channels, task_type, **params)
    settings = {"overlap": None, "scan_stride": 20, "class": None, "batch_size": 3}
    bed = None
    if regions:
        bed = tmp_path / "regions.bed"
        bed.write_text("II\t100\t300\nI\t50\t700\nI\t650\t900\nIII\t0\t60\n")
        bed = str(bed)
    whole = write_prediction_tracks(best, genome, str(tmp_path / "whole"), str(tmp_path / "whole.json"),
                                    settings=settings, regions=bed)
    assert whole["windows"] > 3 * 4  # more batches than the most shards below
    for shards in (1, 2, 4, 40):  # 40: more shards than batches
        parts = [str(tmp_path / f"{shards}" / f"part{s}") for s in range(shards)]
        windows = [write_prediction_track_shard(best, genome, part, settings=settings, shard=s, shards=shards,
                                                regions=bed)["windows"] for s, part in enumerate(parts)]
        assert sum(windows) == whole["windows"] and (shards < 40 or 0 in windows)
        out = tmp_path / f"merged{shards}"
        merged = merge_prediction_tracks(parts, best, genome, str(out), str(tmp_path / f"merged{shards}.json"),
                                         regions=bed, threads=1 + shards % 2)  # 2 and 4 shards: 1 writer
        assert merged == whole
        assert json.loads((tmp_path / f"merged{shards}.json").read_text()) == json.loads(
            (tmp_path / "whole.json").read_text())
        for name in whole["files"]:
            assert filecmp.cmp(out / name, tmp_path / "whole" / name, shallow=False), (shards, name)


def test_parts_of_another_run_are_refused(tmp_path, genome) -> None:
    from dnalm.prediction_tracks import merge_prediction_tracks, write_prediction_track_shard

    best = track_checkpoint(tmp_path / "best.ckpt", "profile", ["pa/+", "pa/-"], "profile")
    settings = {"overlap": None, "scan_stride": None, "class": None, "batch_size": 4}
    parts = [str(tmp_path / f"p{s}") for s in range(3)]
    for s in range(2):
        write_prediction_track_shard(best, genome, parts[s], settings=settings, shard=s, shards=2)
    write_prediction_track_shard(best, genome, parts[2], settings=settings, shard=2, shards=3)
    with pytest.raises(ValueError, match=r"p0: shard \[0, 2\] .*expected shard \[0, 3\]"):
        merge_prediction_tracks(parts, best, genome, str(tmp_path / "o"), str(tmp_path / "o.json"))


# ---------------------------------------------------------------------------------------------------- variant scoring
def variant_table(path: Path, n: int) -> str:
    """`n` SNVs and a few indels on chromosome I (and one deletion longer than the model scores), as rule
    download_variants writes them."""
    rng = np.random.default_rng(11)
    pos = np.sort(rng.choice(np.arange(60, 1240), n, replace=False)) + 1
    rows = []
    for i, p in enumerate(pos):
        ref = CHROMS["I"][p - 1] if i % 7 else CHROMS["I"][p - 1 : p + 2]
        alt = rng.choice([b for b in "ACGT" if b != ref[0]]) if i % 5 else ref[0] + "GA"
        rows.append({"chrom": "I", "pos": int(p), "id": f"v{i}", "ref": ref, "alt": alt, "CLASS": "ab"[i % 2]})
    rows.append({"chrom": "I", "pos": 500, "id": "long", "ref": CHROMS["I"][499:580], "alt": CHROMS["I"][499],
                 "CLASS": "a"})
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return str(path)


def test_variant_scores_from_shards_are_the_unsharded_table(tmp_path, genome) -> None:
    import pysam

    from dnalm.variants import merge_variant_shards, score_variant_shard, score_variants

    pysam.faidx(genome)
    checkpoints = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        params = {"filters": 8, "layers": 2, "input_kernel": 5, "profile_kernel": 9}
        model = build_model("bpnet", params, "profile", 2)
        path = tmp_path / f"run{seed}.ckpt"
        save_atomic({"arch": "bpnet", "model_params": params, "head": model.head_spec, "task_type": "profile",
                     "channels": ["pa/+", "pa/-"], "length": 120, "state_dict": model.state_dict()}, path)
        checkpoints.append(str(path))
    variants = variant_table(tmp_path / "variants.tsv", 37)
    settings = {"strands": "both", "range": None, "max_indel": 50, "batch_size": 8, "top": 3, "group_by": "CLASS"}
    attribution = {"n_shuffles": 2, "ig_steps": 4, "seed": 0}
    whole = [str(tmp_path / f"whole.{ext}") for ext in ("tsv", "json", "npz")]
    score_variants(checkpoints, [], variants, genome, *whole, settings=settings, attribution=attribution)
    for shards in (1, 2, 3, 9):  # 9: more shards than the 5 batches of 37 variants
        parts = [str(tmp_path / f"{shards}.{s}.pkl") for s in range(shards)]
        rows = [score_variant_shard(checkpoints, [], variants, genome, part, settings=settings, shard=s, shards=shards)
                for s, part in enumerate(parts)]
        assert sum(rows) == 37
        merged = [str(tmp_path / f"merged{shards}.{ext}") for ext in ("tsv", "json", "npz")]
        merge_variant_shards(parts, checkpoints, [], variants, genome, *merged, settings=settings,
                             attribution=attribution)
        assert filecmp.cmp(merged[0], whole[0], shallow=False) and filecmp.cmp(merged[1], whole[1], shallow=False)
        with np.load(merged[2]) as got, np.load(whole[2]) as expected:
            assert sorted(got.files) == sorted(expected.files) == ["alt_attr", "alt_onehot", "ids", "ref_attr",
                                                                   "ref_onehot"]
            for key in expected.files:
                np.testing.assert_array_equal(got[key], expected[key])
    table = pd.read_csv(whole[0], sep="\t")
    assert len(table) == 37 and "long" not in set(table["id"]) and table["effect.sd"].notna().all()
    with pytest.raises(ValueError, match=r"3.1.pkl is shard \[1, 3\] \(shard, shards\), expected \[1, 2\]"):
        merge_variant_shards([str(tmp_path / "2.0.pkl"), str(tmp_path / "3.1.pkl")], checkpoints, [], variants, genome,
                             *merged, settings=settings, attribution=attribution)


# --------------------------------------------------------------------------------------------------------- evaluation
LENGTH, FLANK = 32, 2
SPECIES = ["saccharomyces_cerevisiae", "candida_glabrata"]


def eval_store(directory: Path, split: str, n: int, task_type: str, seed: int) -> WindowStore:
    """A small store of `task_type`: random sequences; Poisson targets (profile: per base, two strands; tracks: 3
    tracks in bins of 4), or one-hot classes (classification)."""
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, 4, size=(n, LENGTH + 2 * FLANK)).astype(np.uint8)
    meta = {"length": LENGTH, "flank": FLANK, "task_type": task_type}
    if task_type == "classification":
        targets = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)][:, :, None]
        meta.update(channels=["neg", "pos"], rc_perm=[0, 1], labels=True)
    elif task_type == "tracks":
        targets = rng.poisson(2.0, size=(n, 3, (LENGTH + 2 * FLANK) // 4)).astype(np.float32)
        meta.update(channels=["a", "b", "c"], rc_perm=[0, 1, 2], bin_size=4, transform="log1p")
        seq = seq[:, : LENGTH + 2 * FLANK]
    else:
        targets = rng.poisson(0.3, size=(n, 2, LENGTH + 2 * FLANK)).astype(np.float32)
        meta.update(channels=["pa/+", "pa/-"], rc_perm=[1, 0])
    return WindowStore(save_store(directory, split, seq, targets, **meta))


def eval_checkpoint(path: Path, task_type: str, backbone: str | None = None) -> str:
    """A random model's best.ckpt for `task_type`: an LM with species tokens (profile), else a BPNet."""
    torch.manual_seed(0)
    head, n, params = {"profile": ("profile", 2, {}), "tracks": ("binned", 3, {"bin_size": 4}),
                       "classification": ("pooled", 2, {})}[task_type]
    if backbone:
        arch, model_params = "lm", {"backbone": backbone, "species": SPECIES[0], "species_list": SPECIES,
                                    "finetune": "full"}
    else:
        arch, model_params = "bpnet", {"filters": 8, "layers": 2, "input_kernel": 5, "profile_kernel": 9}
    model = build_model(arch, model_params, head, n, params)
    save_atomic({"arch": arch, "model_params": model_params, "head": model.head_spec, "task_type": task_type,
                 "length": LENGTH, "count_weight": 0.5 if task_type == "profile" else None, "best_epoch": 3,
                 "trainable_params": 1234, "state_dict": model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> str:
    from helpers import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("lm"), "nucleotide", SPECIES,
                     {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32})


def datasets(h5: h5py.File) -> list[str]:
    """The names of every dataset of an HDF5 file, groups walked."""
    names: list[str] = []
    h5.visititems(lambda name, node: names.append(name) if isinstance(node, h5py.Dataset) else None)
    return names


@pytest.mark.parametrize("task_type", ["profile", "tracks", "classification"])
def test_evaluation_from_shards_is_the_unsharded_evaluation(tmp_path, backbone, task_type) -> None:
    from dnalm.evaluate import evaluate
    from dnalm.evaluate_shards import evaluate_shard, merge_evaluation

    test, val = eval_store(tmp_path, "test", 23, task_type, 1), eval_store(tmp_path, "val", 13, task_type, 2)
    best = eval_checkpoint(tmp_path / "best.ckpt", task_type, backbone if task_type == "profile" else None)
    settings = {"site_threshold": 1.0, "batch_size": 4, "counterfactual_species": None,
                **({"calibration": "platt", "threshold": 0.5} if task_type == "classification" else {})}
    names = ("predictions.h5", "metrics.json", "counterfactual.tsv")
    (tmp_path / "whole").mkdir()
    whole = [str(tmp_path / "whole" / name) for name in names]
    evaluate(best, test, whole[0], whole[1], out_counterfactual=whole[2], val_store=val, **settings)
    for shards in (2, 3, 8):  # 8: more shards than the 6 batches of 23 test windows
        parts = [str(tmp_path / f"{shards}" / f"{s}.npz") for s in range(shards)]
        for s, part in enumerate(parts):
            evaluate_shard(best, test, part, shard=s, shards=shards, val_store=val, **settings)
        merged = [str(tmp_path / f"{shards}" / name) for name in names]
        merge_evaluation(best, test, parts, merged[0], merged[1], out_counterfactual=merged[2], val_store=val,
                         **settings)
        assert filecmp.cmp(merged[1], whole[1], shallow=False) and filecmp.cmp(merged[2], whole[2], shallow=False)
        with h5py.File(merged[0]) as got, h5py.File(whole[0]) as expected:
            keys = datasets(expected)
            assert keys and datasets(got) == keys
            for key in keys:
                np.testing.assert_array_equal(got[key][()], expected[key][()])
            assert dict(got.attrs).keys() == dict(expected.attrs).keys()
    metrics = json.loads(Path(whole[1]).read_text())
    assert metrics["n_windows"] == 23 and metrics["best_epoch"] == 3
    table = pd.read_csv(whole[2], sep="\t")
    if task_type == "profile":  # the LM's species-token counterfactual: its per-window values, joined from shards
        from dnalm.evaluate import counterfactual_parts
        from dnalm.evaluate_shards import _counterfactual
        from dnalm.predict import load_model

        assert table["species"].tolist() == SPECIES and table["token_in_use"].tolist() == [True, False]
        expected = counterfactual_parts(load_model(best)[0], test, 4, torch.device("cpu"))
        files = [np.load(tmp_path / "3" / f"{s}.npz") for s in range(3)]
        joined = _counterfactual(files)
        assert joined["names"] == expected["names"] == SPECIES and joined["in_use"] == SPECIES[0]
        for name in SPECIES:
            assert len(joined["delta"][name]) == 23 * 2 and np.abs(joined["delta"][SPECIES[1]]).max() > 0
            np.testing.assert_array_equal(joined["delta"][name], expected["delta"][name])
            np.testing.assert_array_equal(joined["pearson"][name], expected["pearson"][name])
    else:
        assert table.empty
    if task_type == "classification":
        with h5py.File(whole[0]) as h5:
            assert h5["val/embedding"].shape == (13, 8) and h5["test/embedding"].shape == (23, 8)


# -------------------------------------------------------------------------------------------------------- attribution
@pytest.mark.parametrize("lm", [False, True])
def test_attributions_from_shards_are_the_unsharded_attributions(tmp_path, backbone, lm) -> None:
    """DeepLIFT of a BPNet (2 windows per pass of 8 pairs) and integrated gradients of an LM (1 window per pass):
    every window keeps the references of its own seed, whichever shard explains it."""
    from dnalm.attribution import attribute_windows
    from dnalm.attribution_shards import attribute_shard, merge_attributions

    test = eval_store(tmp_path, "test", 23, "profile", 1)
    best = eval_checkpoint(tmp_path / "best.ckpt", "profile", backbone if lm else None)
    settings = {"n_windows": 9 if lm else 17, "outputs": ["count", "profile"], "n_shuffles": 4, "seed": 3,
                "ig_steps": 2, "batch_size": 8}
    attribute_windows(best, test, str(tmp_path / "whole.npz"), **settings)
    with np.load(tmp_path / "whole.npz") as whole:
        expected = {key: whole[key] for key in whole.files}
    assert expected["count_attr"].shape == (settings["n_windows"], 4, LENGTH)
    for shards in (2, 3, 20):  # 20: more shards than passes
        parts = [str(tmp_path / f"{shards}.{s}.npz") for s in range(shards)]
        done = [attribute_shard(best, test, part, shard=s, shards=shards, **settings) for s, part in enumerate(parts)]
        assert sum(done) == settings["n_windows"] and (shards < 20 or 0 in done)
        merge_attributions(test, parts, str(tmp_path / f"merged{shards}.npz"), **settings)
        with np.load(tmp_path / f"merged{shards}.npz") as merged:
            assert merged.files == list(expected)
            for key, value in expected.items():
                np.testing.assert_array_equal(merged[key], value, err_msg=f"{shards} shards: {key}")
