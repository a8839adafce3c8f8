"""Language-model backbones: the families dnalm loads (BERT, ESM), their configs, checkpoints and fine-tuning modes.

A backbone is a transformers encoder whose token embeddings dnalm builds itself (`dnalm.models.embeddings`). Each
family (`FAMILIES`, keyed by the `model_type` of a checkpoint's `config.json`) says which transformers classes it is
and which tokenizer layouts (`dnalm.tokenize`) its checkpoints use:

- `bert` (`BertModel`: SpeciesLM, DNABERT-style checkpoints, dnalm's own pretraining): `kmer6_species`,
  `nucleotide`. `BertModel` adds position (and token type) embeddings and its LayerNorm to `inputs_embeds` itself.
- `esm` (`EsmModel`: the Nucleotide Transformer's layout): `nt6`. transformers' `EsmModel.forward` skips its
  embedding module when given `inputs_embeds`, so `encoder_inputs` runs it: the token-dropout scale of checkpoints
  trained with `token_dropout` (NT v1: the embeddings × (1 − 0.15·0.8), what `EsmEmbeddings` does to inputs without
  `<mask>`), the absolute position embeddings when the checkpoint has them, the optional LayerNorm and the
  attention mask. Only checkpoints of transformers' own ESM classes load: the Nucleotide Transformer v1 models
  (nucleotide-transformer-500m-human-ref, -500m-1000g, -2.5b-1000g, -2.5b-multi-species). NT v2 checkpoints
  (`add_bias_fnn: false`: a bias-free SwiGLU feed-forward in InstaDeep's own modeling code) need remote code, which
  dnalm never runs: they are refused with an error that says so.

Fine-tuning modes: `lora` (peft adapters on `lora.target_modules`; the default `query`, `value`, `dense` matches the
same layers in `BertModel` and `EsmModel`: the attention query and value projections, the attention output
projection `attention.output.dense` and both FFN layers `intermediate.dense`, `output.dense`; the pooler, the only
other `dense`, is not built, and ESM's unused `contact_head` is a `regression` layer), `frozen` (backbone weights
fixed), `full`, `scratch` (the backbone's architecture, random weights).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from dnalm import tokenize
from dnalm.schema import block_defaults

FINETUNE_MODES = ("lora", "frozen", "full", "scratch")
#: Backbone architecture keys (as in the config and `pretrain_lm`) → `BertConfig` / `EsmConfig` fields.
ARCHITECTURE_KEYS = {"layers": "num_hidden_layers", "hidden": "hidden_size", "heads": "num_attention_heads",
                     "intermediate": "intermediate_size", "max_positions": "max_position_embeddings"}
#: ESM's token dropout: the share of tokens masked in its training (`EsmEmbeddings`), scaled out at inference.
ESM_MASK_RATIO_TRAIN = 0.15 * 0.8


@dataclass(frozen=True)
class Family:
    """A backbone family.

    Attributes:
        name: The `model_type` of its checkpoints' `config.json`.
        model: Its transformers encoder class (built without a pooler).
        config: Its transformers config class.
        weights: What a checkpoint of it holds, for messages.
        kinds: The tokenizer layouts its checkpoints use; the first is the one a scratch model gets.
        defaults: Config fields of models dnalm builds from an architecture (token ids of the layout, positions).
        unused: Weight-name prefixes a checkpoint may lack: layers dnalm never runs.
    """

    name: str
    model: str
    config: str
    weights: str
    kinds: tuple[str, ...]
    defaults: dict = field(default_factory=dict)
    unused: tuple[str, ...] = ()

    def classes(self) -> tuple[type, type]:
        """(config class, model class) from transformers."""
        import transformers

        return getattr(transformers, self.config), getattr(transformers, self.model)

    def build(self, config) -> nn.Module:
        """The encoder of `config` with random weights, without a pooler."""
        return self.classes()[1](config, add_pooling_layer=False)


_NT = tokenize.LAYOUTS["nt6"]
FAMILIES = {
    "bert": Family("bert", "BertModel", "BertConfig", "BertForMaskedLM or BertModel weights",
                   ("kmer6_species", "nucleotide"), {"pad_token_id": tokenize.PAD}),
    "esm": Family("esm", "EsmModel", "EsmConfig", "EsmForMaskedLM or EsmModel weights, e.g. Nucleotide Transformer v1",
                  ("nt6",), {"pad_token_id": _NT.pad, "mask_token_id": _NT.tokens.index("<mask>"),
                             "position_embedding_type": "absolute", "token_dropout": False,
                             "emb_layer_norm_before": False}, ("contact_head.",)),
}
SUPPORTED = "; ".join(f"{f.name} ({f.weights}; tokenizer {' or '.join(f.kinds)})" for f in FAMILIES.values())


def kind_family(kind: str) -> Family:
    """The family whose checkpoints use a tokenizer kind (a scratch model of that kind is one of its encoders)."""
    return next(f for f in FAMILIES.values() if tokenize.check_kind(kind) in f.kinds)


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


def backbone_config(family: str, vocab_size: int, architecture: dict, overrides: dict | None = None):
    """A family's config (`BertConfig`, `EsmConfig`) from the workflow's architecture keys (`layers`, `hidden`, …)."""
    unknown = set(architecture) - set(ARCHITECTURE_KEYS)
    if unknown:
        raise ValueError(f"unknown architecture keys {sorted(unknown)}; known: {', '.join(ARCHITECTURE_KEYS)}")
    fields = {ARCHITECTURE_KEYS[k]: v for k, v in architecture.items() if v is not None}
    fields.setdefault("intermediate_size", 4 * fields.get("hidden_size", 768))
    config_class, _ = FAMILIES[family].classes()
    return config_class(vocab_size=vocab_size, **{**FAMILIES[family].defaults, **fields, **(overrides or {})})


def bert_config(vocab_size: int, architecture: dict, overrides: dict | None = None):
    """A `BertConfig` from the workflow's architecture keys (`backbone_config` of the `bert` family)."""
    return backbone_config("bert", vocab_size, architecture, overrides)


def encoder_inputs(model: nn.Module, embeds: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """What `model(inputs_embeds=…)` takes for token embeddings (B, T, H): BERT's forward adds the positions
    itself; ESM's skips its embedding module, so it runs here (see the module docstring)."""
    config = model.config
    if config.model_type != "esm":
        return embeds
    if config.token_dropout:
        embeds = embeds * (1 - ESM_MASK_RATIO_TRAIN)
    return model.embeddings(inputs_embeds=embeds, attention_mask=mask)


def max_tokens(config) -> int | None:
    """The most tokens an input of the backbone may have (ESM counts positions from its pad id + 1; rotary
    positions have no limit)."""
    if config.model_type != "esm":
        return config.max_position_embeddings
    if config.position_embedding_type != "absolute":
        return None
    return config.max_position_embeddings - config.pad_token_id - 1


def _checkpoint_config(path: str, overrides: dict | None):
    """The family and config of a local checkpoint directory, with clear errors for a missing or unsupported one."""
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"LM backbone {path!r} is not a directory; dnalm loads local Hugging Face "
                                "directories only (save_pretrained layout: config.json, weights, tokenizer files)")
    if not (directory / "config.json").exists():
        raise ValueError(f"LM backbone {path!r} has no config.json: not a Hugging Face model directory")
    raw = json.loads((directory / "config.json").read_text())
    family = FAMILIES.get(raw.get("model_type"))
    if family is None:
        raise ValueError(f"LM backbone {path!r} has model_type {raw.get('model_type')!r} in its config.json, a "
                         f"layout dnalm does not load; supported: {SUPPORTED}")
    if raw.get("add_bias_fnn") is False:
        raise ValueError(f"LM backbone {path!r} is a Nucleotide Transformer v2 checkpoint (add_bias_fnn: false, a "
                         "SwiGLU feed-forward in InstaDeep's own modeling code, which dnalm does not run); use a "
                         "checkpoint of transformers' EsmModel, e.g. an NT v1 model (nucleotide-transformer-500m-"
                         "human-ref, -500m-1000g, -2.5b-1000g, -2.5b-multi-species)")
    config_class, _ = family.classes()
    return family, config_class.from_pretrained(str(directory), local_files_only=True, **(overrides or {}))


def _checkpoint_vocab(path: str, family: Family, config) -> dict[str, int]:
    """The vocabulary of a checkpoint directory, checked against its family and its embedding table."""
    found = tokenize.load_vocab(path)
    if found is None:
        raise ValueError(f"LM backbone {path!r} has no tokenizer files (tokenizer.json or vocab.txt)")
    kind = tokenize.infer_kind(found)
    if kind not in family.kinds:
        raise ValueError(f"LM backbone {path!r} is a {family.name} checkpoint with a {kind} tokenizer; {family.name} "
                         f"backbones read {' or '.join(family.kinds)} (supported: {SUPPORTED})")
    if tokenize.max_input_id(found) >= config.vocab_size:
        raise ValueError(f"LM backbone {path!r}: tokenizer has ids up to {tokenize.max_input_id(found)} but the "
                         f"model's vocab_size is {config.vocab_size}")
    return found


def _load_weights(path: str, family: Family, config) -> nn.Module:
    """The pretrained encoder of a checkpoint directory (MLM head weights ignored), complete or an error."""
    _, model_class = family.classes()
    with quiet_transformers():
        try:
            model, info = model_class.from_pretrained(path, config=config, add_pooling_layer=False,
                                                      local_files_only=True, output_loading_info=True)
        except OSError as err:
            raise ValueError(f"LM backbone {path!r}: no loadable weights ({err})") from err
    missing = sorted(k for k in info["missing_keys"] if not k.startswith(family.unused))
    missing += sorted(str(k) for k in info["mismatched_keys"])
    if missing:
        raise ValueError(f"LM backbone {path!r} is not a complete {family.name} checkpoint; missing or mismatched "
                         f"weights: {missing[:5]}{' …' if len(missing) > 5 else ''}")
    return model


def load_backbone(path: str | None, config_overrides: dict | None = None, *, pretrained: bool = True,
                  vocab: dict[str, int] | None = None, architecture: dict | None = None):
    """An encoder (no pooler) and its vocabulary, from a local Hugging Face directory or from an architecture.

    Args:
        path: Directory in `save_pretrained` layout (`config.json` with `model_type` bert or esm, weights of the
            MLM model or the encoder, tokenizer files `tokenizer.json` or `vocab.txt`); None to build from
            `architecture` and `vocab`.
        config_overrides: Config fields to override (e.g. `hidden_dropout_prob`).
        pretrained: Load the weights (False: the same architecture with random weights, for `scratch`).
        vocab: Vocabulary when `path` is None (its layout picks the family: `nt6` an ESM encoder, else BERT).
        architecture: Architecture keys (`layers`, `hidden`, `heads`, `intermediate`, `max_positions`) when `path`
            is None.

    Returns:
        (`BertModel` or `EsmModel`, token → id vocabulary).

    Raises:
        FileNotFoundError, ValueError: naming the path, when it is missing, of an unsupported layout (naming the
            supported ones), lacks weights or tokenizer, or its tokenizer does not fit the model.
    """
    if path is None:
        if vocab is None or not architecture:
            raise ValueError("a backbone without a checkpoint path needs a vocabulary and an architecture")
        family = kind_family(tokenize.infer_kind(vocab))
        return family.build(backbone_config(family.name, len(vocab), architecture, config_overrides)), vocab
    family, config = _checkpoint_config(path, config_overrides)
    found = _checkpoint_vocab(path, family, config)
    if not pretrained:
        return family.build(config), found
    return _load_weights(path, family, config), found


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


def checkpoint_activations(model: torch.nn.Module, arch: str) -> int:
    """Turn on Hugging Face gradient checkpointing in every transformer of the model (`activation_checkpointing` of a
    `train` or `pretrain` block); the number of transformers. Raises ValueError when the model has none (BPNet)."""
    from transformers import PreTrainedModel

    found = [m for m in model.modules() if isinstance(m, PreTrainedModel) and m.supports_gradient_checkpointing]
    if not found:
        raise ValueError(f"activation_checkpointing: arch {arch!r} has no transformer layers to checkpoint; "
                         "set it for language-model trunks only")
    for m in found:
        m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return len(found)
