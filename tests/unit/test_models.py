"""Tests for dnalm.models: BPNet shapes and hookable activations, and the trunk × head factory."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dnalm.models import SequenceModel, bpnet, build_model
from dnalm.models.bpnet import ProfileConv1d

torch.use_deterministic_algorithms(True)


@pytest.mark.parametrize("n_outputs, length", [(2, 64), (1, 37), (3, 100)])
def test_bpnet_output_shapes(n_outputs, length):
    torch.manual_seed(0)
    model = bpnet(n_outputs, filters=8, layers=3, input_kernel=7, profile_kernel=9)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (5, length)), 4).float().transpose(1, 2)
    profile, counts = model(x)
    assert profile.shape == (5, n_outputs, length)
    assert counts.shape == (5, n_outputs)
    assert torch.isfinite(profile).all() and torch.isfinite(counts).all()


def test_bpnet_output_depends_on_the_sequence():
    torch.manual_seed(0)
    model = bpnet(2, filters=8, layers=2, input_kernel=7, profile_kernel=9)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 50)), 4).float().transpose(1, 2)
    profile, counts = model(x)
    assert not torch.allclose(profile[0], profile[1])
    assert not torch.allclose(counts[0], counts[1])


@pytest.mark.parametrize("layers", [1, 4])
def test_every_relu_is_a_distinct_module_used_once(layers):
    model = bpnet(2, filters=4, layers=layers, input_kernel=5, profile_kernel=5)
    relus = [m for _, m in model.named_modules(remove_duplicate=False) if isinstance(m, nn.ReLU)]
    assert len(relus) == layers + 1
    assert len({id(m) for m in relus}) == len(relus)
    calls = {id(m): 0 for m in relus}
    for m in relus:
        m.register_forward_hook(lambda mod, inp, out: calls.__setitem__(id(mod), calls[id(mod)] + 1))
    model(torch.zeros(1, 4, 20))
    assert set(calls.values()) == {1}  # each activation runs exactly once per forward pass


def test_build_model():
    model = build_model("bpnet", {"filters": 6, "layers": 2, "input_kernel": 5, "profile_kernel": 7}, "profile", 3)
    assert isinstance(model, SequenceModel)
    assert model.trunk.iconv.out_channels == 6 and model.trunk.iconv.kernel_size == (5,)
    assert len(model.trunk.rconvs) == 2
    assert model.head.fconv.kernel_size == (7,) and model.head.fconv.out_channels == 3
    assert model.count_layer is model.head.linear
    assert model.head_spec == {"kind": "profile", "params": {"kernel": 7}, "n_outputs": 3}


@pytest.mark.parametrize(("head", "params", "shape"), [
    ("profile", {}, [(2, 3, 48), (2, 3)]), ("binned", {"bin_size": 16}, [(2, 3, 3)]), ("pooled", {}, [(2, 3)]),
    ("tagger", {}, [(2, 3, 48)])])
def test_the_bpnet_trunk_serves_every_head(head, params, shape):
    torch.manual_seed(0)
    model = build_model("bpnet", {"filters": 8, "layers": 2, "profile_kernel": 9}, head, 3, params)
    out = model(torch.nn.functional.one_hot(torch.randint(0, 4, (2, 48)), 4).float().transpose(1, 2))
    assert [tuple(t.shape) for t in (out if isinstance(out, tuple) else (out,))] == shape
    assert (model.count_layer is not None) == (head == "profile")


def test_build_model_unknown_arch_and_head():
    with pytest.raises(ValueError, match="unknown model arch 'transformer'; known: bpnet, lm"):
        build_model("transformer", {}, "profile", 2)
    with pytest.raises(ValueError, match="unknown head 'decoder'; known: profile, binned, pooled, tagger"):
        build_model("bpnet", {}, "decoder", 2)


@pytest.mark.parametrize("out, inp, kernel, dilation, bias", [
    (2, 64, 75, 1, True), (1, 16, 74, 1, False), (2, 8, 5, 3, True), (3, 32, 4, 2, True), (64, 4, 21, 1, True)])
def test_profile_conv_equals_torch_conv_forward_and_backward(out, inp, kernel, dilation, bias):
    """The matmul + diagonal-sum convolution gives nn.Conv1d's outputs and gradients (odd and even kernels)."""
    torch.manual_seed(0)
    ref = nn.Conv1d(inp, out, kernel, padding="same", dilation=dilation, bias=bias)
    fast = ProfileConv1d(inp, out, kernel, padding="same", dilation=dilation, bias=bias)
    fast.load_state_dict(ref.state_dict())
    x1 = torch.randn(3, inp, 57, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1, y2 = ref(x1), fast(x2)
    torch.testing.assert_close(y2, y1, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(y1)
    y1.backward(grad)
    y2.backward(grad)
    torch.testing.assert_close(x2.grad, x1.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-5)
