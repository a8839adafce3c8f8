"""Tests for the byte-level encoder-decoder (dnalm.tokenize_enbed, dnalm.models.enbed, dnalm.pretrain_enbed): the
tokenizer, span corruption statistics, a copy task, export to from_pretrained, pretraining and its resume after
SIGKILL, fine-tuning modes, a planted-motif classifier and the config checks."""

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
from dnalm import tokenize_enbed as te
from dnalm.models import build_model
from dnalm.models.enbed import EnbedTrunk, build_enbed, save_enbed
from dnalm.pretrain import pretrain_lm
from dnalm.pretrain_enbed import corrupt, span_counts, span_mask
from helpers import signal_when, start_python

torch.use_deterministic_algorithms(True)

TINY = {
    "d_model": 32,
    "d_ff": 64,
    "heads": 2,
    "encoder_layers": 2,
    "local_radius": 32,
    "global_block_size": 4,
    "dropout": 0.0,
}
SPEC = {
    "arch": "enbed",
    "window": 64,
    "stride": 16,
    "mean_span": 4,
    "enbed": TINY,
    "steps": 200,
    "batch_size": 16,
    "lr": 5e-3,
    "warmup": 0.1,
    "mask_prob": 0.15,
    "eval_every": 40,
    "val_windows": 32,
    "seed": 0,
    "checkpoint_minutes": None,
    "precision": "fp32",
}  # exact on any CPU
RUN = {"species": SPECIES, "threads": 1, "device": "cpu"}


def onehot(seqs: list[str]) -> torch.Tensor:
    """One-hot (B, 4, L) of sequences (N all zeros)."""
    codes = np.array([[("ACGT" + "N").index(b) for b in s] for s in seqs])
    return torch.from_numpy((codes[:, None, :] == np.arange(4)[None, :, None]).astype(np.float32))


# ---------------------------------------------------------------------------------------------------- tokenizer
def test_tokenizer_round_trip_with_n_lower_case_and_unknown_letters(tmp_path):
    from transformers import AutoTokenizer

    seq = "ACGTNacgtn"
    ids = te.encode(seq)
    assert ids.tolist() == [3, 4, 5, 6, 7, 3, 4, 5, 6, 7] and te.decode(ids) == seq.upper()
    with pytest.raises(ValueError, match=r"letter 'R' at position 4 is not a base"):
        te.encode("ACGTRNX")
    assert te.encode_codes(np.array([0, 1, 2, 3, 4, 9])).tolist() == [3, 4, 5, 6, 7, 7]
    te.save_tokenizer(tmp_path, 3, 64)
    tok = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert tok(seq).input_ids == ids.tolist()  # no </s> appended: the encoder's input
    assert tok("AC<extra_id_2>gX").input_ids == [3, 4, 10, 5, te.UNK]
    assert len(tok) == 11 and tok.pad_token_id == te.PAD and tok.eos_token_id == te.EOS
    assert te.n_sentinels(tok.get_vocab()) == 3
    with pytest.raises(ValueError, match="not an enbed vocabulary"):
        te.n_sentinels({"[PAD]": 0, "A": 1})


# ----------------------------------------------------------------------------------------------- span masking
@pytest.mark.parametrize("length, mask_prob, mean_span", [(2000, 0.15, 20), (1000, 0.3, 10)])
def test_span_masking_statistics_on_a_seeded_sample(length, mask_prob, mean_span):
    """Masked fraction = round(L p) / L exactly (within 0.1% of p), mean span within 5% of mean_span, spans never
    touch, and both ends of a window are masked in about half of the windows."""
    rng = np.random.default_rng(0)
    masks = np.stack([span_mask(length, mask_prob, mean_span, rng) for _ in range(400)])
    assert abs(masks.mean() - mask_prob) < 1e-3
    starts = masks & ~np.pad(masks, ((0, 0), (1, 0)))[:, :-1]
    n_noise, n_spans = span_counts(length, mask_prob, mean_span)
    assert (starts.sum(1) == n_spans).all() and (masks.sum(1) == n_noise).all()
    assert abs(masks.sum() / starts.sum() - mean_span) < 0.05 * mean_span
    runs = np.diff(np.flatnonzero(np.diff(np.pad(masks[0].astype(int), 1))))[::2]
    assert runs.min() >= 1 and runs.max() > mean_span  # lengths vary around the mean
    assert 0.4 < masks[:, 0].mean() < 0.6 and 0.4 < masks[:, -1].mean() < 0.6


def test_corrupted_windows_give_back_the_window():
    rng = np.random.default_rng(1)
    ids = te.encode_codes(rng.integers(0, 4, 300))
    mask = span_mask(300, 0.15, 20, rng)
    inputs, target = corrupt(ids, mask)
    n_noise, n_spans = span_counts(300, 0.15, 20)
    assert len(inputs) == 300 - n_noise + n_spans and len(target) == n_noise + n_spans + 1 and target[-1] == te.EOS
    spans = te.decode(target[:-1]).split("<extra_id_")[1:]
    spans = {int(s.split(">")[0]): s.split(">")[1] for s in spans}
    text = te.decode(inputs)
    for i, span in spans.items():
        text = text.replace(te.sentinel(i), span)
    assert text == te.decode(ids)


# ------------------------------------------------------------------------------------------- copy and export
def test_a_tiny_encoder_decoder_learns_to_copy():
    torch.manual_seed(0)
    model = build_enbed({**TINY, "heads": 4, "local_radius": 4}, 0)
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 8)) for _ in range(4)]
    x = torch.from_numpy(np.stack([te.encode(s) for s in seqs]))
    y = torch.cat([x, torch.full((len(seqs), 1), te.EOS)], 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        loss = model(input_ids=x, labels=y).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
    out = model.eval().generate(input_ids=x, max_new_tokens=10, do_sample=False, num_beams=1)
    assert [te.decode(o[1:10]) for o in out] == [s + "</s>" for s in seqs]  # after the start token <pad>


def test_export_loads_with_from_pretrained_offline_to_identical_logits(tmp_path):
    from transformers import AutoTokenizer, LongT5ForConditionalGeneration

    torch.manual_seed(0)
    model = build_enbed(TINY, 5).eval()
    save_enbed(model, tmp_path, max_length=64)
    loaded = LongT5ForConditionalGeneration.from_pretrained(str(tmp_path), local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert loaded.config.encoder_attention_type == "transient-global"
    assert (loaded.config.num_layers, loaded.config.num_decoder_layers) == (2, 1)  # 2:1
    ids = torch.tensor([tok("ACGTTGCANNGT<extra_id_0>ACG<extra_id_1>").input_ids])
    labels = torch.tensor([[te.SENTINEL_START, 3, 4, te.SENTINEL_START + 1, 5, te.EOS]])
    with torch.no_grad():
        a, b = (m(input_ids=ids, labels=labels).logits for m in (model, loaded))
    assert torch.equal(a, b)
    trunk, _ = build_model("enbed", {"backbone": str(tmp_path), "finetune": "full"}, "pooled", 2).eval().trunk, 0
    seq = "ACGTTGCANNGTACGTAC"
    with torch.no_grad():
        features = trunk(onehot([seq]))
        hidden = loaded.encoder(input_ids=torch.tensor([tok(seq).input_ids])).last_hidden_state
    assert torch.allclose(features, hidden.transpose(1, 2), atol=1e-6)  # one-hot embedding = the token lookup


# ------------------------------------------------------------------------------------------------ pretraining
@pytest.fixture(scope="module")
def pretrained(genomes, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("enbed") / "enbed"
    pretrain_lm(genomes, str(out), SPEC, **RUN)
    return out


def test_pretraining_learns_the_repeat_and_writes_its_directory(pretrained):
    """The validation loss ends below that of a model that knows the targets' format (sentinels, `</s>`) but guesses
    the bases (ln 4 each): the masked bases are read off the tandem repeat."""
    history = pd.read_csv(pretrained / "history.tsv", sep="\t")
    n_noise, n_spans = span_counts(64, 0.15, 4)
    format_only = n_noise / (n_noise + n_spans + 1) * np.log(4)
    assert history["val_loss"].iloc[-1] < min(0.95 * format_only, 0.8 * history["val_loss"].iloc[0])
    config = json.loads((pretrained / "config.json").read_text())
    assert config["model_type"] == "longt5" and config["encoder_attention_type"] == "transient-global"
    assert (config["local_radius"], config["global_block_size"], config["num_decoder_layers"]) == (32, 4, 1)
    summary = json.loads((pretrained / "pretrain.json").read_text())
    assert summary["arch"] == "enbed" and summary["sentinels"] == span_counts(64, 0.15, 4)[1] == 2
    assert config["vocab_size"] == te.SENTINEL_START + 2
    outputs = ("config.json", "model.safetensors", "tokenizer.json", "pretrain.json", "history.tsv")  # pretrain_lm's
    assert all((pretrained / name).exists() for name in outputs)


def test_report_row_of_an_enbed_pretrain(pretrained):
    from dnalm.report.sections.pretrain import _row

    row = _row("ed", json.loads((pretrained / "pretrain.json").read_text()))
    assert row[1] == "bases + span sentinels (enbed)" and row[6] == "enbed: 2:1 / 32 / 2, radius 32, block 4"


def test_pretraining_resumes_after_sigkill_to_the_same_weights(pretrained, genomes, tmp_path):  # noqa: F811
    out = tmp_path / "enbed"
    spec = {**SPEC, "checkpoint_minutes": 0}
    proc = start_python(PRETRAIN_CODE, {"genomes": genomes, "out": str(out), "spec": spec, "run": RUN})
    signal_when(proc, (out / "last.ckpt").exists, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL and not (out / "model.safetensors").exists()
    assert 1 <= ckpt(out)["step"] < SPEC["steps"]
    pretrain_lm(genomes, str(out), SPEC, **RUN)  # checkpoint settings are not part of the run: it resumes
    assert_same_weights_and_history(pretrained, out)


def test_finetuning_modes_start_from_the_pretrained_weights(pretrained):
    from safetensors.torch import load_file

    from dnalm.attribution import resolve_method

    saved = load_file(str(pretrained / "model.safetensors"))
    weights = {k.removeprefix("encoder."): v for k, v in saved.items() if k.startswith("encoder.")}
    weights["embed_tokens.weight"] = saved["shared.weight"]  # tied to the decoder's input and output embeddings
    torch.manual_seed(0)
    models = {
        mode: build_model("enbed", {"backbone": str(pretrained), "finetune": mode}, "pooled", 2)
        for mode in ("full", "frozen", "lora", "scratch")
    }
    for mode in ("full", "frozen"):
        state = models[mode].trunk.encoder.encoder.state_dict()
        assert all(torch.equal(state[k], v) for k, v in weights.items()), mode
    lora = models["lora"].trunk
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in lora.named_parameters() if "lora_" in n} != set()
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable} == {"q", "v", "o", "wi_0", "wi_1", "wo"}
    assert resolve_method(models["lora"]) == "ig"  # attention: integrated gradients down to the bases
    frozen = models["frozen"].train()
    assert not any(p.requires_grad for p in frozen.trunk.parameters()) and not frozen.trunk.encoder.training
    scratch = models["scratch"].trunk.encoder.encoder.state_dict()
    key = "block.0.layer.0.TransientGlobalSelfAttention.q.weight"
    assert scratch.keys() == weights.keys() and not torch.equal(scratch[key], weights[key])


def test_a_finetuned_lora_model_exports_its_merged_encoder_and_reloads_to_the_same_outputs(pretrained, tmp_path):
    from transformers import AutoTokenizer, LongT5EncoderModel

    from dnalm.models.export import export_hf, load_exported

    torch.manual_seed(0)
    model = build_model("enbed", {"backbone": str(pretrained), "finetune": "lora"}, "pooled", 3, {"pool": "meanmax"})
    for name, param in model.named_parameters():  # trained adapters: lora_B starts at zero
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    model.eval()
    export_hf(model, tmp_path / "hf")
    x = onehot(["ACGTTGCANNGTACGTAC", "TTTTACGTACGTGGGGCA"])
    with torch.no_grad():
        assert torch.allclose(load_exported(tmp_path / "hf")(x), model(x), atol=1e-5)
        encoder = LongT5EncoderModel.from_pretrained(str(tmp_path / "hf"), local_files_only=True).eval()
        ids = torch.tensor(
            [AutoTokenizer.from_pretrained(str(tmp_path / "hf"), local_files_only=True)("ACGTTGCANNGTACGTAC").input_ids]
        )
        hidden = encoder(input_ids=ids).last_hidden_state.transpose(1, 2)
        assert torch.allclose(hidden, model.trunk(x[:1]), atol=1e-5)  # the merged adapters are in the weights
    assert json.loads((tmp_path / "hf" / "head.json").read_text())["tokenizer"] == "enbed"


def write_class_store(directory: Path, split: str, n: int, seed: int, motif: str = "TATAAT", length: int = 40) -> str:
    """A classification store: random sequences, the positives (label 1) carry `motif` at a random place."""
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, 4, size=(n, length)).astype(np.uint8)
    labels = rng.integers(0, 2, n)
    codes = np.array(["ACGT".index(b) for b in motif], dtype=np.uint8)
    for i in np.flatnonzero(labels):
        pos = rng.integers(0, length - len(motif))
        seq[i, pos : pos + len(motif)] = codes
    targets = np.zeros((n, 2, 1), dtype=np.float32)
    targets[np.arange(n), labels, 0] = 1
    prefix = directory / split
    np.save(f"{prefix}.seq.npy", seq)
    np.save(f"{prefix}.targets.npy", targets)
    meta = {
        "split": split,
        "n": n,
        "length": length,
        "flank": 0,
        "channels": ["neg", "pos"],
        "rc_perm": [0, 1],
        "ids": [f"{split}{i}" for i in range(n)],
        "site_index": None,
        "task_type": "classification",
        "bin_size": 1,
        "labels": True,
        "aggregate": None,
        "transform": None,
    }
    Path(f"{prefix}.json").write_text(json.dumps(meta))
    return str(prefix)


def test_an_enbed_trunk_classifies_a_planted_motif(tmp_path):
    from dnalm.predict import load_model
    from dnalm.store import WindowStore
    from dnalm.training import train

    stores = {
        s: WindowStore(write_class_store(tmp_path, s, n, seed, length=24))
        for s, n, seed in [("train", 192, 1), ("val", 48, 2)]
    }
    params = {
        "epochs": 12,
        "batch_size": 16,
        "lr": 3e-3,
        "weight_decay": 0.0,
        "patience": 12,
        "count_weight": None,
        "jitter": 0,
        "revcomp": True,
        "max_batches_per_epoch": None,
        "checkpoint_every": None,
        "checkpoint_minutes": None,
        "precision": "fp32",
        "class_balance": "none",
        "head_pool": "mean",
        "head_dropout": 0.0,
    }
    train(
        stores["train"],
        stores["val"],
        str(tmp_path / "model"),
        arch="enbed",
        seed=0,
        threads=1,
        device="cpu",
        model_params={"architecture": {**TINY, "heads": 8}, "finetune": "scratch"},
        train_params=params,
    )
    history = pd.read_csv(tmp_path / "model" / "history.tsv", sep="\t")
    assert history["val_accuracy"].max() > 0.8 and history["val_auroc"].max() > 0.9  # chance: 0.5 and 0.5
    model, summary = load_model(str(tmp_path / "model" / "best.ckpt"))  # as evaluation rebuilds it
    assert summary["arch"] == "enbed" and summary["head"]["kind"] == "pooled"
    x, y = stores["val"].batch(np.arange(len(stores["val"])))
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x)).argmax(1) == torch.from_numpy(y).argmax(1)).float().mean().item()
    assert accuracy == pytest.approx(history.set_index("epoch")["val_accuracy"][summary["best_epoch"]], abs=1e-6)


# ---------------------------------------------------------------------------------------------------- config
@pytest.fixture
def cfg() -> dict:
    base = dconfig.with_defaults(
        {
            "species": {},
            "tasks": {},
            "pretrain": {"ed": {"arch": "enbed"}, "bert": {}},
            "models": {"e": {"arch": "enbed", "enbed": {"backbone": "ed"}}},
        }
    )
    return copy.deepcopy(base)


def test_pretrain_windows_default_by_arch(cfg):
    assert (cfg["pretrain"]["ed"]["window"], cfg["pretrain"]["ed"]["stride"]) == (16384, 8192)
    assert (cfg["pretrain"]["bert"]["window"], cfg["pretrain"]["bert"]["stride"]) == (300, 150)
    own = dconfig.with_defaults({"pretrain": {"ed": {"arch": "enbed", "window": 1024}}})["pretrain"]["ed"]
    assert (own["window"], own["stride"]) == (1024, 512)


def test_conservation_refuses_an_enbed_pretrain(cfg):
    from dnalm.config_conservation import check_conservation

    cfg["conservation"]["models"] = ["ed"]
    with pytest.raises(ValueError, match="conservation.models: pretrain.ed is arch enbed"):
        check_conservation(cfg)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"backbone": None}, "models.e.enbed.backbone is null"),
        (
            {"backbone": "bert"},
            "models.e.enbed.backbone: pretrain.bert is arch bert; an arch enbed model needs a pretrain",
        ),
        ({"backbone": "no/such/dir"}, "models.e.enbed.backbone: 'no/such/dir' is neither a pretrain name"),
    ],
)
def test_config_errors_name_the_key(cfg, change, message, tmp_path):
    dconfig.check_models(cfg, tmp_path)  # the valid config passes
    cfg["models"]["e"]["enbed"].update(change)
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        dconfig.check_models(cfg, tmp_path)


def test_a_backbone_of_another_kind_is_refused(pretrained, tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert', not 'longt5'"):
        build_model("enbed", {"backbone": str(bert), "finetune": "full"}, "pooled", 2)
    with pytest.raises(ValueError, match="finetune: lora needs a backbone"):
        build_model("enbed", {"finetune": "lora"}, "pooled", 2)
    assert isinstance(build_model("enbed", {"backbone": str(pretrained)}, "pooled", 2).trunk, EnbedTrunk)
