"""BERT-style DNA language models as trunks: one-hot DNA in, per-base features out, any task type's head on top.

`LMTrunk.forward(x)` takes one-hot DNA (B, 4, L) — A, C, G, T rows, N all zeros, as `dnalm.store` makes it — and
returns per-base features (B, H, L): the backbone's hidden states aligned to bases, then the feature stack chosen by
`lm.head` (`conv` or `bpnet`, `dnalm.models.heads`). The task type's head (`dnalm.models.SequenceModel`) follows,
so the losses, evaluation and attribution of BPNet apply unchanged.

Tokenizing inside forward, differentiably. The model never sees token ids: it builds the backbone's
`inputs_embeds` from the one-hot input, so gradients reach every base (nucleotide-resolution attributions).
The embedding of the 6-mer starting at base i is the multilinear extension of the embedding table,

    e_i(x) = Σ_kmer P_i(kmer) · E[kmer] + (1 − Σ_kmer P_i(kmer)) · E[UNK],   P_i(kmer) = Π_{j<6} x[kmer_j, i+j],

which on one-hot input is exactly `E[token id]` (bit-identical to BERT's `input_ids` path), and `E[UNK]` for a
6-mer with an N (an all-zero column), as the `[UNK]` token of the tokenizer. It is computed without the 4,096-way
sum: the value from the argmax k-mer id (weight P = product of its six one-hot values, 1 or 0), and the gradient
w.r.t. x by a custom backward that is exactly the extension's gradient at one-hot/N input:
∂e_i/∂x[c, i+j] = Π_{j'≠j} x[·, i+j'] · (E[kmer with letter j set to c] − E[UNK]) — non-zero for all four bases,
so hypothetical contributions (as TF-MoDISco takes them) are defined. For soft (non one-hot) input the value uses
the argmax k-mer only: attributions should use one-hot references (shuffles, ISM), not interpolations.
Nucleotide tokens: e_p = Σ_c x[c, p] E[base c] + (1 − Σ_c x[c, p]) E[UNK], linear in x, plain autograd.
`[CLS]`, the species token and `[SEP]` embeddings are added around the body: `[CLS] <species> body [SEP]`.

Per-base alignment: every feature is per base, whatever the tokenizer. With 6-mers, the feature of base p is the mean
of the last hidden states of the (up to six) k-mers containing it (a fixed box filter over token positions,
normalised by the count); with nucleotides, the hidden state at p. The `[CLS]`, species and `[SEP]` positions are
dropped.

Fine-tuning modes: `lora` (peft adapters on `lora.target_modules`; the default `query`, `value`, `dense` matches in
`BertModel` the attention query/value projections, the attention output projection `attention.output.dense` and
both FFN layers `intermediate.dense`, `output.dense`; the pooler, the only other `dense`, is not built),
`frozen` (backbone weights fixed and its dropout off, head trained; the backbone runs without autograd unless the
input needs gradients), `full`, `scratch` (the backbone's architecture, random weights).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dnalm import tokenize
from dnalm.models.dropout import use_fast_dropout
from dnalm.models.heads import build_stack
from dnalm.schema import block_defaults

log = logging.getLogger(__name__)

FINETUNE_MODES = ("lora", "frozen", "full", "scratch")
#: Backbone architecture keys (as in the config and `pretrain_lm`) → `BertConfig` fields.
ARCHITECTURE_KEYS = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
                     "intermediate": "intermediate_size", "max_positions": "max_position_embeddings"}
#: DNABERT digit of each one-hot channel (A, C, G, T → 0, 2, 3, 1) and the place value of each k-mer letter.
_DIGIT_OF_CHANNEL = torch.as_tensor(tokenize.DIGIT_OF_CODE)
_PLACE = torch.as_tensor(tokenize.PLACE)
K = tokenize.K


# ---------------------------------------------------------------------------------------------------- embeddings
def _kmer_indices(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Argmax k-mer ids (B, T), their DNABERT digits (B, T, 6) and one-hot values (B, T, 6) of x (B, 4, L)."""
    obs = x.argmax(dim=1)  # an all-zero N column gives channel 0 with value 0
    values = x.detach().gather(1, obs[:, None])[:, 0]
    digits = _DIGIT_OF_CHANNEL.to(x.device)[obs].unfold(1, K, 1)
    ids = (digits * _PLACE.to(x.device)).sum(-1) + len(tokenize.SPECIALS)
    return ids, digits, values.unfold(1, K, 1)


def _leave_one_out_products(values: torch.Tensor) -> torch.Tensor:
    """(…, 6) → (…, 6): the product of the other five values at each letter."""
    return torch.stack([torch.cat([values[..., :j], values[..., j + 1 :]], -1).prod(-1) for j in range(K)], -1)


class _KmerInputGrad(torch.autograd.Function):
    """Zero in value; its backward is the gradient of the k-mer multilinear extension w.r.t. the one-hot input."""

    @staticmethod
    def forward(ctx, x, weight, ids, digits, values):
        ctx.save_for_backward(weight, ids, digits, values)
        ctx.length = x.shape[-1]
        return x.new_zeros(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, grad):
        weight, ids, digits, values = ctx.saved_tensors
        diff = weight - weight[tokenize.UNK]
        loo = _leave_one_out_products(values)
        place = _PLACE.to(ids.device)
        letters = _DIGIT_OF_CHANNEL.to(ids.device)
        batch, n_tokens = ids.shape
        out = grad.new_zeros(batch, 4, ctx.length, dtype=diff.dtype)
        g = grad.to(diff.dtype)
        for j in range(K):
            candidates = (ids - digits[..., j] * place[j])[..., None] + letters * place[j]  # (B, T, 4)
            dots = torch.einsum("bth,btch->btc", g, diff[candidates]) * loo[..., j, None]
            out[:, :, j : j + n_tokens] += dots.transpose(1, 2)
        return out, None, None, None, None


def kmer_embeddings(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, L-5, H) of the overlapping 6-mers of one-hot x (B, 4, L) (see the module docstring)."""
    if x.shape[-1] < K:
        raise ValueError(f"windows must have at least {K} bases for 6-mer tokens, got {x.shape[-1]}")
    ids, digits, values = _kmer_indices(x)
    p = values.prod(-1)[..., None]
    out = p * F.embedding(ids, weight) + (1 - p) * weight[tokenize.UNK]
    if x.requires_grad:
        out = out + _KmerInputGrad.apply(x, weight.detach(), ids, digits, values)
    return out


def nucleotide_embeddings(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Embeddings (B, L, H) of single-base tokens of one-hot x (B, 4, L); an N column gives `[UNK]`."""
    bases = weight[tokenize.BASE_START : tokenize.BASE_START + 4]
    return torch.einsum("bcl,ch->blh", x, bases) + (1 - x.sum(1))[..., None] * weight[tokenize.UNK]


def kmer_features_per_base(h: torch.Tensor) -> torch.Tensor:
    """Per-base features (B, H, L) from k-mer hidden states (B, L-5, H): mean over the k-mers covering each base."""
    n_tokens = h.shape[1]
    length = n_tokens + K - 1
    sums = F.avg_pool1d(F.pad(h.transpose(1, 2), (K - 1, K - 1)), K, stride=1) * K
    pos = torch.arange(length, device=h.device)
    counts = pos.clamp(max=n_tokens - 1) - (pos - K + 1).clamp(min=0) + 1
    return sums / counts.to(sums.dtype)


# ------------------------------------------------------------------------------------------------------ backbone
@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load reports and progress bars (expected unused MLM-head weights) within the block."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def bert_config(vocab_size: int, architecture: dict, overrides: dict | None = None):
    """A `BertConfig` from the workflow's architecture keys (`layers`, `hidden`, `heads`, `intermediate`, …)."""
    from transformers import BertConfig

    unknown = set(architecture) - set(ARCHITECTURE_KEYS)
    if unknown:
        raise ValueError(f"unknown architecture keys {sorted(unknown)}; known: {', '.join(ARCHITECTURE_KEYS)}")
    fields = {ARCHITECTURE_KEYS[k]: v for k, v in architecture.items() if v is not None}
    fields.setdefault("intermediate_size", 4 * fields.get("hidden_size", 768))
    return BertConfig(vocab_size=vocab_size, pad_token_id=tokenize.PAD, **fields, **(overrides or {}))


def _checkpoint_config(path: str, overrides: dict | None):
    """The `BertConfig` of a local checkpoint directory, with clear errors for a missing or non-BERT one."""
    from transformers import BertConfig

    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"LM backbone {path!r} is not a directory; dnalm loads local Hugging Face "
                                "directories only (save_pretrained layout: config.json, weights, tokenizer files)")
    if not (directory / "config.json").exists():
        raise ValueError(f"LM backbone {path!r} has no config.json: not a Hugging Face model directory")
    model_type = json.loads((directory / "config.json").read_text()).get("model_type")
    if model_type != "bert":
        raise ValueError(f"LM backbone {path!r} is not a BERT checkpoint (model_type {model_type!r}); "
                         "supported: bert (BertForMaskedLM or BertModel weights)")
    return BertConfig.from_pretrained(str(directory), local_files_only=True, **(overrides or {}))


def load_backbone(path: str | None, config_overrides: dict | None = None, *, pretrained: bool = True,
                  vocab: dict[str, int] | None = None, architecture: dict | None = None):
    """A `BertModel` (no pooler) and its vocabulary, from a local Hugging Face directory or from an architecture.

    Args:
        path: Directory in `save_pretrained` layout (`config.json`, BertForMaskedLM or BertModel weights, tokenizer
            files `tokenizer.json` or `vocab.txt`); None to build from `architecture` and `vocab`.
        config_overrides: `BertConfig` fields to override (e.g. `hidden_dropout_prob`).
        pretrained: Load the weights (False: the same architecture with random weights, for `scratch`).
        vocab: Vocabulary when `path` is None.
        architecture: Architecture keys (`layers`, `hidden`, `heads`, `intermediate`, `max_positions`) when `path`
            is None.

    Returns:
        (BertModel, token → id vocabulary).

    Raises:
        FileNotFoundError, ValueError: naming the path, when it is missing, not BERT, lacks weights or tokenizer.
    """
    from transformers import BertModel

    if path is None:
        if vocab is None or not architecture:
            raise ValueError("a backbone without a checkpoint path needs a vocabulary and an architecture")
        return BertModel(bert_config(len(vocab), architecture, config_overrides), add_pooling_layer=False), vocab
    config = _checkpoint_config(path, config_overrides)
    found = tokenize.load_vocab(path)
    if found is None:
        raise ValueError(f"LM backbone {path!r} has no tokenizer files (tokenizer.json or vocab.txt)")
    tokenize.infer_kind(found)
    if max(found.values()) >= config.vocab_size:
        raise ValueError(f"LM backbone {path!r}: tokenizer has ids up to {max(found.values())} but the model's "
                         f"vocab_size is {config.vocab_size}")
    if not pretrained:
        return BertModel(config, add_pooling_layer=False), found
    with quiet_transformers():
        try:
            model, info = BertModel.from_pretrained(path, config=config, add_pooling_layer=False,
                                                    local_files_only=True, output_loading_info=True)
        except OSError as err:
            raise ValueError(f"LM backbone {path!r}: no loadable weights ({err})") from err
    if info["missing_keys"] or info["mismatched_keys"]:
        missing = sorted(info["missing_keys"]) + sorted(str(k) for k in info["mismatched_keys"])
        raise ValueError(f"LM backbone {path!r} is not a complete BERT checkpoint; missing or mismatched "
                         f"weights: {missing[:5]}{' …' if len(missing) > 5 else ''}")
    return model, found


def apply_finetune(backbone: nn.Module, mode: str, lora: dict | None = None) -> nn.Module:
    """Set which backbone weights train: `lora` wraps it in peft adapters; `frozen` freezes it; else all train."""
    if mode not in FINETUNE_MODES:
        raise ValueError(f"unknown finetune mode {mode!r}; known: {', '.join(FINETUNE_MODES)}")
    if mode == "frozen":
        return backbone.requires_grad_(False)
    if mode != "lora":
        return backbone
    from peft import LoraConfig, get_peft_model

    default = block_defaults("models", "lm")["lora"]
    spec = {**default, **(lora or {})}
    unknown = set(spec) - set(default)
    if unknown:
        raise ValueError(f"unknown lora keys {sorted(unknown)}; known: {', '.join(default)}")
    config = LoraConfig(r=spec["r"], lora_alpha=spec["alpha"], lora_dropout=spec["dropout"],
                        target_modules=list(spec["target_modules"]), bias="none")
    with warnings.catch_warnings():  # peft 0.21 calls a transformers method deprecated in 5.x
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        return get_peft_model(backbone, config)


# --------------------------------------------------------------------------------------------------------- trunk
class LMTrunk(nn.Module):
    """A BERT backbone on one-hot DNA, with per-base features and a feature stack; see the module docstring.

    Args:
        backbone: `BertModel`, possibly wrapped by peft (`apply_finetune`).
        stack: Module mapping the backbone's per-base features (B, hidden, L) to the head's input (`lm.head`).
        vocab: The backbone's vocabulary (`kmer6_species` or `nucleotide` layout).
        species: Species whose token is put after `[CLS]`; change it with `species`/`use_species`.
        finetune: Fine-tuning mode (`frozen` keeps the backbone in eval mode).
        stack_spec: How the stack was built (`kind`, `params`), for `export_hf`.
    """

    def __init__(self, backbone: nn.Module, stack: nn.Module, *, vocab: dict[str, int], species: str,
                 finetune: str = "full", stack_spec: dict | None = None):
        super().__init__()
        self.backbone = backbone
        self.stack = stack
        self.vocab = dict(vocab)
        self.kind = tokenize.infer_kind(self.vocab)
        self.finetune = finetune
        self.stack_spec = dict(stack_spec or {})
        self.species_id = tokenize.species_id(self.vocab, species)
        self.out_channels = stack.out_channels
        self.train(self.training)

    @property
    def config(self):
        """The backbone's `BertConfig`."""
        return self.bert.config

    @property
    def bert(self) -> nn.Module:
        """The underlying `BertModel` (inside the peft wrapper for LoRA)."""
        return self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone

    @property
    def species(self) -> str:
        """Name of the species token in use."""
        return next(t for t, i in self.vocab.items() if i == self.species_id)

    @species.setter
    def species(self, name: str) -> None:
        self.species_id = tokenize.species_id(self.vocab, name)

    @contextlib.contextmanager
    def use_species(self, name: str):
        """Run the model with another species token within the block (species-token counterfactual)."""
        previous = self.species_id
        self.species = name
        try:
            yield self
        finally:
            self.species_id = previous

    def train(self, mode: bool = True):
        """Set train/eval mode; a frozen backbone always stays in eval mode (no dropout on fixed features)."""
        super().train(mode)
        if self.finetune == "frozen":
            self.backbone.eval()
        return self

    def n_tokens(self, length: int) -> int:
        """Backbone input length for a window of `length` bases (specials and species included)."""
        return (length - K + 1 if self.kind == "kmer6_species" else length) + 3

    def inputs_embeds(self, x: torch.Tensor) -> torch.Tensor:
        """`[CLS] <species> body [SEP]` embeddings (B, T, hidden) of one-hot x (B, 4, L)."""
        weight = self.bert.get_input_embeddings().weight
        embed = kmer_embeddings if self.kind == "kmer6_species" else nucleotide_embeddings
        body = embed(x.to(weight.dtype), weight)
        ends = weight[[tokenize.CLS, self.species_id, tokenize.SEP]]
        batch, hidden = x.shape[0], weight.shape[1]
        return torch.cat([ends[:2].expand(batch, 2, hidden), body, ends[2:].expand(batch, 1, hidden)], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-base backbone features (B, hidden, L) of one-hot x (B, 4, L), before the stack."""
        if x.ndim != 3 or x.shape[1] != 4:
            raise ValueError(f"expected one-hot DNA of shape (B, 4, L), got {tuple(x.shape)}")
        n_tokens = self.n_tokens(x.shape[-1])
        if n_tokens > self.config.max_position_embeddings:
            raise ValueError(f"a {x.shape[-1]} bp window makes {n_tokens} tokens, more than the backbone's "
                             f"max_position_embeddings={self.config.max_position_embeddings}")
        grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.backbone.parameters()))
        with torch.set_grad_enabled(grad):
            h = self.backbone(inputs_embeds=self.inputs_embeds(x)).last_hidden_state[:, 2:-1]
        if self.kind == "kmer6_species":
            return kmer_features_per_base(h)
        return h.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, out_channels, L) of one-hot x (B, 4, L): the stack on the per-base backbone features."""
        return self.stack(self.embed(x))


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def build_lm_trunk(params: dict) -> tuple[LMTrunk, int]:
    """Build an LM trunk from its config block (call under the run's torch seed: adapters, stack and scratch
    weights are random), and the profile-convolution width that suits its stack.

    Args:
        params: The model's `lm` config block (missing keys take the schema's defaults) with `backbone` resolved to
            a local Hugging Face directory (or None with `finetune: scratch`, built from `architecture`), plus
            `species` (the species token in use) and `species_list` (species that must be tokens of the
            vocabulary: the counterfactual's). Optional `config_overrides`: `BertConfig` fields (e.g. dropout).

    Returns:
        (trunk in train mode, profile kernel).
    """
    p = {**block_defaults("models", "lm"), **params}
    species_list = list(p.get("species_list") or [p["species"]])
    if p["backbone"] is None:
        if p["finetune"] != "scratch":
            raise ValueError(f"finetune: {p['finetune']} needs a backbone checkpoint; without one use scratch")
        vocab = tokenize.vocabulary(p["tokenizer"] or "kmer6_species", species_list)
        backbone, vocab = load_backbone(None, p.get("config_overrides"), vocab=vocab, architecture=p["architecture"])
    else:
        backbone, vocab = load_backbone(p["backbone"], p.get("config_overrides"),
                                        pretrained=p["finetune"] != "scratch")
        kind = tokenize.infer_kind(vocab)
        if p["tokenizer"] not in (None, kind):
            raise ValueError(f"tokenizer {p['tokenizer']!r} does not match backbone {p['backbone']!r} ({kind})")
    for name in [p["species"], *species_list]:
        tokenize.species_id(vocab, name)
    backbone = apply_finetune(backbone, p["finetune"], p["lora"])
    stack_params = p[f"{p['head']}_head"]
    stack, kernel = build_stack(p["head"], backbone.config.hidden_size, stack_params)
    trunk = LMTrunk(backbone, stack, vocab=vocab, species=p["species"], finetune=p["finetune"],
                    stack_spec={"kind": p["head"], "params": stack_params})
    return use_fast_dropout(trunk), kernel
