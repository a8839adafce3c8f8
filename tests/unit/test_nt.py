"""Tests of the ESM / Nucleotide Transformer layout as an LM backbone: offline loading through the config, every head
and fine-tuning mode, the one-hot path against the `input_ids` path, gradients and integrated gradients, export.
(LoRA on an ESM backbone is tested with BERT's in test_lm.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dnalm import tokenize
from dnalm.attribution import _soft_kmer_embeddings, attribute, completeness_gap, make_references
from dnalm.evaluate import species_counterfactual
from dnalm.models import SequenceModel, build_model
from dnalm.models.backbones import encoder_inputs, load_backbone
from dnalm.models.dropout import ATTENTION
from dnalm.models.export import export_hf, load_exported
from dnalm.models.lm import parameter_counts
from dnalm.store import encode
from helpers import tiny_nt

torch.use_deterministic_algorithms(True)

ARCH = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}
LENGTH = 40
HEADS = {"profile": (2, None), "binned": (3, {"bin_size": 8}), "pooled": (2, None)}


def onehot(n: int, length: int = LENGTH, seed: int = 0, n_at: tuple[tuple[int, int], ...] = ()) -> torch.Tensor:
    """Random one-hot windows (n, 4, length); `n_at` lists (row, position) pairs made N (all-zero columns)."""
    g = torch.Generator().manual_seed(seed)
    x = F.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).float().transpose(1, 2).contiguous()
    for row, pos in n_at:
        x[row, :, pos] = 0
    return x


def codes_of(x: torch.Tensor) -> np.ndarray:
    """The store's base codes (A0 C1 G2 T3, N 4) of one-hot windows."""
    return torch.where(x.sum(1) > 0, x.argmax(1), 4).numpy().astype(np.uint8)


@pytest.fixture(scope="module")
def nt(tmp_path_factory) -> str:
    """A tiny checkpoint as a Nucleotide Transformer v1 download looks (pytorch_model.bin, vocab.txt, …)."""
    return tiny_nt(tmp_path_factory.mktemp("nt"), ARCH)


def build(backbone: str, head: str = "profile", seed: int = 0, **params) -> SequenceModel:
    """An LM on an NT backbone; `params` are `lm` config keys. The task's species is ignored (NT has no tokens)."""
    torch.manual_seed(seed)
    n_outputs, head_params = HEADS[head]
    return build_model("lm", {"backbone": backbone, "species": "ecoli", "species_list": ["ecoli", "bsub"], **params},
                       head, n_outputs, head_params)


def head_and_stack(model: SequenceModel) -> int:
    return sum(p.numel() for m in (model.trunk.stack, model.head) for p in m.parameters())


@pytest.mark.parametrize("finetune", ["lora", "frozen", "full", "scratch"])
def test_nt_checkpoint_loads_offline_with_every_head_and_mode(nt, finetune, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    x = onehot(2, n_at=((1, 7),))
    shapes = {"profile": [(2, 2, LENGTH), (2, 2)], "binned": [(2, 3, LENGTH // 8)], "pooled": [(2, 2)]}
    for head, expected in shapes.items():
        model = build(nt, head, finetune=finetune)
        out = model(x)
        assert [tuple(t.shape) for t in (out if isinstance(out, tuple) else [out])] == expected
        trunk = model.trunk
        assert trunk.kind == "nt6" and trunk.species is None and type(trunk.encoder).__name__ == "EsmModel"
        assert trunk.finetune == finetune and (finetune == "lora") == hasattr(trunk.backbone, "get_base_model")
        assert trunk.config._attn_implementation == ATTENTION  # the CPU dropout's attention, as for BERT


def test_padding_is_masked_out(nt):
    """A window's outputs do not change when a window with Ns (more tokens) pads it in the same batch: the padding
    mask reaches dnalm's attention (transformers builds none for an attention name without a mask builder). In
    training with attention dropout the masked CPU path runs too."""
    x = onehot(2, n_at=((1, 4), (1, 20)))
    model = build(nt, finetune="full").eval()
    with torch.no_grad():
        alone, batched = model(x[:1]), model(x)
    assert model.trunk.tokens(x).mask[0].tolist().count(0) == 5
    for a, b in zip(alone, batched, strict=True):
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-5)
    train = build(nt, "pooled", finetune="full", config_overrides={"attention_probs_dropout_prob": 0.5}).train()
    torch.manual_seed(1)
    noisy = train(x)
    assert torch.isfinite(noisy).all() and noisy.shape == (2, 2)


def test_weights_load_from_the_bin_and_the_safetensors_layout(nt, tmp_path):
    saved = torch.load(f"{nt}/pytorch_model.bin", weights_only=True)
    ours = build(nt, finetune="full").trunk.encoder.state_dict()
    for key in ["embeddings.word_embeddings.weight", "encoder.layer.1.output.dense.weight",
                "encoder.emb_layer_norm_after.weight"]:
        assert torch.equal(ours[key], saved[f"esm.{key}"])
    copy = tiny_nt(tmp_path, ARCH, weights="safetensors")
    assert torch.equal(load_backbone(copy)[0].state_dict()["encoder.layer.0.attention.self.query.weight"],
                       ours["encoder.layer.0.attention.self.query.weight"])  # same seed, same weights


@pytest.mark.parametrize("positions", ["absolute", "rotary"])
def test_onehot_path_equals_the_input_ids_path(positions, tmp_path):
    """NT v1's absolute positions and token dropout, or ESM-2's rotary positions; rows with Ns have fewer tokens."""
    model = build(tiny_nt(tmp_path, ARCH, positions=positions), finetune="full").eval()
    trunk = model.trunk
    x = onehot(3, n_at=((1, 10), (2, 3), (2, 30)))
    ids = torch.from_numpy(tokenize.model_input(codes_of(x), "nt6"))
    mask = (ids != tokenize.LAYOUTS["nt6"].pad).long()
    # <cls>, then per N-free stretch its 6-mers and leftover bases, and each N: 40 = 6·6 + 4; 10 + N + 29;
    # 3 + N + 26 + N + 9
    assert mask.sum(1).tolist() == [1 + 6 + 4, 1 + (1 + 4) + 1 + (4 + 5), 1 + 3 + 1 + (4 + 2) + 1 + (1 + 3)]
    with torch.no_grad():
        reference = trunk.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        tokens = trunk.tokens(x)
        assert torch.equal(tokens.embeds, trunk.encoder.get_input_embeddings()(ids)) and torch.equal(tokens.mask, mask)
        ours = trunk.backbone(inputs_embeds=encoder_inputs(trunk.encoder, tokens.embeds, mask),
                              attention_mask=mask).last_hidden_state
        torch.testing.assert_close(ours[mask.bool()], reference[mask.bool()], rtol=0, atol=1e-5)
        features = trunk.embed(x)
    starts, _ = tokenize.chunk_starts(codes_of(x) < 4)
    token_of_base = torch.from_numpy(starts.cumsum(1)) - 1
    for row in range(3):  # each base's feature is the hidden state of the token holding it
        torch.testing.assert_close(features[row].T, reference[row, 1:][token_of_base[row]], rtol=0, atol=1e-5)


def test_gradient_reaches_every_base_even_with_a_frozen_backbone(nt):
    model = build(nt, finetune="frozen")
    x = onehot(2, n_at=((0, 5),)).requires_grad_(True)
    _, counts = model(x)
    counts.sum().backward()
    assert x.grad is not None and x.grad.abs().sum(dim=1).gt(0).all()  # every position, the N and the tail too
    assert all(p.grad is None for p in model.trunk.backbone.parameters())


def test_kmer_gradient_is_the_multilinear_extension_s_at_onehot_input(nt):
    """The fast custom backward of NT's 6-mer tokens against the exact multilinear embedding integrated gradients
    use: the same values and the same gradient w.r.t. every base at one-hot input."""
    trunk = build(nt, finetune="full").eval().trunk
    x = onehot(2, n_at=((1, 20),)).double().requires_grad_(True)
    trunk.double()
    fast = trunk.tokens(x).embeds
    with _soft_kmer_embeddings():
        exact = trunk.tokens(x).embeds
    torch.testing.assert_close(fast, exact, rtol=0, atol=1e-12)
    g = torch.randn_like(fast)
    (g_fast,) = torch.autograd.grad((fast * g).sum(), x)
    (g_exact,) = torch.autograd.grad((exact * g).sum(), x)
    torch.testing.assert_close(g_fast, g_exact, rtol=1e-10, atol=1e-12)


def test_integrated_gradients_are_complete(nt):
    """As for BERT (tests/unit/test_attribution.py), with 64 steps: the gaps fall with the steps (the head's ReLU
    kinks limit the quadrature: 1.8% and 7.7% at 16 steps, 0.9% and 0.6% at 64, 0.6% and 0.1% at 128)."""
    model = build(nt, finetune="full").eval()
    with torch.no_grad():  # outputs that vary between sequences more than a fresh head's
        for p in [*model.trunk.stack.parameters(), *model.head.parameters()]:
            p.mul_(3)
    x = onehot(2, 30, seed=6)
    attr, hyp = attribute(model, x.numpy(), output="count", n_shuffles=3, seed=1, steps=64, batch_size=64,
                          method="ig")
    assert np.abs(hyp).max() > 0 and (attr[x.numpy() == 0] == 0).all()
    gaps = completeness_gap(model, x.numpy(), attr, make_references(x, 3, 1).numpy())
    assert (gaps < 0.05).all(), gaps


def test_frozen_and_scratch(nt):
    frozen = build(nt, finetune="frozen").train()
    assert parameter_counts(frozen)[0] == head_and_stack(frozen) and not frozen.trunk.backbone.training
    loaded, scratch = build(nt, finetune="full"), build(nt, finetune="scratch")
    drop = {"_name_or_path"}
    assert {k: v for k, v in scratch.trunk.config.to_dict().items() if k not in drop} == {
        k: v for k, v in loaded.trunk.config.to_dict().items() if k not in drop}
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(loaded.trunk.encoder.state_dict()[key], scratch.trunk.encoder.state_dict()[key])
    assert parameter_counts(scratch) == parameter_counts(loaded)


def test_nt_has_no_species_tokens_and_an_empty_counterfactual(nt):
    model = build(nt, finetune="full")
    with pytest.raises(ValueError, match="no species tokens"):
        model.trunk.species = "ecoli"
    table = species_counterfactual(model, None, 8, torch.device("cpu"))  # no species: the store is never read
    assert table.empty and "species" in table.columns


def test_export_reloads_to_the_same_outputs_with_automodel_and_autotokenizer(nt, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    model = build(nt, "pooled", finetune="lora")
    with torch.no_grad():  # make the adapters non-trivial (lora_B starts at zero)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    model.eval()
    x = onehot(3, n_at=((2, 12),))
    with torch.no_grad():
        expected = model(x)
    out = export_hf(model, tmp_path / "export")
    reloaded = load_exported(out)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), expected, rtol=0, atol=1e-5)
    info = json.loads((out / "head.json").read_text())
    assert info["tokenizer"] == "nt6" and info["species"] is None and "non-overlapping 6-mers" in info["layout"]
    encoder = AutoModel.from_pretrained(str(out), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert type(encoder).__name__ == "EsmModel" and tok.model_max_length == 1000  # NT v1: 1,002 positions − 2
    seq = "ACGTACGTACGTACGTACGTNACGTACGTacgtACGTACG"
    ids = tok(seq, return_tensors="pt")
    assert ids["input_ids"][0].tolist() == tokenize.model_input(encode(seq)[None], "nt6")[0].tolist()
    with torch.no_grad():  # the exported encoder on the tokenizer's ids is the model's backbone, adapters merged
        hidden = encoder(**ids).last_hidden_state
        own = model.trunk.backbone(**ids).last_hidden_state
    torch.testing.assert_close(hidden, own, rtol=0, atol=1e-5)
    assert any("lora_" in k for k in model.state_dict())  # the model itself keeps its adapters


def test_unsupported_layouts_and_long_windows_are_errors(nt, tmp_path):
    """Unsupported layouts name the supported ones; a window with more tokens than the positions says so."""
    other = tmp_path / "t5"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(ValueError, match=r"model_type 't5'.*supported: bert \(BertForMaskedLM.*; esm \(EsmForMaskedLM"):
        build(str(other), finetune="full")
    v2 = tiny_nt(tmp_path / "v2", ARCH)
    raw = json.loads((tmp_path / "v2" / "config.json").read_text())
    (tmp_path / "v2" / "config.json").write_text(json.dumps({**raw, "add_bias_fnn": False}))
    with pytest.raises(ValueError, match=r"Nucleotide Transformer v2 checkpoint .*SwiGLU"):
        build(v2, finetune="lora")
    (tmp_path / "v2" / "config.json").write_text(json.dumps(raw))
    (tmp_path / "v2" / "vocab.txt").write_text("\n".join(tokenize.vocabulary("nucleotide", ["ecoli"])) + "\n")
    with pytest.raises(ValueError, match=r"esm checkpoint with a nucleotide tokenizer; esm backbones read nt6"):
        build(v2, finetune="full")
    with pytest.raises(ValueError, match="does not match"):
        build(nt, finetune="full", tokenizer="kmer6_species")
    short = build(tiny_nt(tmp_path / "short", {**ARCH, "max_positions": 10}), finetune="full")
    with pytest.raises(ValueError, match=r"a 40 bp window makes 11 tokens, more than the backbone's 8 "):
        short(onehot(1))  # absolute positions count from the pad id + 1: 10 positions hold 8 tokens
