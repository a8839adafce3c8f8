"""Tests for dnalm.models: BPNet shapes and hookable activations, and the model factory."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dnalm.models import build_model
from dnalm.models.bpnet import BPNet

torch.use_deterministic_algorithms(True)


@pytest.mark.parametrize("n_outputs, length", [(2, 64), (1, 37), (3, 100)])
def test_bpnet_output_shapes(n_outputs, length):
    torch.manual_seed(0)
    model = BPNet(n_outputs, filters=8, layers=3, input_kernel=7, profile_kernel=9)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (5, length)), 4).float().transpose(1, 2)
    profile, counts = model(x)
    assert profile.shape == (5, n_outputs, length)
    assert counts.shape == (5, n_outputs)
    assert torch.isfinite(profile).all() and torch.isfinite(counts).all()


def test_bpnet_output_depends_on_the_sequence():
    torch.manual_seed(0)
    model = BPNet(2, filters=8, layers=2, input_kernel=7, profile_kernel=9)
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 50)), 4).float().transpose(1, 2)
    profile, counts = model(x)
    assert not torch.allclose(profile[0], profile[1])
    assert not torch.allclose(counts[0], counts[1])


@pytest.mark.parametrize("layers", [1, 4])
def test_every_relu_is_a_distinct_module_used_once(layers):
    model = BPNet(2, filters=4, layers=layers, input_kernel=5, profile_kernel=5)
    relus = [m for _, m in model.named_modules(remove_duplicate=False) if isinstance(m, nn.ReLU)]
    assert len(relus) == layers + 1
    assert len({id(m) for m in relus}) == len(relus)
    calls = {id(m): 0 for m in relus}
    for m in relus:
        m.register_forward_hook(lambda mod, inp, out: calls.__setitem__(id(mod), calls[id(mod)] + 1))
    model(torch.zeros(1, 4, 20))
    assert set(calls.values()) == {1}  # each activation runs exactly once per forward pass


def test_build_model():
    model = build_model("bpnet", 3, {"filters": 6, "layers": 2, "input_kernel": 5, "profile_kernel": 7})
    assert isinstance(model, BPNet)
    assert model.n_outputs == 3
    assert model.iconv.out_channels == 6 and model.iconv.kernel_size == (5,)
    assert len(model.rconvs) == 2
    assert model.fconv.kernel_size == (7,)


def test_build_model_unknown_arch():
    with pytest.raises(ValueError, match="unknown model arch 'transformer'"):
        build_model("transformer", 2, {})
