"""Tests for the transformer U-Net trunk (dnalm.models.unet) and its masked-LM pretraining (dnalm.pretrain_unet):
shapes at odd lengths, every head, species embedding, pretraining that learns and resumes after SIGKILL to the same
weights, fine-tuning modes from the pretrained directory, a planted task learned, config errors."""

from __future__ import annotations

import copy
import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_pretrain import PRETRAIN_CODE, SPECIES, assert_same_weights_and_history, ckpt, genomes  # noqa: F401

from dnalm import config as dconfig
from dnalm.models import build_model
from dnalm.models.unet import UNetTrunk, read_checkpoint, unet_widths
from dnalm.pretrain import pretrain_lm
from dnalm.pretrain_unet import onehot_inputs
from helpers import signal_when, start_python

torch.use_deterministic_algorithms(True)

ARCH = {"channels": 8, "depth": 2, "layers": 1, "heads": 2, "kernel": 5, "stem_kernel": 7, "dropout": 0.1}
SPEC = {"arch": "unet", "unet": ARCH, "window": 64, "stride": 8, "steps": 40, "batch_size": 16, "lr": 1e-2,
        "warmup": 0.1, "mask_prob": 0.15, "eval_every": 4, "val_windows": 32, "seed": 0, "checkpoint_minutes": None,
        "precision": "fp32"}
RUN = {"species": SPECIES, "threads": 1, "device": "cpu"}


def onehot(length: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    codes = torch.randint(0, 4, (batch, length), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(codes, 4).permute(0, 2, 1).float()


def small(**params) -> dict:
    return {"architecture": {**ARCH, "depth": 3}, "species": SPECIES[0], "species_list": SPECIES, **params}


@pytest.mark.parametrize("length", [1, 63, 64, 301])
def test_trunk_gives_per_base_features_at_any_length_and_every_base_counts(length):
    torch.manual_seed(0)
    trunk = UNetTrunk(**{**ARCH, "depth": 3})
    x = onehot(length).requires_grad_(True)
    h = trunk(x)
    assert h.shape == (2, trunk.out_channels, length) and trunk.out_channels == 8
    h[0].sum().backward()
    assert (x.grad[0].abs().sum(0) > 0).all()  # no base is cut off by the padding and cropping
    assert (x.grad[1] == 0).all()  # windows of a batch stay apart


def test_widths_grow_and_round_to_the_heads():
    assert unet_widths(32, 1.25, 4, 4) == [32, 40, 56, 64, 80]
    assert unet_widths(10, 1.0, 2, 4) == [16, 16, 16]


@pytest.mark.parametrize("head, params, shape", [("profile", {}, [(2, 2, 96), (2, 2)]),
                                                 ("binned", {"bin_size": 8}, [(2, 2, 12)]),
                                                 ("pooled", {"pool": "meanmax"}, [(2, 2)])])
def test_the_unet_serves_every_head(head, params, shape):
    torch.manual_seed(0)
    model = build_model("unet", small(), head, 2, params)
    out = model(onehot(96))
    out = out if isinstance(out, tuple) else (out,)
    assert [tuple(o.shape) for o in out] == shape


def test_species_embedding_changes_the_output_and_is_swapped_by_use_species():
    torch.manual_seed(0)
    trunk = build_model("unet", small(), "pooled", 2).trunk
    x = onehot(64)
    with torch.no_grad():
        first = trunk(x)
        with trunk.use_species(SPECIES[1]):
            assert trunk.species == SPECIES[1]
            second = trunk(x)
    assert trunk.species == SPECIES[0] and not torch.allclose(first, second)
    with pytest.raises(ValueError, match="no_such_species"):
        trunk.species = "no_such_species"


def test_masked_bases_are_read_as_n():
    ids = np.array([[2, 9, 5, 4, 8, 3]])  # [CLS] species A [MASK] T [SEP]
    x, species = onehot_inputs(ids)
    assert x[0].T.tolist() == [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]] and species.tolist() == [0]


@pytest.fixture(scope="module")
def pretrained(genomes, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("unet") / "unet"
    pretrain_lm(genomes, str(out), SPEC, **RUN)
    return out


def test_pretraining_learns_the_repeat_and_writes_its_directory(pretrained):
    history = pd.read_csv(pretrained / "history.tsv", sep="\t")
    assert history["val_loss"].iloc[-1] < 0.6 * history["val_loss"].iloc[0]
    assert history["val_accuracy"].iloc[-1] > 0.7  # the best single base (T) is 1/3 of the repeat
    config = json.loads((pretrained / "config.json").read_text())
    assert config["model_type"] == "dnalm_unet" and config["species"] == SPECIES
    assert config["architecture"] == {**ARCH, "growth": 1.25}
    assert (pretrained / "tokenizer.json").exists() and json.loads((pretrained / "pretrain.json").read_text())[
        "arch"] == "unet"


def test_pretraining_resumes_after_sigkill_to_the_same_weights(pretrained, genomes, tmp_path):  # noqa: F811
    out = tmp_path / "unet"
    spec = {**SPEC, "checkpoint_minutes": 0}
    proc = start_python(PRETRAIN_CODE, {"genomes": genomes, "out": str(out), "spec": spec, "run": RUN})
    signal_when(proc, (out / "last.ckpt").exists, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and not (out / "model.safetensors").exists()
    assert 1 <= ckpt(out)["step"] < SPEC["steps"]
    pretrain_lm(genomes, str(out), spec, **RUN)
    assert_same_weights_and_history(pretrained, out)


def test_finetuning_modes_start_from_the_pretrained_weights(pretrained):
    _, _, weights = read_checkpoint(pretrained)
    torch.manual_seed(0)
    models = {mode: build_model("unet", {"backbone": str(pretrained), "finetune": mode, "species": SPECIES[1],
                                         "species_list": SPECIES}, "binned", 2, {"bin_size": 8})
              for mode in ("full", "frozen", "lora", "scratch")}
    for mode in ("full", "frozen"):
        state = models[mode].trunk.state_dict()
        assert all(torch.equal(state[k], v) for k, v in weights.items()), mode
    lora = models["lora"]
    assert {n for n, p in lora.trunk.named_parameters() if p.requires_grad} == {
        n for n, _ in lora.trunk.named_parameters() if "lora_" in n} != set()
    assert torch.equal(lora.trunk.transformer[0].attention.query.base_layer.weight,
                       weights["transformer.0.attention.query.weight"])
    frozen = models["frozen"].train()
    assert not any(p.requires_grad for p in frozen.trunk.parameters()) and not frozen.trunk.training
    assert all(p.requires_grad for p in frozen.head.parameters())
    scratch = models["scratch"].trunk.state_dict()
    assert scratch.keys() == weights.keys() and not torch.equal(scratch["stem.weight"], weights["stem.weight"])


def test_species_counterfactual_and_report_row_of_a_pretrained_unet(pretrained, tmp_path):
    from test_training import write_store

    from dnalm.evaluate import species_counterfactual
    from dnalm.report.sections.pretrain import _row
    from dnalm.store import WindowStore

    torch.manual_seed(0)
    model = build_model("unet", {"backbone": str(pretrained), "finetune": "full", "species": SPECIES[1],
                                 "species_list": SPECIES}, "profile", 2)
    table = species_counterfactual(model, WindowStore(write_store(tmp_path, "test", 8, seed=3)), 4, torch.device("cpu"))
    rows = table.set_index("species")
    assert list(rows.index) == SPECIES and rows["token_in_use"].tolist() == [False, True]
    assert rows.at[SPECIES[1], "mean_abs_delta_log_count"] == 0 < rows.at[SPECIES[0], "mean_abs_delta_log_count"]
    row = _row("unet", json.loads((pretrained / "pretrain.json").read_text()))
    assert row[1] == "bases (U-Net)" and row[6] == "U-Net: 1 / channels 8, depth 2 / 2"


def test_a_planted_motif_is_learned(tmp_path):
    """The profile task of test_training (a planted motif causes the reads) learned by a small U-Net from scratch."""
    from test_training import PARAMS, write_store

    from dnalm.store import WindowStore
    from dnalm.training import train

    stores = {s: WindowStore(write_store(tmp_path, s, n, seed)) for s, n, seed in [("train", 64, 1), ("val", 32, 2)]}
    train(stores["train"], stores["val"], str(tmp_path / "model"), arch="unet", seed=0, threads=1, device="cpu",
          model_params={"architecture": {**ARCH, "channels": 16, "heads": 2}, "head_kernel": 9, "species": None},
          train_params={**PARAMS, "epochs": 12, "patience": 12, "lr": 5e-3})
    history = pd.read_csv(tmp_path / "model" / "history.tsv", sep="\t")
    best = int(history["val_loss"].idxmin())
    assert history["val_loss"][best] < 0.8 * history["val_loss"][0]
    assert history["val_pearson_median"][best] > history["val_pearson_median"][0] + 0.2


@pytest.fixture
def cfg(tmp_path) -> dict:
    base = dconfig.with_defaults({"species": {}, "tasks": {}, "pretrain": {"mlm": {"arch": "unet"}, "bert": {}},
                                  "models": {"u": {"arch": "unet", "unet": {"backbone": "mlm", "finetune": "lora"}}}})
    return copy.deepcopy(base)


@pytest.mark.parametrize("change, message", [
    ({"backbone": None}, "models.u.unet.backbone is null"),
    ({"backbone": "bert"}, "models.u.unet.backbone: pretrain.bert is arch bert; an arch unet model needs a pretrain"),
    ({"backbone": "no/such/dir"}, "models.u.unet.backbone: 'no/such/dir' is neither a pretrain name"),
])
def test_config_errors_name_the_key(cfg, change, message, tmp_path):
    cfg["models"]["u"]["unet"].update(change)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        dconfig.check_models(cfg, tmp_path)


def test_a_bert_model_refuses_a_unet_pretrain_and_a_unet_one_a_bert_directory(cfg, tmp_path, pretrained):
    dconfig.check_models(cfg, tmp_path)  # the valid config passes
    cfg["models"]["b"] = dconfig.with_defaults({"models": {"b": {"arch": "lm", "lm": {"backbone": "mlm"}}}})[
        "models"]["b"]
    with pytest.raises(ValueError, match="models.b.lm.backbone: pretrain.mlm is arch unet"):
        dconfig.check_models(cfg, tmp_path)
    bert_dir = tmp_path / "bert"
    bert_dir.mkdir()
    (bert_dir / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert', not 'dnalm_unet'"):
        build_model("unet", {"backbone": str(bert_dir), "finetune": "full"}, "pooled", 2)
    with pytest.raises(ValueError, match="finetune: lora needs a backbone"):
        build_model("unet", {"finetune": "lora"}, "pooled", 2)
    with pytest.raises(ValueError, match="no species embedding for"):
        build_model("unet", {"backbone": str(pretrained), "species_list": ["other"]}, "pooled", 2)
