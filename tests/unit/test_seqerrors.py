"""Tests for dnalm.seqerrors (the error simulator), the seqerror task type's stores, metrics, loss and config."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from dnalm import config as dc
from dnalm import tasks
from dnalm.config_variants import track_runs, variant_jobs
from dnalm.metrics import tagging_metrics
from dnalm.outputs import report_manifest
from dnalm.seqerror_store import write_noisy_store
from dnalm.seqerrors import (
    CHANNELS,
    ErrorProfile,
    apply_edits,
    observed_rates,
    simulate,
    true_length,
    window_rng,
)
from dnalm.store import WindowStore, encode

REPO = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(11)
WIDTH = 300


def random_codes(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, n).astype(np.uint8)


def reads(profile: ErrorProfile, n: int = 200, width: int = WIDTH, seed: int = 0):
    true = random_codes(true_length(width, profile) * 2, seed)
    return [simulate(true, width, profile, window_rng(seed, f"w{i}")) for i in range(n)]


def within_binomial(events: int, trials: int, p: float, sds: float = 5.0) -> bool:
    """|events / trials − p| within `sds` binomial standard deviations (5 sd: a correct simulator fails with
    probability ~6e-7, and the fixed seeds make each test deterministic anyway)."""
    return abs(events / trials - p) <= sds * math.sqrt(p * (1 - p) / trials)


# ------------------------------------------------------------------------------------------------------ simulator
def test_the_same_seed_window_and_copy_give_the_same_read_and_another_copy_differs() -> None:
    profile = ErrorProfile(0.05, 0.03, 0.03)
    true = random_codes(1000)
    a = simulate(true, WIDTH, profile, window_rng(3, "II:100-400", 1))
    b = simulate(true, WIDTH, profile, window_rng(3, "II:100-400", 1))
    c = simulate(true, WIDTH, profile, window_rng(3, "II:100-400", 2))
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.tags, b.tags)
    assert not np.array_equal(a.tags, c.tags)


@pytest.mark.parametrize("rates", [(0.03, 0.02, 0.04), (0.2, 0.1, 0.15), (0.0, 0.3, 0.0)])
def test_observed_rates_per_kind_match_the_configured_ones(rates) -> None:
    """Substitutions per kept base, deletions per true base, insertions per insertion trial: each within 5 binomial
    standard deviations of its rate (at least 30,000 trials each; a rate of 0 gives no event at all)."""
    profile = ErrorProfile(*rates)
    counted = observed_rates(reads(profile))
    for kind, p in zip(("substitution", "insertion", "deletion"), rates, strict=True):
        events, trials = counted[kind]
        assert trials > 30_000
        assert within_binomial(events, trials, p), (kind, events / trials, p)


def reference_tags(true: np.ndarray, edits: np.ndarray, width: int) -> np.ndarray:
    """Tags of the edits by a plain loop: walk the true bases; a deleted one opens a gap, tagged on the last noisy
    base so far (after) and the next one (before); substituted and inserted bases are tagged as they are made."""
    tags: list[list[int]] = []
    gap = False

    def emit(kind: int | None) -> None:
        nonlocal gap
        tags.append([int(kind == 0), int(kind == 1), 0, int(gap)])
        gap = False

    for i in range(len(true)):
        kinds = [int(e["kind"]) for e in edits if e["pos"] == i]
        if 2 in kinds:
            gap = True
            if tags:
                tags[-1][2] = 1
        else:
            emit(0 if 0 in kinds else None)
        for _ in range(kinds.count(1)):
            emit(1)
    return np.array(tags[:width], dtype=np.uint8).T


def test_the_edits_applied_to_the_true_sequence_give_the_noisy_one_and_the_tags_follow_the_edits() -> None:
    """An independent plain loop (`apply_edits`) rebuilds each noisy sequence from the true one, another
    (`reference_tags`) its tags; and the tags agree with the noisy→true map: an inserted base has no source, a
    substituted base differs from its source, any other base equals it."""
    profile = ErrorProfile(0.08, 0.06, 0.07, homopolymer_factor=2.0)
    for read in reads(profile, n=50):
        assert len(read.noisy) == WIDTH and read.tags.shape == (4, WIDTH) and read.padded == 0
        np.testing.assert_array_equal(apply_edits(read.true, read.edits), read.noisy)
        np.testing.assert_array_equal(reference_tags(read.true, read.edits, WIDTH), read.tags)
        src, sub = read.source, read.tags[0].astype(bool)
        np.testing.assert_array_equal(read.tags[1].astype(bool), src == -1)
        copied = src >= 0
        assert (read.noisy[copied & sub] != read.true[src[copied & sub]]).all()
        np.testing.assert_array_equal(read.noisy[copied & ~sub], read.true[src[copied & ~sub]])
        assert sorted(src[copied]) == list(src[copied])  # an alignment: true bases in order
        np.testing.assert_array_equal(read.tags[2, :-1], read.tags[3, 1:])  # one gap, two sides


def test_the_deletion_sides_agree_and_a_short_true_sequence_is_padded_with_untagged_n() -> None:
    profile = ErrorProfile(0.0, 0.0, 0.3)
    read = simulate(random_codes(100), WIDTH, profile, window_rng(0, "w"))
    m = WIDTH - read.padded
    assert read.padded > 0 and m == 100 - int((read.edits["kind"] == 2).sum())
    assert (read.noisy[m:] == 4).all() and read.tags[:, m:].sum() == 0 and (read.source[m:] == -2).all()
    np.testing.assert_array_equal(read.tags[2, : m - 1], read.tags[3, 1:m])


def test_homopolymer_indels_are_more_frequent_and_repeat_the_runs_base() -> None:
    """A run of 8 As between random bases: deletions inside it at factor × rate, insertions after its bases are As."""
    profile = ErrorProfile(0.0, 0.02, 0.02, homopolymer_length=4, homopolymer_factor=5.0)
    unit = np.r_[random_codes(40, 1), np.zeros(8, np.uint8), random_codes(40, 2)]
    true = np.tile(unit, 40)
    in_run = np.tile(np.r_[np.zeros(40), np.ones(8), np.zeros(40)].astype(bool), 40)
    hp_del = hp_n = out_del = out_n = 0
    for i in range(200):
        read = simulate(true, 3000, profile, window_rng(1, f"h{i}"))
        n = len(read.true)
        dels = read.edits["pos"][read.edits["kind"] == 2]
        hp_del += int(in_run[dels].sum())
        out_del += int((~in_run[dels]).sum())
        hp_n += int(in_run[:n].sum())
        out_n += int((~in_run[:n]).sum())
        ins = read.edits[(read.edits["kind"] == 1) & in_run[read.edits["pos"]]]
        assert (ins["base"] == 0).all()
    assert within_binomial(hp_del, hp_n, 0.1) and within_binomial(out_del, out_n, 0.02)


def test_the_substitution_matrix_decides_the_new_base() -> None:
    """Rows A C G T, transitions twice as frequent as each transversion: from A, G half the time."""
    matrix = [[0, 1, 2, 1], [1, 0, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]]
    profile = ErrorProfile.from_config({"rates": {"substitution": 0.2}, "substitution_matrix": matrix})
    new = np.concatenate([r.edits["base"][r.edits["kind"] == 0] for r in reads(profile)])
    old = np.concatenate([r.true[r.edits["pos"][r.edits["kind"] == 0]] for r in reads(profile)])
    transition = {0: 2, 2: 0, 1: 3, 3: 1}
    hits = sum(int(transition[o] == n) for o, n in zip(old, new, strict=True))
    assert (new != old).all() and within_binomial(hits, len(new), 0.5)


@pytest.mark.parametrize(("block", "message"), [
    ({"rates": {"inversion": 0.1}}, "errors.rates: unknown error kind(s) ['inversion']; known: substitution"),
    ({"rates": {"substitution": 0.7}}, "errors.rates.substitution: 0.7 is not a probability per base in [0, 0.5]"),
    ({"substitution_matrix": [[0, 1, 1]]}, "errors.substitution_matrix: must be 4 rows"),
    ({"substitution_matrix": [[1, 0, 0, 0]] + [[0, 1, 1, 1]] * 3}, "row A has no substitution"),
    ({"homopolymer": {"min_length": 1}}, "errors.homopolymer: min_length must be ≥ 2"),
])
def test_bad_error_profiles_are_refused_naming_the_key(block, message) -> None:
    with pytest.raises(ValueError) as err:
        ErrorProfile.from_config(block)
    assert message in str(err.value)


# ------------------------------------------------------------------------------------------------------- metrics
def test_tagging_metrics_on_a_hand_made_case() -> None:
    """8 bases: substitutions at 1 and 5, calls at 1 and 2 (TP 1, FP 1, FN 1); deletion gaps scored by the mean of
    the after-channel left of the gap and the before-channel right of it."""
    tags = np.zeros((1, 4, 8), np.uint8)
    prob = np.zeros((1, 4, 8), np.float32)
    tags[0, 0, [1, 5]] = 1
    prob[0, 0] = [0.1, 0.9, 0.6, 0.2, 0.1, 0.3, 0.0, 0.0]
    tags[0, 2, 3], tags[0, 3, 4] = 1, 1  # one deletion between bases 3 and 4
    prob[0, 2, 3], prob[0, 3, 4] = 0.8, 0.4  # its gap scores 0.6: called
    prob[0, 2, 6] = 0.9  # gap 6-7 scores 0.45: not called
    m = tagging_metrics(prob, tags)
    assert (m["precision_substitution"], m["recall_substitution"], m["f1_substitution"]) == (0.5, 0.5, 0.5)
    assert m["auprc_substitution"] == pytest.approx((1 + 2 / 3) / 2)  # by score: base 1 (hit), 2, 5 (hit, rank 3)
    assert m["errors_substitution"] == 2 and m["prevalence_substitution"] == 2 / 8
    assert (m["precision_deletion"], m["recall_deletion"], m["auprc_deletion"]) == (1.0, 1.0, 1.0)
    assert m["errors_deletion"] == 1 and m["prevalence_deletion"] == 1 / 7  # 7 gaps
    assert math.isnan(m["auprc_insertion"]) and math.isnan(m["f1_insertion"])  # neither errors nor calls


# ---------------------------------------------------------------------------------------------- stores and loss
@pytest.fixture(scope="module")
def noisy_stores(tmp_path_factory) -> Path:
    """Train, val and test stores of 10, 4 and 4 windows of 64 bp (flank 8) tiled on a random genome."""
    d = tmp_path_factory.mktemp("seqerror")
    genome = "".join(RNG.choice(list("ACGT"), 3000))
    (d / "g.fa").write_text(f">c1\n{genome}\n")
    rows = [{"id": f"c1:{8 + 80 * i}", "species": "sp", "chrom": "c1", "start": 8 + 80 * i, "end": 72 + 80 * i,
             "strand": "+", "kept": True, "reason": "", "split": ["train"] * 10 + ["val"] * 4 + ["test"] * 4,
             "row": i} for i in range(18)]
    for r in rows:
        r["split"] = r["split"][r["row"]]
        r["row"] = r["row"] - {"train": 0, "val": 10, "test": 14}[r["split"]]
    pd.DataFrame(rows).to_csv(d / "windows.tsv", sep="\t", index=False)
    task = {"type": "seqerror", "window": {"flank": 8},
            "errors": {"rates": {"substitution": 0.1, "insertion": 0.05, "deletion": 0.05}, "copies": 3, "seed": 4}}
    for split in ("train", "val", "test"):
        write_noisy_store(str(d / "windows.tsv"), split, str(d / split), task=task, genomes={"sp": str(d / "g.fa")})
    (d / "genome.txt").write_text(genome)
    return d


def test_noisy_stores_hold_copies_of_simulated_reads_of_the_genome(noisy_stores: Path) -> None:
    train, test = WindowStore(noisy_stores / "train"), WindowStore(noisy_stores / "test")
    assert len(train) == 30 and len(test) == 4 and train.channels == list(CHANNELS)
    assert train.meta["ids"][:3] == ["c1:8~copy0", "c1:8~copy1", "c1:8~copy2"] and test.meta["ids"][0] == "c1:1128"
    assert train.seq.shape == (30, 80) and train.targets.shape == (30, 4, 80)
    genome = (noisy_stores / "genome.txt").read_text()
    profile = ErrorProfile(0.1, 0.05, 0.05)
    read = simulate(encode(genome[0 : true_length(80, profile)]), 80, profile, window_rng(4, "c1:8", 1))
    np.testing.assert_array_equal(train.seq[1], read.noisy)
    np.testing.assert_array_equal(train.targets[1], read.tags)
    assert not np.array_equal(train.seq[0], train.seq[1])


def test_reverse_complement_swaps_the_two_sides_of_a_deletion(noisy_stores: Path) -> None:
    store = WindowStore(noisy_stores / "train")
    _, fwd = store.batch(np.arange(30))
    _, rev = store.batch(np.arange(30), revcomp=np.ones(30, bool))
    np.testing.assert_array_equal(rev[:, 2], fwd[:, 3, ::-1])  # after the gap reversed = before it
    np.testing.assert_array_equal(rev[:, :2], fwd[:, :2, ::-1])
    assert fwd[:, 2].sum() > 0


def test_each_epoch_shows_every_window_once_as_a_copy_drawn_anew(noisy_stores: Path) -> None:
    store, task = WindowStore(noisy_stores / "train"), tasks.get("seqerror")
    orders = [task.epoch_order(store, np.random.default_rng([0, e]), {}) for e in range(1, 4)]
    for order in orders:
        assert sorted(order // 3) == list(range(10))
    assert len({tuple(np.sort(o)) for o in orders}) > 1  # other copies in other epochs


def test_class_weights_make_errors_weigh_as_much_as_correct_bases(noisy_stores: Path) -> None:
    store, task = WindowStore(noisy_stores / "train"), tasks.get("seqerror")
    weights = task.count_weight(store, {"class_balance": "weights"})
    tags = store.targets[:, :, 8:72]
    assert weights[0] == pytest.approx((tags[:, 0] == 0).sum() / tags[:, 0].sum())
    assert task.count_weight(store, {"class_balance": "none"}) == [1.0] * 4
    logits, target = torch.zeros(2, 4, 64), torch.from_numpy(tags[:2].astype(np.float32))
    plain, weighted = task.loss(logits, target, [1.0] * 4)[0], task.loss(logits, target, weights)[0]
    assert weighted > plain  # errors weigh more


# ------------------------------------------------------------------------------------------------------- config
def seqerror_config(**errors) -> dict:
    """The example config with small windows (and `errors` keys replaced)."""
    cfg = yaml.safe_load((REPO / "config" / "examples" / "yeast_seqerror.yaml").read_text())
    cfg["tasks"]["noise"]["errors"].update(errors)
    return cfg


def checked(cfg: dict) -> dict:
    dc.validate(cfg)
    dc.check(cfg, REPO)
    return cfg


def test_the_example_is_a_valid_config_without_interpretation_variants_or_prediction_tracks() -> None:
    cfg = checked(seqerror_config())
    cfg["interpret"]["models"] = cfg["prediction_tracks"]["models"] = None  # every model: still none for seqerror
    assert dc.interpret_pairs(cfg) == [] and track_runs(cfg) == [] and variant_jobs(cfg) == []
    kinds = {r["kind"] for r in report_manifest(cfg)}
    assert {"seqerror_metrics", "comparison", "prediction"} <= kinds and "attributions" not in kinds


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["tasks"]["noise"]["errors"]["rates"].update(inversion=0.1),
     "tasks.noise.errors.rates: Additional properties are not allowed ('inversion' was unexpected)"),
    (lambda c: c["tasks"]["noise"]["errors"]["rates"].update(deletion=0.6),
     "tasks.noise.errors.rates.deletion: 0.6 is greater than the maximum of 0.5"),
    (lambda c: c["tasks"]["noise"]["errors"].update(rates={"substitution": 0, "insertion": 0, "deletion": 0}),
     "tasks.noise.errors.rates: every rate is 0, so there is nothing to detect"),
    (lambda c: c["tasks"]["noise"]["errors"].update(substitution_matrix=[[0, 0, 0, 0]] * 4),
     "tasks.noise.errors.substitution_matrix: row A has no substitution"),
    (lambda c: c["species"]["scer"].update(tracks={"x": {"path": "x.bw"}}) or c["tasks"]["noise"].update(
        targets=[{"name": "x", "track": "x"}]),
     "tasks.noise.targets: seqerror tasks make their own targets"),
    (lambda c: c["models"]["bpnet"]["train"].update(class_balance="sampling"),
     "models.bpnet.train.class_balance: sampling draws windows by class"),
    (lambda c: c["interpret"].update(models=["bpnet"]),
     "interpret.models: 'bpnet' trains only on tasks whose type has no attributions"),
    (lambda c: c["prediction_tracks"].update(models=["lm6"]),
     "prediction_tracks.models: 'lm6' trains only on tasks whose type has no attributions"),
])
def test_config_errors_of_seqerror_tasks_name_the_key(edit, message) -> None:
    cfg = copy.deepcopy(seqerror_config())
    cfg.setdefault("prediction_tracks", {})
    edit(cfg)
    with pytest.raises(ValueError) as err:
        checked(cfg)
    assert message in str(err.value)


def test_metrics_json_of_a_store_evaluation_has_every_comparison_column(noisy_stores: Path, tmp_path: Path) -> None:
    """The task type's evaluation writes predictions.h5 and returns its comparison columns and extra metrics."""
    import h5py

    store, task = WindowStore(noisy_stores / "test"), tasks.get("seqerror")
    _, y = store.batch(np.arange(4))
    logits = torch.from_numpy(np.where(y > 0, 3.0, -3.0).astype(np.float32))  # a perfect tagger
    metrics = task.evaluate([(np.arange(4), logits, torch.from_numpy(y))], {"count_weight": [1.0] * 4}, store,
                            str(tmp_path / "p.h5"))
    assert set(task.metrics) <= set(metrics) and metrics["f1_substitution"] == 1.0
    assert metrics["auprc_deletion"] == 1.0 and metrics["n_windows"] == 4
    with h5py.File(tmp_path / "p.h5") as h5:
        assert h5["observed"].shape == (4, 4, 64) and h5["noisy"].shape == (4, 64)
        np.testing.assert_array_equal(h5["noisy"][:], store.seq[:, 8:72])
    json.dumps(metrics)  # the metrics.json it becomes


@pytest.mark.parametrize(("arch", "params"), [
    ("bpnet", {"filters": 8, "layers": 2, "profile_kernel": 5}),
    ("lm", {"backbone": None, "finetune": "scratch", "tokenizer": "kmer6_species", "head": "conv", "species": "yeast",
            "architecture": {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32}}),
])
def test_bpnet_and_a_6mer_lm_train_and_evaluate_on_noisy_stores(noisy_stores: Path, tmp_path: Path, arch, params):
    """Any trunk with the tagger head: one epoch of training (revcomp and jitter on), the evaluation and (the LM) the
    species-token counterfactual."""
    from dnalm.evaluate import evaluate
    from dnalm.schema import block_defaults
    from dnalm.training import train

    torch.use_deterministic_algorithms(True)
    tp = {**block_defaults("models", "train"), "epochs": 1, "batch_size": 8, "jitter": 8, "revcomp": True,
          "class_balance": "weights", "precision": "fp32"}
    summary = train(WindowStore(noisy_stores / "train"), WindowStore(noisy_stores / "val"), str(tmp_path / "m"),
                    arch=arch, model_params=params, train_params=tp, seed=0)
    assert summary["head"]["kind"] == "tagger" and len(summary["count_weight"]) == 4
    history = pd.read_csv(tmp_path / "m/history.tsv", sep="\t")
    assert np.isfinite(history["val_loss"]).all() and "val_f1_deletion" in history
    metrics = evaluate(str(tmp_path / "m/best.ckpt"), WindowStore(noisy_stores / "test"), str(tmp_path / "p.h5"),
                       str(tmp_path / "metrics.json"), site_threshold=1.0,
                       out_counterfactual=str(tmp_path / "cf.tsv"))
    assert metrics["n_windows"] == 4 and 0 <= metrics["auprc_substitution"] <= 1
    swap = pd.read_csv(tmp_path / "cf.tsv", sep="\t")  # the LM's species token: its own row, no change
    assert swap.empty if arch == "bpnet" else swap.loc[swap["token_in_use"], "mean_abs_delta_log_count"].item() == 0
