"""Language models as trunks: one-hot DNA in, per-base features out, any task type's head on top.

`LMTrunk.forward(x)` takes one-hot DNA (B, 4, L) — A, C, G, T rows, N all zeros, as `dnalm.store` makes it — and
returns per-base features (B, H, L): the backbone's hidden states aligned to bases, then the feature stack chosen by
`lm.head` (`conv` or `bpnet`, `dnalm.models.heads`). The task type's head (`dnalm.models.SequenceModel`) follows,
so the losses, evaluation and attribution of BPNet apply unchanged.

One trunk serves every backbone family (`dnalm.models.backbones`: BERT, ESM / Nucleotide Transformer) and every
tokenizer layout (`dnalm.tokenize`). The model never sees token ids: it embeds the one-hot input differentiably in
the backbone's layout (`dnalm.models.embeddings`: 6-mer tokens as the multilinear extension of the embedding table,
exact on one-hot input), hands the embeddings to the backbone as `inputs_embeds` (`backbones.encoder_inputs`), and
takes per-base features back from the hidden states, so gradients reach every base (nucleotide-resolution
attributions). Species-aware layouts put the species token after `[CLS]` (`species`, `use_species`); the
Nucleotide Transformer's has no species token (`species` is None; the species counterfactual has no rows).

Fine-tuning modes (`backbones.apply_finetune`): `lora`, `frozen` (backbone weights fixed and its dropout off, head
trained; the backbone runs without autograd unless the input needs gradients), `full`, `scratch`.
"""

from __future__ import annotations

import torch
from torch import nn

from dnalm import tokenize
from dnalm.models.backbones import apply_finetune, encoder_inputs, load_backbone, max_tokens
from dnalm.models.dropout import use_fast_dropout
from dnalm.models.embeddings import token_inputs
from dnalm.models.heads import build_stack
from dnalm.models.species import SpeciesSwitch
from dnalm.schema import block_defaults


# --------------------------------------------------------------------------------------------------------- trunk
class LMTrunk(SpeciesSwitch, nn.Module):
    """A language-model backbone on one-hot DNA, with per-base features and a feature stack; see the module docstring.

    Args:
        backbone: `BertModel` or `EsmModel`, possibly wrapped by peft (`apply_finetune`).
        stack: Module mapping the backbone's per-base features (B, hidden, L) to the head's input (`lm.head`).
        vocab: The backbone's vocabulary (a `dnalm.tokenize` layout).
        species: Species whose token is put after `[CLS]`; change it with `species`/`use_species`. None (and
            ignored) for layouts without species tokens (`nt6`).
        finetune: Fine-tuning mode (`frozen` keeps the backbone in eval mode).
        stack_spec: How the stack was built (`kind`, `params`), for `export_hf`.
    """

    def __init__(self, backbone: nn.Module, stack: nn.Module, *, vocab: dict[str, int], species: str | None,
                 finetune: str = "full", stack_spec: dict | None = None):
        super().__init__()
        self.backbone = backbone
        self.stack = stack
        self.vocab = dict(vocab)
        self.kind = tokenize.infer_kind(self.vocab)
        self.finetune = finetune
        self.stack_spec = dict(stack_spec or {})
        self.species_id = tokenize.species_id(self.vocab, species) if tokenize.has_species(self.kind) else None
        self.out_channels = stack.out_channels
        self.train(self.training)

    @property
    def config(self):
        """The backbone's config (`BertConfig`, `EsmConfig`)."""
        return self.encoder.config

    @property
    def encoder(self) -> nn.Module:
        """The underlying `BertModel` or `EsmModel` (inside the peft wrapper for LoRA)."""
        return self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone

    def train(self, mode: bool = True):
        """Set train/eval mode; a frozen backbone always stays in eval mode (no dropout on fixed features)."""
        super().train(mode)
        if self.finetune == "frozen":
            self.backbone.eval()
        return self

    def tokens(self, x: torch.Tensor):
        """The backbone's inputs for one-hot x (B, 4, L): `dnalm.models.embeddings.TokenInputs`."""
        weight = self.encoder.get_input_embeddings().weight
        return token_inputs(x.to(weight.dtype), weight, self.kind, self.species_id)

    def inputs_embeds(self, x: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, T, hidden) of one-hot x (B, 4, L), as the embedding table gives them for the ids."""
        return self.tokens(x).embeds

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-base backbone features (B, hidden, L) of one-hot x (B, 4, L), before the stack."""
        if x.ndim != 3 or x.shape[1] != 4:
            raise ValueError(f"expected one-hot DNA of shape (B, 4, L), got {tuple(x.shape)}")
        grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.backbone.parameters()))
        with torch.set_grad_enabled(grad):
            tokens = self.tokens(x)
            limit = max_tokens(self.config)
            if limit is not None and tokens.embeds.shape[1] > limit:
                raise ValueError(f"a {x.shape[-1]} bp window makes {tokens.embeds.shape[1]} tokens, more than the "
                                 f"backbone's {limit} (max_position_embeddings={self.config.max_position_embeddings})")
            embeds = encoder_inputs(self.encoder, tokens.embeds, tokens.mask)
            h = self.backbone(inputs_embeds=embeds, attention_mask=tokens.mask).last_hidden_state
        return tokens.features(h)

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
            vocabulary: the counterfactual's; layouts without species tokens ignore both). Optional
            `config_overrides`: backbone config fields (e.g. dropout).

    Returns:
        (trunk in train mode, profile kernel).
    """
    p = {**block_defaults("models", "lm"), **params}
    species_list = list(p.get("species_list") or [p.get("species")])
    if p["backbone"] is None:
        if p["finetune"] != "scratch":
            raise ValueError(f"finetune: {p['finetune']} needs a backbone checkpoint; without one use scratch")
        kind = p["tokenizer"] or "kmer6_species"
        vocab = tokenize.vocabulary(kind, species_list if tokenize.has_species(kind) else [])
        backbone, vocab = load_backbone(None, p.get("config_overrides"), vocab=vocab, architecture=p["architecture"])
    else:
        backbone, vocab = load_backbone(p["backbone"], p.get("config_overrides"),
                                        pretrained=p["finetune"] != "scratch")
        kind = tokenize.infer_kind(vocab)
        if p["tokenizer"] not in (None, kind):
            raise ValueError(f"tokenizer {p['tokenizer']!r} does not match backbone {p['backbone']!r} ({kind})")
    species = p["species"] if tokenize.has_species(kind) else None
    if species is not None:  # every species of the counterfactual must be a token of the vocabulary
        for name in [species, *species_list]:
            tokenize.species_id(vocab, name)
    backbone = apply_finetune(backbone, p["finetune"], p["lora"])
    stack_params = p[f"{p['head']}_head"]
    stack, kernel = build_stack(p["head"], backbone.config.hidden_size, stack_params)
    trunk = LMTrunk(backbone, stack, vocab=vocab, species=species, finetune=p["finetune"],
                    stack_spec={"kind": p["head"], "params": stack_params})
    return use_fast_dropout(trunk), kernel
