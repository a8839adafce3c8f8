"""Tests for tracks tasks: transforms, binning, tiling with N/gap dropping, binned stores, chromosome-name errors,
the binned BPNet and the per-track metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyBigWig
import pyfaidx
import pytest
import torch

from dnalm import tasks
from dnalm.metrics import track_metrics
from dnalm.models import build_model
from dnalm.splits import count_table
from dnalm.store import WindowStore, write_store
from dnalm.tasks.tracks import attribution_selection, bin_signal, inverse_transform, transform
from dnalm.tiling import tile_windows
from dnalm.windows import call_sites, read_windows

BIN = 8
TARGETS = [{"name": "rna", "plus": "rna_plus", "minus": "rna_minus"}, {"name": "cov", "track": "cov"}]


def write_bigwig(path, chroms: dict[str, int], values: dict[str, np.ndarray]) -> str:
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(chroms.items()))
    for chrom, vals in values.items():
        bw.addEntries(chrom, 0, values=[float(v) for v in vals], span=1, step=1)
    bw.close()
    return str(path)


@pytest.mark.parametrize("kind", ["none", "log1p", "squash"])
def test_transforms_round_trip(kind: str) -> None:
    rng = np.random.default_rng(0)
    y = np.concatenate([[0.0, 1e-6, 1.0, 383.0, 2800.0, 1e5, 1e7], rng.gamma(0.5, 200.0, size=1000)])
    np.testing.assert_allclose(inverse_transform(transform(y, kind), kind), y, rtol=1e-9, atol=1e-9)


def test_squash_is_borzois_definition() -> None:
    # below the clip: y^(3/4); above: 384 + sqrt(y^(3/4) - 384), applied to the scaled value
    assert transform(np.array([16.0]), "squash")[0] == pytest.approx(8.0)
    y = 400.0 ** (4 / 3)  # y^(3/4) = 400 > 384
    assert transform(np.array([y]), "squash")[0] == pytest.approx(384 + 4.0)
    assert transform(np.array([384.0 ** (4 / 3)]), "squash")[0] == pytest.approx(384.0)
    with pytest.raises(ValueError, match="non-negative"):
        transform(np.array([1.0, -0.5]), "squash")


def test_binning_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(1)
    values = rng.random((3, 64)).astype(np.float32)
    for aggregate, stat in (("sum", np.sum), ("mean", np.mean)):
        direct = np.array([[stat(values[c, b * BIN : (b + 1) * BIN]) for b in range(64 // BIN)] for c in range(3)])
        np.testing.assert_allclose(bin_signal(values, BIN, aggregate), direct, rtol=1e-6)
    with pytest.raises(ValueError, match="multiple of bins.size"):
        bin_signal(values[:, :60], BIN, "mean")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """chr1 (400 bp) with 3 scattered N's at 100-102 and a 20-N gap at 300-319; chr2 clean; three bigWigs."""
    tmp = tmp_path_factory.mktemp("tracks")
    rng = np.random.default_rng(2)
    chr1 = list(rng.choice(list("ACGT"), 400))
    chr1[100] = chr1[150] = chr1[170] = "N"
    chr1[300:320] = ["N"] * 20
    seqs = {"chr1": "".join(chr1), "chr2": "".join(rng.choice(list("ACGT"), 200))}
    fasta = tmp / "g.fa"
    fasta.write_text("".join(f">{n}\n{s}\n" for n, s in seqs.items()))
    pyfaidx.Fasta(str(fasta)).close()
    sizes = {n: len(s) for n, s in seqs.items()}
    values = {name: {c: rng.gamma(1.0, 5.0, size=n) for c, n in sizes.items()} for name in ("rna_plus", "rna_minus",
                                                                                            "cov")}
    tracks = {name: write_bigwig(tmp / f"{name}.bw", sizes, per) for name, per in values.items()}
    return {"tmp": tmp, "fasta": str(fasta), "fai": f"{fasta}.fai", "tracks": tracks, "values": values,
            "sizes": sizes}


def test_tiling_drops_gaps_and_n_rich_windows(data: dict) -> None:
    out = data["tmp"] / "tiles.tsv"
    windows = tile_windows(data["fasta"], data["fai"], str(out), species="toy", chromosomes=None, length=64,
                           stride=32, flank=8, max_n_fraction=0.02, gap_length=10)
    assert windows.equals(read_windows(out).astype(windows.dtypes.to_dict()))
    chr1 = windows[windows["chrom"] == "chr1"].set_index("start")
    # starts 8, 40, ..., 328 (start + 64 + 8 <= 400); each window is checked with its 8 bp flanks
    assert list(chr1.index) == list(range(8, 329, 32))
    reasons = chr1["reason"].to_dict()
    assert {s for s, r in reasons.items() if r == "gap"} == {232, 264, 296}  # with flanks they touch 300-319
    assert {s for s, r in reasons.items() if r == "too_many_n"} == {104, 136}  # 2 or 3 N's in 80 bp > 0.02
    assert reasons[72] == reasons[328] == ""  # one N at 100 in 64-144 (1/80 <= 0.02); 320-400 ends after the gap
    assert (windows[windows["chrom"] == "chr2"]["kept"]).all()
    counts = count_table(windows.assign(split=np.where(windows["chrom"] == "chr1", "train", "val"))).set_index("split")
    dropped = int((~chr1["kept"]).sum())
    assert counts.loc["train", "dropped_n"] == dropped == 5  # 104 and 136 (N's), 232, 264 and 296 (gap)
    assert counts.loc["train", "windows"] == len(chr1) - dropped


def binned_store(data: dict, flank: int = 8) -> WindowStore:
    """A tracks store of 3 windows on chr2 (one with the + strand only), bins of 8, squash."""
    tmp = data["tmp"]
    table = pd.DataFrame({"id": ["a", "b", "c"], "species": "toy", "chrom": "chr2", "start": [8, 40, 104],
                          "end": [72, 104, 168], "strand": "+", "split": "test", "kept": True, "row": [0, 1, 2],
                          "reason": ""})
    table.to_csv(tmp / "store_windows.tsv", sep="\t", index=False)
    task = {"type": "tracks", "species": "toy", "targets": TARGETS, "window": {"flank": flank},
            "bins": {"size": BIN, "aggregate": "mean", "transform": "squash"}}
    write_store(str(tmp / "store_windows.tsv"), "test", str(tmp / "test"), task=task, genomes={"toy": data["fasta"]},
                tracks={"toy": data["tracks"]})
    return WindowStore(tmp / "test")


def test_binned_store_targets_and_shifted_batches(data: dict) -> None:
    store = binned_store(data)
    assert store.targets.shape == (3, 3, (64 + 16) // BIN) and store.bin_size == BIN
    meta = json.loads((data["tmp"] / "test.json").read_text())
    assert meta["task_type"] == "tracks" and meta["transform"] == "squash" and meta["aggregate"] == "mean"
    raw = np.stack([data["values"][n]["chr2"][32:112] for n in ("rna_plus", "rna_minus", "cov")])
    expected = raw.reshape(3, -1, BIN).mean(axis=2) ** 0.75
    np.testing.assert_allclose(store.targets[1], expected, rtol=1e-5)
    x, y = store.batch(np.array([1, 0]), shifts=np.array([8, -8]))
    np.testing.assert_allclose(y[0], expected[:, 2:10], rtol=1e-5)  # shifted right by one bin
    assert x.shape == (2, 4, 64) and y.shape == (2, 3, 64 // BIN)
    _, flipped = store.batch(np.array([1]), revcomp=np.array([True]))
    np.testing.assert_allclose(flipped[0], expected[[1, 0, 2], 1:9][:, ::-1], rtol=1e-5)  # strands swapped
    with pytest.raises(ValueError, match="multiples of the store's bin size"):
        store.batch(np.array([0]), shifts=np.array([3]))


def test_track_chromosome_names_that_match_nothing_are_an_error(data: dict) -> None:
    tmp = data["tmp"]
    wrong = write_bigwig(tmp / "wrong.bw", {"NC_041771.1": 200}, {"NC_041771.1": np.ones(200)})
    tracks = {**data["tracks"], "cov": wrong}
    with pytest.raises(ValueError) as err:
        binned_store({**data, "tracks": tracks})
    message = str(err.value)
    assert "NC_041771.1" in message and "chr1, chr2" in message and "species.toy.chrom_aliases" in message
    assert "wrong.bw" in message
    assert not (tmp / ".tmp.test.targets.npy").exists()
    with pytest.raises(ValueError, match=r"species\.toy\.chrom_aliases") as err:  # profile tasks: site calling
        call_sites(data["tracks"]["rna_plus"], wrong, 1.0, data["sizes"], "toy")
    assert "NC_041771.1" in str(err.value) and "chr1, chr2" in str(err.value)


def test_binned_bpnet_trains_with_the_poisson_loss() -> None:
    torch.manual_seed(0)
    model = build_model("bpnet", {"filters": 8, "layers": 2, "profile_kernel": 5}, "binned", 3, {"bin_size": BIN})
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (4, 64)), 4).float().transpose(1, 2)
    out = model(x)
    assert out.shape == (4, 3, 64 // BIN)
    y = torch.rand(4, 3, 64 // BIN) * 5
    loss, _, count = tasks.get("tracks").loss(out, y, 0.0)
    expected = (torch.exp(out) - y * out).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6) and count.item() == 0
    loss.backward()
    assert model.trunk.iconv.weight.grad.abs().sum() > 0


def test_track_metrics_against_direct_pearson() -> None:
    rng = np.random.default_rng(3)
    obs = rng.gamma(1.0, 3.0, size=(5, 2, 16))
    pred = obs + rng.normal(0, 1.0, size=obs.shape)
    metrics = track_metrics(pred, obs, ["a", "b"])
    per = [[np.corrcoef(pred[i, c], obs[i, c])[0, 1] for c in range(2)] for i in range(5)]
    assert metrics["pearson_median"] == pytest.approx(np.median(per))
    assert metrics["window_pearson_median/b"] == pytest.approx(np.median(np.array(per)[:, 1]))
    assert metrics["track_pearson/a"] == pytest.approx(np.corrcoef(pred[:, 0].ravel(), obs[:, 0].ravel())[0, 1])


def test_evaluation_inverts_the_transform_and_reports_the_poisson_loss(data: dict, tmp_path) -> None:
    """predictions.h5 holds exp(log-rate) taken back to the bigWig's scale, and test_loss is the Poisson NLL on the
    training (squashed) scale: both recomputed here from the model's own outputs, with the squash written out."""
    import h5py

    from dnalm.device import pick_device
    from dnalm.predict import predict_outputs

    store = binned_store(data)
    torch.manual_seed(0)
    model = build_model("bpnet", {"filters": 8, "layers": 2, "profile_kernel": 5}, "binned", 3, {"bin_size": BIN})
    model.eval()
    batches = predict_outputs(model, store, 2, pick_device("cpu"))
    out = tmp_path / "predictions.h5"
    metrics = tasks.get("tracks").evaluate(batches, {}, store, str(out), site_threshold=1.0)
    x, y = store.batch(np.arange(len(store)))
    with torch.no_grad():
        log_rate = model(torch.from_numpy(x)).double().numpy()
    rate = np.exp(log_rate)
    unsquash = np.where(rate > 384, 384 + (rate - 384) ** 2, rate) ** (4 / 3)  # Borzoi's squash, inverted by hand
    with h5py.File(out) as h5:
        np.testing.assert_allclose(h5["predicted"][:], unsquash, rtol=1e-4)
        np.testing.assert_allclose(h5["observed"][:], np.where(y > 384, 384 + (y - 384) ** 2, y) ** (4 / 3), rtol=1e-4)
    assert metrics["test_loss"] == pytest.approx(float(np.mean(rate - y * log_rate)), rel=1e-5)
    assert metrics["pearson_median"] != metrics["pearson_median_transformed"]  # two scales, two values


def test_attribution_selection_resolves_names_and_the_central_bins() -> None:
    channels = ["rna/+", "rna/-", "cov"]
    default = attribution_selection(channels, 320, BIN, None, None, "tasks.t")
    # every channel; the central quarter, bp 120-200 = bins 15-24
    assert default == {"channels": [0, 1, 2], "names": channels, "bins": [15, 25],
                       "bp": [120, 200]}
    picked = attribution_selection(channels, 320, BIN, ["cov", "rna"], 20, "tasks.t")
    # a target's name takes both strands; 20 central bp (150-170) overlap bins 18-21
    assert picked == {"channels": [2, 0, 1], "names": ["cov", "rna/+", "rna/-"], "bins": [18, 22],
                      "bp": [144, 176]}
    assert attribution_selection(channels, 320, BIN, ["rna/-"], 320, "tasks.t")["bins"] == [0, 40]
    with pytest.raises(ValueError, match=r"'polii' is not a channel of tasks.t \(its channels: rna/\+, rna/-, cov"):
        attribution_selection(channels, 320, BIN, ["polii"], None, "tasks.t")
    with pytest.raises(ValueError, match="interpret.tracks.range: 321 bp is longer than the 320 bp windows"):
        attribution_selection(channels, 320, BIN, None, 321, "tasks.t")
    assert tasks.get("tracks").attribution_outputs == ("tracks",)
