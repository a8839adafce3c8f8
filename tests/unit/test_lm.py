"""Tests for dnalm.models.lm and heads: per-base outputs, differentiable tokenization, fine-tuning modes, export."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from dnalm import tokenize
from dnalm.losses import profile_count_loss
from dnalm.models import SequenceModel, build_model
from dnalm.models.backbones import FAMILIES, load_backbone
from dnalm.models.embeddings import kmer_embeddings, kmer_features_per_base
from dnalm.models.export import export_hf, load_exported
from dnalm.models.heads import ConvStack, PooledHead, ProfileHead, build_stack, scaled_widths
from dnalm.models.lm import parameter_counts
from helpers import tiny_bert, tiny_nt

torch.use_deterministic_algorithms(True)

SPECIES = ["saccharomyces_cerevisiae", "candida_glabrata"]
ARCH = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}
LENGTH = 40
#: The tokenizer layouts of BERT checkpoints (the Nucleotide Transformer's, an ESM one, is tested in test_nt.py).
BERT_KINDS = FAMILIES["bert"].kinds


def onehot(n: int, length: int = LENGTH, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).float().transpose(1, 2).contiguous()


def checkpoint(directory, kind: str = "kmer6_species", seed: int = 123) -> str:
    """A tiny checkpoint in SpeciesLM's layout; its seed differs from the builds' (0), so a `scratch` model is not by
    chance initialised to these weights."""
    return tiny_bert(directory, kind, SPECIES, ARCH, seed)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return checkpoint(tmp_path_factory.mktemp("specieslm"))


def build(ckpt: str, seed: int = 0, **params) -> SequenceModel:
    """An LM with a profile head (2 channels) on the checkpoint; `params` are `lm` config keys."""
    torch.manual_seed(seed)
    return build_model("lm", {"backbone": ckpt, "species": SPECIES[0], "species_list": SPECIES, **params}, "profile",
                       2)


def head_and_stack(model: SequenceModel) -> int:
    """Parameters of everything after the backbone: the feature stack and the task head."""
    return sum(p.numel() for m in (model.trunk.stack, model.head) for p in m.parameters())


@pytest.mark.parametrize("kind", tokenize.KINDS)
@pytest.mark.parametrize("stack", ["conv", "bpnet"])
def test_any_lm_trunk_serves_every_head(kind, stack):
    """Per-base profile and counts, binned log-rates, pooled logits, per-base tags: the task type picks the head."""
    params = {"backbone": None, "finetune": "scratch", "tokenizer": kind, "architecture": ARCH, "head": stack,
              "species": "yeast"}
    torch.manual_seed(0)
    profile, counts = build_model("lm", params, "profile", 3)(onehot(2))
    assert profile.shape == (2, 3, LENGTH) and counts.shape == (2, 3)
    assert build_model("lm", params, "binned", 3, {"bin_size": 8})(onehot(2)).shape == (2, 3, LENGTH // 8)
    assert build_model("lm", params, "pooled", 5)(onehot(2)).shape == (2, 5)
    assert build_model("lm", params, "tagger", 4)(onehot(2)).shape == (2, 4, LENGTH)  # seqerror: per-base tags


@pytest.mark.parametrize("kind", BERT_KINDS)
def test_onehot_embedding_path_equals_input_ids_path(kind, tmp_path):
    model = build(checkpoint(tmp_path, kind), finetune="full").eval()
    x = onehot(3)
    trunk = model.trunk
    ids = tokenize.encode(x.argmax(1).numpy(), kind, species=trunk.species_id)
    with torch.no_grad():
        reference = trunk.encoder(input_ids=torch.from_numpy(ids)).last_hidden_state
        embeds = trunk.inputs_embeds(x)
        assert torch.equal(embeds, trunk.encoder.get_input_embeddings()(torch.from_numpy(ids)))
        ours = trunk.encoder(inputs_embeds=embeds).last_hidden_state
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)


def test_kmer_embedding_value_and_gradient_are_the_multilinear_extension():
    """Against the explicit sum over all 4,096 k-mers of prod(one-hot values) × E[k-mer], with an N."""
    weight = torch.randn(4101 + 2, 3, dtype=torch.float64)
    x = onehot(2, 11, seed=1).double()
    x[0, :, 5] = 0  # an N: the six k-mers covering it become [UNK]
    x.requires_grad_(True)
    letters = torch.tensor([["ACGT".index(c) for c in kmer] for kmer in tokenize.kmers()])  # (4096, 6) channels
    n_tokens = 11 - 5
    prob = torch.ones(2, n_tokens, 4096, dtype=torch.float64)
    for j in range(6):
        prob = prob * x[:, letters[:, j], j : j + n_tokens].transpose(1, 2)
    reference = prob @ weight[5:4101] + (1 - prob.sum(-1, keepdim=True)) * weight[tokenize.UNK]
    ours = kmer_embeddings(x, weight)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-12)
    assert torch.equal(ours[0, 0], weight[tokenize.UNK])
    grad_out = torch.randn_like(ours)
    (g_ours,) = torch.autograd.grad((ours * grad_out).sum(), x)
    (g_ref,) = torch.autograd.grad((reference * grad_out).sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-12)
    assert (g_ours[1] != 0).all()  # every base, observed or not, gets a gradient


@pytest.mark.parametrize("kind", BERT_KINDS)
def test_gradient_reaches_the_onehot_input_even_with_a_frozen_backbone(kind, tmp_path):
    model = build(checkpoint(tmp_path, kind), finetune="frozen")
    x = onehot(2).requires_grad_(True)
    _, counts = model(x)
    counts.sum().backward()
    assert x.grad is not None and x.grad.abs().sum(dim=1).gt(0).all()  # every position
    assert all(p.grad is None for p in model.trunk.backbone.parameters())


def test_kmer_features_average_the_covering_kmers():
    h = torch.randn(2, LENGTH - 5, 4)
    features = kmer_features_per_base(h)
    assert features.shape == (2, 4, LENGTH)
    for p in [0, 3, 5, 20, LENGTH - 6, LENGTH - 1]:
        covering = h[:, max(0, p - 5) : min(p, LENGTH - 6) + 1]
        torch.testing.assert_close(features[:, :, p], covering.mean(1))


@pytest.mark.parametrize("family", ["bert", "esm"])
def test_lora_trains_only_adapters_and_head(family, ckpt, tmp_path):
    """The default targets (query, value, dense) are the same five layers per block in BertModel and EsmModel (a
    Nucleotide Transformer checkpoint)."""
    backbone = ckpt if family == "bert" else tiny_nt(tmp_path, ARCH)
    model = build(backbone, finetune="lora", lora={"r": 4, "alpha": 8, "dropout": 0.0})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable, total = parameter_counts(model)
    head = head_and_stack(model)
    hidden, inter, r = ARCH["hidden"], ARCH["intermediate"], 4
    per_layer = r * (4 * hidden + 2 * hidden + (hidden + inter) + (inter + hidden))  # q, v, attn out, FFN in/out
    assert trainable == head + ARCH["layers"] * per_layer
    base = sum(p.numel() for p in load_backbone(backbone)[0].parameters())
    assert total == base + ARCH["layers"] * per_layer + head
    adapted = {k.split(".lora_A")[0].split("layer.")[1][2:] for k in before if "lora_A" in k}
    assert adapted == {"attention.self.query", "attention.self.value", "attention.output.dense",
                       "intermediate.dense", "output.dense"}

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, y = onehot(4), torch.poisson(torch.full((4, 2, LENGTH), 0.5))
    for _ in range(3):
        logits, counts = model(x)
        loss, _, _ = profile_count_loss(logits, counts, y, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    adapters = {k for k in before if "lora_" in k}
    assert adapters and len(adapters) == 2 * ARCH["layers"] * 5
    assert changed == adapters | {k for k in before if k.startswith(("head.", "trunk.stack."))}


def test_frozen_trains_only_the_head_without_dropout(ckpt):
    model = build(ckpt, finetune="frozen").train()
    assert parameter_counts(model)[0] == head_and_stack(model)
    assert not model.trunk.backbone.training and model.head.training and model.trunk.stack.training
    x = onehot(2)
    with torch.no_grad():
        assert torch.equal(model.trunk.embed(x), model.trunk.embed(x))  # deterministic features: dropout off


def test_scratch_has_the_architecture_but_not_the_weights(ckpt):
    loaded, scratch = build(ckpt, finetune="full"), build(ckpt, finetune="scratch")
    drop = {"_name_or_path"}
    assert {k: v for k, v in scratch.trunk.config.to_dict().items() if k not in drop} == {
        k: v for k, v in loaded.trunk.config.to_dict().items() if k not in drop}
    a, b = loaded.trunk.encoder.state_dict(), scratch.trunk.encoder.state_dict()
    assert a.keys() == b.keys()
    assert not torch.equal(a["encoder.layer.0.attention.self.query.weight"],
                           b["encoder.layer.0.attention.self.query.weight"])
    assert parameter_counts(scratch) == parameter_counts(loaded)


@pytest.mark.parametrize("head", ["conv", "bpnet"])
def test_export_merges_lora_and_reloads_to_the_same_outputs(ckpt, tmp_path, head, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    model = build(ckpt, finetune="lora", head=head)
    with torch.no_grad():  # make the adapters non-trivial (lora_B starts at zero)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    model.eval()
    x = onehot(3)
    with torch.no_grad():
        expected = model(x)
    export_hf(model, tmp_path / "export")
    files = {p.name for p in (tmp_path / "export").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "head.safetensors", "head.json"} <= files
    reloaded = load_exported(tmp_path / "export")
    with torch.no_grad():
        got = reloaded(x)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert any("lora_" in k for k in model.state_dict())  # the model itself keeps its adapters
    assert AutoModel.from_pretrained(str(tmp_path / "export"), local_files_only=True).config.hidden_size == 32
    assert AutoTokenizer.from_pretrained(str(tmp_path / "export"))("candida_glabrata AAAAAA")["input_ids"] == [
        tokenize.CLS, 4102, 5, tokenize.SEP]


def test_specieslm_layout_checkpoint_loads_offline_through_the_config(ckpt, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from safetensors.torch import load_file

    model = build(ckpt, finetune="full", tokenizer="kmer6_species")
    saved = load_file(f"{ckpt}/model.safetensors")
    ours = model.trunk.encoder.state_dict()
    assert torch.equal(ours["encoder.layer.1.output.dense.weight"], saved["bert.encoder.layer.1.output.dense.weight"])
    assert model.trunk.species_id == 4101 and model.trunk.kind == "kmer6_species"
    with pytest.raises(ValueError, match="does not match"):
        build(ckpt, finetune="full", tokenizer="nucleotide")


def test_bad_backbones_are_errors_naming_the_path(tmp_path, ckpt):
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        build(missing, finetune="lora")
    other = tmp_path / "gpt2"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match=r"gpt2.*model_type 'gpt2'.*supported: bert \(.*; esm \("):
        build(str(other), finetune="lora")
    with pytest.raises(ValueError, match="unknown species 'homo_sapiens'.*candida_glabrata"):
        build_model("lm", {"backbone": ckpt, "species": "homo_sapiens", "finetune": "lora"}, "profile", 2)
    with pytest.raises(ValueError, match="needs a backbone"):
        build_model("lm", {"backbone": None, "species": "yeast", "finetune": "lora"}, "profile", 2)


def test_species_swap_changes_the_output_and_is_restored(ckpt):
    model = build(ckpt, finetune="full").eval()
    x = onehot(2)
    with torch.no_grad():
        own = model(x)[0]
        with model.trunk.use_species("candida_glabrata"):
            assert model.trunk.species == "candida_glabrata"
            swapped = model(x)[0]
        again = model(x)[0]
    assert model.trunk.species == SPECIES[0]
    assert torch.equal(own, again) and not torch.allclose(own, swapped)
    with pytest.raises(ValueError, match="unknown species"):
        model.trunk.species = "homo_sapiens"


def test_stacks_and_heads_shapes_and_widths():
    h = torch.randn(2, 96, 30)
    assert scaled_widths(768) == [512, 256, 128] and scaled_widths(96) == [64, 32, 16]
    conv = ConvStack(96)
    assert conv(h).shape == (2, 16, 30) and conv.out_channels == 16
    profile, counts = ProfileHead(16, 2, kernel=1)(conv(h))  # SpeciesLM's conv head
    assert profile.shape == (2, 2, 30) and counts.shape == (2, 2)
    tower, kernel = build_stack("bpnet", 96, {"filters": 8, "layers": 3})
    assert tower.iconv.in_channels == 96 and len({id(r) for r in tower.rrelus}) == 3 and kernel == 75
    assert tower(h).shape == (2, 8, 30)
    assert PooledHead(96, 4)(h).shape == (2, 4)


def test_activation_checkpointing_gives_the_same_gradients(ckpt):
    """train.activation_checkpointing recomputes the backbone's layers in the backward pass: same loss and gradients
    (dropout included: the recomputation replays the generator); BPNet has no layers to checkpoint."""
    from dnalm.models.backbones import checkpoint_activations

    grads = []
    for checkpointed in (False, True):
        model = build(ckpt, finetune="full", config_overrides={"hidden_dropout_prob": 0.1})
        model.train()
        if checkpointed:
            assert checkpoint_activations(model, "lm") == 1 and model.trunk.encoder.is_gradient_checkpointing
        torch.manual_seed(1)
        profile, counts = model(onehot(4))
        (profile.logsumexp(-1).sum() + counts.sum()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
    with pytest.raises(ValueError, match="'bpnet' has no transformer layers"):
        checkpoint_activations(build_model("bpnet", {"filters": 4, "layers": 1}, "profile", 2), "bpnet")
