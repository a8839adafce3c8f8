"""The CPU dropout of the language models: same distribution as torch's, reproducible, right gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dnalm.models.backbones import bert_config
from dnalm.models.dropout import ATTENTION, Dropout, attention, drop_mask, fast_dropout, use_fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_and_expectation_match_p(p):
    torch.manual_seed(0)
    n = 1_000_000
    y = fast_dropout(torch.ones(n), p)
    zeros = (y == 0).float().mean().item()
    assert zeros == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / n))  # 5 binomial sd
    assert y.mean().item() == pytest.approx(1.0, abs=5 * math.sqrt(p / (1 - p) / n))  # unbiased
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / (1 - p), rel=1e-4)]


def test_mask_bits_are_independent_of_position():
    """Each of the four 15-bit integers of a 64-bit draw (the top one too) drops at the same rate."""
    torch.manual_seed(1)
    drop, _ = drop_mask((400_000, 4), 0.25)
    rates = drop.float().mean(0)
    assert torch.allclose(rates, torch.full((4,), 0.25), atol=5 * math.sqrt(0.25 * 0.75 / 400_000))


def test_reproducible_from_torch_seed_and_different_across_seeds():
    x = torch.randn(64, 300)
    torch.manual_seed(7)
    a = fast_dropout(x, 0.3)
    torch.manual_seed(7)
    b = fast_dropout(x, 0.3)
    torch.manual_seed(8)
    c = fast_dropout(x, 0.3)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gradient_is_the_same_mask_and_scale():
    x = torch.randn(128, 50).abs().add_(0.1).requires_grad_(True)
    y = fast_dropout(x, 0.4)
    y.sum().backward()
    _, scale = drop_mask((1,), 0.4)
    assert torch.equal(x.grad, torch.where(y == 0, 0.0, scale))  # zero exactly where dropped, else the scale


def test_identity_in_eval_mode_and_at_p_zero():
    x = torch.randn(10, 10)
    module = Dropout(0.5).eval()
    assert module(x) is x and fast_dropout(x, 0.0) is x
    assert fast_dropout(x, 1.0).abs().sum() == 0  # torch's rule for p = 1


def test_attention_with_dropout_is_the_masked_softmax_product():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 17, 8) for _ in range(3))
    module = nn.Module().train()
    module.is_causal = False  # as BertSelfAttention
    torch.manual_seed(5)
    out, _ = attention(module, q, k, v, None, scaling=8**-0.5, dropout=0.2)
    torch.manual_seed(5)
    drop, scale = drop_mask((2, 3, 17, 17), 0.2)
    weights = torch.softmax(q @ k.transpose(2, 3) * 8**-0.5, -1).masked_fill(drop, 0) * scale
    assert torch.allclose(out, (weights @ v).transpose(1, 2), atol=1e-6)
    plain, _ = attention(module, q, k, v, None, scaling=8**-0.5, dropout=0.0)  # transformers' SDPA
    expected = torch.softmax(q @ k.transpose(2, 3) * 8**-0.5, -1) @ v
    assert torch.allclose(plain, expected.transpose(1, 2), atol=1e-5)


def test_use_fast_dropout_swaps_every_dropout_and_keeps_eval_outputs():
    from transformers import BertModel

    config = bert_config(30, {"layers": 2, "hidden": 32, "heads": 2},
                         {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1})
    torch.manual_seed(0)
    model = BertModel(config, add_pooling_layer=False).eval()
    ids = torch.randint(5, 30, (3, 40))
    before = model(input_ids=ids).last_hidden_state
    use_fast_dropout(model)
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert sum(isinstance(m, Dropout) for m in model.modules()) == 1 + 2 * 3  # embeddings, 3 per layer
    assert model.config._attn_implementation == ATTENTION
    assert torch.allclose(model(input_ids=ids).last_hidden_state, before, atol=1e-6)
    model.train()
    torch.manual_seed(3)
    a = model(input_ids=ids).last_hidden_state
    torch.manual_seed(3)
    assert torch.equal(a, model(input_ids=ids).last_hidden_state) and not torch.allclose(a, before, atol=1e-3)
