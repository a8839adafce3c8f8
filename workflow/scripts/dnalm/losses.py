"""Losses: multinomial NLL of base-resolution profiles, MSE of log total counts, Poisson NLL of binned tracks."""

from __future__ import annotations

import torch


def multinomial_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of observed counts under a multinomial with softmax(logits) over positions.

    Args:
        logits: (B, C, L) profile logits.
        counts: (B, C, L) observed non-negative counts.

    Returns:
        (B, C) NLL per window and channel (including the multinomial coefficient, so it is a true NLL).
    """
    log_probs = torch.log_softmax(logits, dim=-1)
    total = counts.sum(dim=-1)
    log_coef = torch.lgamma(total + 1) - torch.lgamma(counts + 1).sum(dim=-1)
    return -(log_coef + (counts * log_probs).sum(dim=-1))


def count_mse(log_counts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B, C) squared error between predicted log(1 + total) and the observed one."""
    return (log_counts - torch.log1p(counts.sum(dim=-1))) ** 2


def profile_count_loss(logits: torch.Tensor, log_counts: torch.Tensor, counts: torch.Tensor,
                       count_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BPNet loss: mean over windows of the channel-summed profile NLL, plus `count_weight` × mean count MSE.

    Returns:
        (total, profile part, count part), each a scalar.
    """
    profile = multinomial_nll(logits.float(), counts).sum(dim=1).mean()
    count = count_mse(log_counts.float(), counts).mean()
    return profile + count_weight * count, profile, count


def poisson_nll(log_rate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Poisson NLL (without the log y! term) of targets (B, C, bins) under rates exp(log_rate)."""
    return torch.nn.functional.poisson_nll_loss(log_rate.float(), target, log_input=True, full=False)
