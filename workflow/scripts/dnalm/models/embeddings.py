"""Differentiable tokenization: the token embeddings of one-hot DNA for each tokenizer layout, and per-base features.

The language-model trunks never see token ids: they embed one-hot DNA (B, 4, L) — A, C, G, T rows, N all zeros —
so that gradients reach every base (nucleotide-resolution attributions). `token_inputs` does it for each layout of
`dnalm.tokenize` and says how to take per-base features back from the backbone's hidden states.

A 6-mer token's embedding is the multilinear extension of the embedding table in its six one-hot columns,

    e(x) = Σ_kmer P(kmer) · E[kmer] + (1 − Σ_kmer P(kmer)) · E[UNK],   P(kmer) = Π_{j<6} x[kmer_j, j],

which on one-hot input is exactly `E[token id]` (bit-identical to the `input_ids` path), and `E[UNK]` for a 6-mer
with an N (an all-zero column). It is computed without the 4,096-way sum: the value from the argmax k-mer id
(weight P = product of its six one-hot values, 1 or 0), and the gradient w.r.t. the columns by a custom backward
that is exactly the extension's gradient at one-hot/N input:
∂e/∂x[c, j] = Π_{j'≠j} x[·, j'] · (E[kmer with letter j set to c] − E[UNK]) — non-zero for all four bases, so
hypothetical contributions (as TF-MoDISco takes them) are defined. For soft (non one-hot) input the value uses the
argmax k-mer only: integrated gradients swap in `dnalm.attribution.multilinear_column_embeddings`, exact in between.
A single-base token: e_p = Σ_c x[c, p] E[base c] + (1 − Σ_c x[c, p]) E[other], linear in x, plain autograd (`other`
is `[UNK]` for BERT's nucleotide layout, the token `N` for NT's).

The layouts:
- `kmer6_species` (BERT): `[CLS] <species> kmer_1 … kmer_{L-5} [SEP]`, overlapping 6-mers. The feature of base p is
  the mean of the last hidden states of the (up to six) k-mers containing it (a box filter over token positions,
  normalised by the count).
- `nucleotide` (BERT): `[CLS] <species> b_1 … b_L [SEP]`; the feature of base p is its token's hidden state.
- `nt6` (ESM / Nucleotide Transformer): `<cls>` and NT's tokens (`dnalm.tokenize.chunk_starts`: non-overlapping
  6-mers from the left of each N-free stretch, the rest single bases), padded per batch with `<pad>` under an
  attention mask. Where the tokens start depends only on which columns are N (column sum below 0.5), so along a
  path between two N-free sequences (integrated gradients) the tokens stay put and the embedding is smooth. The
  feature of base p is the hidden state of the token holding it (one 6-mer's state for all six of its bases).
The first tokens (`[CLS]`, species; `<cls>`), `[SEP]` and padding are dropped from the features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dnalm import tokenize

#: DNABERT digit of each one-hot channel (A, C, G, T → 0, 2, 3, 1) and the place value of each k-mer letter.
_DIGIT_OF_CHANNEL = torch.as_tensor(tokenize.DIGIT_OF_CODE)
_PLACE = torch.as_tensor(tokenize.PLACE)
K = tokenize.K


# ------------------------------------------------------------------------------------------------------- 6-mers
def overlapping_columns(x: torch.Tensor) -> torch.Tensor:
    """The six one-hot columns (B, L-5, 6, 4) of every overlapping 6-mer of x (B, 4, L)."""
    if x.shape[-1] < K:
        raise ValueError(f"windows must have at least {K} bases for 6-mer tokens, got {x.shape[-1]}")
    return x.unfold(2, K, 1).permute(0, 2, 3, 1)


def _kmer_indices(cols: torch.Tensor, first: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Argmax k-mer ids (B, T), their DNABERT digits (B, T, 6) and one-hot values (B, T, 6) of columns (B, T, 6, 4)."""
    obs = cols.argmax(dim=-1)  # an all-zero N column gives channel 0 with value 0
    values = cols.detach().gather(-1, obs[..., None])[..., 0]
    digits = _DIGIT_OF_CHANNEL.to(cols.device)[obs]
    return (digits * _PLACE.to(cols.device)).sum(-1) + first, digits, values


def _leave_one_out_products(values: torch.Tensor) -> torch.Tensor:
    """(…, 6) → (…, 6): the product of the other five values at each letter."""
    return torch.stack([torch.cat([values[..., :j], values[..., j + 1 :]], -1).prod(-1) for j in range(K)], -1)


class _KmerInputGrad(torch.autograd.Function):
    """Zero in value; its backward is the gradient of the k-mer multilinear extension w.r.t. the one-hot columns."""

    @staticmethod
    def forward(ctx, cols, weight, ids, digits, values, fallback):
        ctx.save_for_backward(weight, ids, digits, values)
        ctx.fallback = fallback
        return cols.new_zeros(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, grad):
        weight, ids, digits, values = ctx.saved_tensors
        diff = weight - weight[ctx.fallback]
        loo = _leave_one_out_products(values)
        place = _PLACE.to(ids.device)
        letters = _DIGIT_OF_CHANNEL.to(ids.device)
        out = grad.new_zeros(*ids.shape, K, 4, dtype=diff.dtype)
        g = grad.to(diff.dtype)
        for j in range(K):
            candidates = (ids - digits[..., j] * place[j])[..., None] + letters * place[j]  # (B, T, 4)
            out[:, :, j] = torch.einsum("bth,btch->btc", g, diff[candidates]) * loo[..., j, None]
        return out, None, None, None, None, None


def kmer_column_embeddings(cols: torch.Tensor, weight: torch.Tensor, first: int, fallback: int) -> torch.Tensor:
    """Embeddings (B, T, H) of 6-mer tokens from their one-hot columns (B, T, 6, 4) (see the module docstring).

    Args:
        cols: Each token's six columns, channels A, C, G, T last.
        weight: The embedding table.
        first: Id of `AAAAAA` (the 6-mers follow in DNABERT order).
        fallback: Id whose embedding takes the weight the 6-mers leave (a 6-mer with an N): `[UNK]`.
    """
    ids, digits, values = _kmer_indices(cols, first)
    p = values.prod(-1)[..., None]
    out = p * F.embedding(ids, weight) + (1 - p) * weight[fallback]
    if cols.requires_grad:
        out = out + _KmerInputGrad.apply(cols, weight.detach(), ids, digits, values, fallback)
    return out


def kmer_embeddings(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, L-5, H) of the overlapping 6-mers of one-hot x (B, 4, L) in SpeciesLM's layout."""
    return kmer_column_embeddings(overlapping_columns(x), weight, len(tokenize.SPECIALS), tokenize.UNK)


def base_embeddings(x: torch.Tensor, weight: torch.Tensor, bases: tuple[int, ...], other: int) -> torch.Tensor:
    """Embeddings (B, L, H) of single-base tokens of one-hot x (B, 4, L): ids `bases` of A, C, G, T, an N `other`."""
    return torch.einsum("bcl,ch->blh", x, weight[list(bases)]) + (1 - x.sum(1))[..., None] * weight[other]


def nucleotide_embeddings(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, L, H) of single-base tokens of one-hot x (B, 4, L); an N column gives `[UNK]`."""
    return base_embeddings(x, weight, tokenize.LAYOUTS["nucleotide"].bases, tokenize.UNK)


def kmer_features_per_base(h: torch.Tensor) -> torch.Tensor:
    """Per-base features (B, H, L) from k-mer hidden states (B, L-5, H): mean over the k-mers covering each base."""
    n_tokens = h.shape[1]
    length = n_tokens + K - 1
    sums = F.avg_pool1d(F.pad(h.transpose(1, 2), (K - 1, K - 1)), K, stride=1) * K
    pos = torch.arange(length, device=h.device)
    counts = pos.clamp(max=n_tokens - 1) - (pos - K + 1).clamp(min=0) + 1
    return sums / counts.to(sums.dtype)


# --------------------------------------------------------------------------------------- the Nucleotide Transformer
def chunk_starts(valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`dnalm.tokenize.chunk_starts` in torch: (first base of every token, of the 6-mer tokens) of (B, L) masks."""
    length = valid.shape[-1]
    pos = torch.arange(length, device=valid.device).expand_as(valid)
    last_n = torch.where(valid, -1, pos).cummax(-1).values
    next_n = torch.where(valid, length, pos).flip(-1).cummin(-1).values.flip(-1)
    offset, stretch = pos - last_n - 1, next_n - last_n - 1
    in_kmer = valid & (offset < stretch // K * K)
    kmer_starts = in_kmer & (offset % K == 0)
    return kmer_starts | ~in_kmer, kmer_starts


def nt_body(x: torch.Tensor, weight: torch.Tensor, lay: tokenize.Layout):
    """NT's tokens of one-hot x (B, 4, L): their embeddings (B, T, H), which are padding (B, T), and the token of
    each base (B, L)."""
    starts, kmer_starts = chunk_starts(x.detach().sum(1) > 0.5)
    n_tokens = starts.sum(-1)
    first = torch.argsort((~starts).to(torch.int8), dim=-1, stable=True)[:, : int(n_tokens.max())]  # (B, T)
    padding = torch.arange(first.shape[1], device=x.device) >= n_tokens[:, None]
    columns = F.pad(x, (0, K - 1)).unfold(2, K, 1)  # (B, 4, L, 6): the six columns from each base
    cols = columns.gather(2, first[:, None, :, None].expand(-1, 4, -1, K)).permute(0, 2, 3, 1)
    kmers = kmer_column_embeddings(cols, weight, lay.kmer, lay.unk)
    singles = base_embeddings(x.gather(2, first[:, None].expand(-1, 4, -1)), weight, lay.bases, lay.other)
    body = torch.where(kmer_starts.gather(1, first)[..., None], kmers, singles)
    return torch.where(padding[..., None], weight[lay.pad], body), padding, starts.cumsum(-1) - 1


# ---------------------------------------------------------------------------------------------------- dispatcher
@dataclass
class TokenInputs:
    """A window batch as the backbone reads it.

    Attributes:
        embeds: Token embeddings (B, T, H) (the embedding table's rows, before positions).
        mask: Attention mask (B, T) (1 for tokens, 0 for padding), or None without padding.
        features: Last hidden states (B, T, H) → per-base features (B, H, L).
    """

    embeds: torch.Tensor
    mask: torch.Tensor | None
    features: Callable[[torch.Tensor], torch.Tensor]


def _gather_bases(h: torch.Tensor, token_of_base: torch.Tensor) -> torch.Tensor:
    """(B, T, H) hidden states → (B, H, L): each base gets its token's state."""
    return h.gather(1, token_of_base[..., None].expand(-1, -1, h.shape[-1])).transpose(1, 2)


def token_inputs(x: torch.Tensor, weight: torch.Tensor, kind: str, species: int | None = None) -> TokenInputs:
    """The backbone's inputs for one-hot x (B, 4, L) in a tokenizer layout (see the module docstring).

    Args:
        x: One-hot DNA, in the embedding table's dtype.
        weight: The backbone's token embedding table.
        kind: Tokenizer kind (`dnalm.tokenize.KINDS`).
        species: Id of the species token (the species kinds).
    """
    lay = tokenize.layout(kind)
    batch, hidden = x.shape[0], weight.shape[1]
    if lay.chunked:
        body, padding, token_of_base = nt_body(x, weight, lay)
        embeds = torch.cat([weight[lay.cls].expand(batch, 1, hidden), body], dim=1)
        mask = torch.cat([padding.new_ones(batch, 1), ~padding], dim=1).long()
        return TokenInputs(embeds, mask, lambda h: _gather_bases(h[:, 1:], token_of_base))
    ends = weight[[lay.cls, species, lay.sep]]
    body = kmer_embeddings(x, weight) if lay.kmer is not None else nucleotide_embeddings(x, weight)
    embeds = torch.cat([ends[:2].expand(batch, 2, hidden), body, ends[2:].expand(batch, 1, hidden)], dim=1)
    if lay.kmer is not None:
        return TokenInputs(embeds, None, lambda h: kmer_features_per_base(h[:, 2:-1]))
    return TokenInputs(embeds, None, lambda h: h[:, 2:-1].transpose(1, 2))
