"""Dropout that is cheap on the CPU, for the language models' training steps.

On the CPU, `torch.nn.functional.dropout` draws one Bernoulli sample per element through torch's generator
(~12 ns an element on this kind of machine), and in a BERT step with LoRA there are many: BERT's attention
probabilities (batch × heads × T² per layer), its hidden states, and peft's LoRA dropout, which masks the input of
every adapted layer. At dropout 0.1 these draws made the 4 × 256 LoRA step 2.2× slower than without dropout
(`benchmarks/bench_lm.py`), more than all of its matrix products.

`Dropout` keeps the semantics — every element is zeroed independently with probability p and the kept ones are
scaled by 1/(1 − p) — but builds the mask from 15-bit integers, four per 64-bit draw of torch's generator
(`random_()`), so one draw serves four elements, and applies it with `masked_fill`. p is rounded to a multiple of
2⁻¹⁵ (0.1 → 0.100006) and the scale uses the rounded value, so the expectation is exact. The draws come from torch's
default CPU generator: `torch.manual_seed` and a checkpoint's saved RNG state reproduce a run bit for bit, as
before. On other devices (and in eval mode, or with p = 0) it is `torch.nn.functional.dropout`.

`use_fast_dropout(model)` swaps every `nn.Dropout` of a model for `Dropout` (BERT's hidden dropouts, peft's
`lora_dropout`, the heads') and routes BERT's and ESM's attention through `attention`, which is transformers' SDPA
attention except in CPU training with attention dropout, where it runs the same math (scores, softmax, dropout,
weighted sum) with this mask. Neither has weights: state dicts, `save_pretrained` and `merge_and_unload` are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

#: Bits of the integers a mask is drawn from (four 15-bit integers per 64-bit draw: the top one has 15 random bits).
MASK_BITS = 15
#: Name the fast attention is registered under in transformers' `AttentionInterface`.
ATTENTION = "dnalm_sdpa"


def drop_mask(shape: torch.Size | tuple, p: float, device: torch.device | str = "cpu") -> tuple[torch.Tensor, float]:
    """A boolean mask of `shape`, True where an element is dropped (probability p rounded to 2⁻¹⁵), and the scale
    1/(1 − p_rounded) of the kept elements."""
    n = 1
    for size in shape:
        n *= size
    threshold = round(p * (1 << MASK_BITS))
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()  # uniform on [0, 2⁶³)
    draws = words.view(torch.int16)[:n].view(shape).bitwise_and_((1 << MASK_BITS) - 1)
    return draws < threshold, 1.0 / (1.0 - threshold / (1 << MASK_BITS))


class _MaskedScale(torch.autograd.Function):
    """x ↦ x with `drop` zeroed, times `scale`; the same on the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, drop: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(drop)
        ctx.scale = scale
        return x.masked_fill(drop, 0).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (drop,) = ctx.saved_tensors
        return grad.masked_fill(drop, 0).mul_(ctx.scale), None, None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Functional form of `Dropout` (see the module docstring)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return nn.functional.dropout(x, p, training)
    drop, scale = drop_mask(x.shape, p, x.device)
    return _MaskedScale.apply(x, drop, scale)


class Dropout(nn.Dropout):
    """`nn.Dropout` with the CPU mask of this module (a subclass, so code that reads `.p` or checks the type works)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
              **kwargs):
    """transformers' SDPA attention; in CPU training with dropout, the same math with this module's dropout mask.

    Arguments and returns as transformers' attention functions: query, key, value (B, heads, T, d), an additive or
    boolean mask broadcastable to (B, heads, T, T); returns the output (B, T, heads, d) and None.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if dropout == 0.0 or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)).mul_(scaling)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = fast_dropout(torch.softmax(scores, dim=-1), dropout, True)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    """Register `attention`, and transformers' SDPA mask builder under the same name: for an attention name without
    one, transformers builds no mask at all, and padded tokens (the Nucleotide Transformer's rows with Ns) would be
    attended to."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)


def use_fast_dropout(model: nn.Module) -> nn.Module:
    """Swap every `nn.Dropout` of `model` for `Dropout` and route BERT and ESM attention through `attention`, in
    place."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, Dropout(child.p).train(child.training))
    configs = {id(m.config): m.config for m in model.modules()
               if getattr(getattr(m, "config", None), "model_type", None) in ("bert", "esm")}
    if configs:
        _register_attention()
    for config in configs.values():
        config._attn_implementation = ATTENTION
    return model
