"""The byte-level encoder-decoder (study 4, ENBED): transformers' LongT5 on single bases, and its encoder as a trunk.

The model is `transformers.LongT5ForConditionalGeneration` with `encoder_attention_type="transient-global"`: every
base attends to the bases within `local_radius` of it and to one global token per block of `global_block_size`
bases (the block's summed embeddings, layer-normed), so attention costs O(L·(r+k)) for L bases, r the radius and
k = L / block the global tokens, instead of O(L²). The decoder is a plain T5 decoder (full self-attention over the
short targets, cross-attention to the encoder). Encoder:decoder layers are 2:1 unless `decoder_layers` is set.
T5's relative position buckets give positions, so any length runs; the feed-forward layers are gated GELU (T5 v1.1,
LongT5's checkpoints). The vocabulary is `dnalm.tokenize_enbed`'s (bases, T5's specials, span sentinels).

- `build_enbed(architecture, n_sentinels)` builds a model with random weights and `load_enbed(path)` loads a
  pretrained directory (`save_enbed`: `save_pretrained` + tokenizer files): both for any task that needs the
  decoder (pretraining, `dnalm.pretrain_enbed`; a sequence-to-sequence task).
- `EnbedTrunk` (`models.<id>.arch: enbed`) maps one-hot DNA (B, 4, L) to per-base features (B, d_model, L): the
  encoder's last hidden states, one per base. The one-hot columns are embedded differentiably,
  e = Σ_c x[c] E[base c] + (1 − Σ_c x[c]) E[N] (exactly the token lookup on one-hot input, an N column giving
  `N`'s embedding), and passed as `inputs_embeds`, so gradients reach every base (integrated-gradients
  attributions, as for the other language models). Fine-tuning modes are the LM's (`backbones.apply_finetune`):
  `lora` (peft adapters on `lora.target_modules`: LongT5's attention projections `q`, `k`, `v`, `o` and
  feed-forward layers `wi_0`, `wi_1`, `wo`), `frozen` (encoder fixed, in eval mode), `full`, `scratch`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from dnalm import tokenize_enbed
from dnalm.models.backbones import apply_finetune, quiet_transformers
from dnalm.models.dropout import use_fast_dropout
from dnalm.schema import block_defaults

#: `model_type` of a LongT5 directory's config.json.
MODEL_TYPE = "longt5"


def longt5_config(architecture: dict, vocab_size: int):
    """A `LongT5Config` of the workflow's architecture keys (`models.<id>.enbed.architecture`, `pretrain.<id>.enbed`).

    Args:
        architecture: d_model, d_ff (width of each gated-GELU branch), heads, encoder_layers, decoder_layers
            (null: half the encoder's, rounded up: 2:1), local_radius, global_block_size, dropout; missing keys
            from the schema.
        vocab_size: Size of the vocabulary (`tokenize_enbed.vocabulary`).
    """
    from transformers import LongT5Config

    a = {**block_defaults("models", "enbed")["architecture"], **architecture}
    unknown = set(a) - set(block_defaults("models", "enbed")["architecture"])
    if unknown:
        raise ValueError(f"unknown enbed architecture keys {sorted(unknown)}")
    if a["d_model"] % a["heads"]:
        raise ValueError(f"enbed d_model {a['d_model']} is not a multiple of heads {a['heads']}")
    decoder = a["decoder_layers"] or -(-a["encoder_layers"] // 2)
    return LongT5Config(
        vocab_size=vocab_size,
        d_model=a["d_model"],
        d_kv=a["d_model"] // a["heads"],
        d_ff=a["d_ff"],
        num_layers=a["encoder_layers"],
        num_decoder_layers=decoder,
        num_heads=a["heads"],
        local_radius=a["local_radius"],
        global_block_size=a["global_block_size"],
        encoder_attention_type="transient-global",
        dropout_rate=a["dropout"],
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenize_enbed.PAD,
        eos_token_id=tokenize_enbed.EOS,
        decoder_start_token_id=tokenize_enbed.PAD,
        tie_word_embeddings=True,
    )


def build_enbed(architecture: dict, n_sentinels: int) -> nn.Module:
    """A `LongT5ForConditionalGeneration` of the architecture with random weights (call under the run's seed)."""
    from transformers import LongT5ForConditionalGeneration

    config = longt5_config(architecture, len(tokenize_enbed.vocabulary(n_sentinels)))
    return use_fast_dropout(LongT5ForConditionalGeneration(config))


def save_enbed(model: nn.Module, out: str | Path, max_length: int) -> None:
    """Write a model as a Hugging Face directory: `config.json`, `model.safetensors`, `generation_config.json` and
    the tokenizer files (`AutoTokenizer` and `LongT5ForConditionalGeneration.from_pretrained` load it offline)."""
    n = model.config.vocab_size - tokenize_enbed.SENTINEL_START
    with quiet_transformers():
        model.save_pretrained(str(out))
    tokenize_enbed.save_tokenizer(out, n, max_length)


def _checked_config(path: str | Path):
    """The `LongT5Config` of a directory, or an error naming the path and what it holds instead."""
    from transformers import LongT5Config

    directory = Path(path)
    if not (directory / "config.json").exists():
        raise ValueError(
            f"enbed backbone {str(path)!r} has no config.json; give a pretrain.<name> with arch: enbed "
            "or its directory (results/pretrain/<name>)"
        )
    kind = json.loads((directory / "config.json").read_text()).get("model_type")
    if kind != MODEL_TYPE:
        raise ValueError(
            f"enbed backbone {str(path)!r} has model_type {kind!r}, not {MODEL_TYPE!r}: a BERT or ESM "
            "checkpoint is an `lm` backbone, a dnalm_unet one a `unet` backbone"
        )
    config = LongT5Config.from_pretrained(str(directory), local_files_only=True)
    if config.encoder_attention_type != "transient-global":
        raise ValueError(
            f"enbed backbone {str(path)!r} has encoder_attention_type {config.encoder_attention_type!r}; "
            "dnalm's enbed models use transient-global"
        )
    tokenize_enbed.n_sentinels(_vocab(directory))
    return config


def _vocab(directory: Path) -> dict[str, int]:
    if not (directory / "tokenizer.json").exists():
        raise ValueError(f"enbed backbone {str(directory)!r} has no tokenizer.json")
    data = json.loads((directory / "tokenizer.json").read_text())
    return {**data["model"]["vocab"], **{t["content"]: t["id"] for t in data.get("added_tokens", [])}}


def load_enbed(path: str | Path, *, encoder_only: bool = False, pretrained: bool = True) -> nn.Module:
    """A pretrained enbed directory as `LongT5ForConditionalGeneration` (or its `LongT5EncoderModel`), offline.

    Args:
        path: Directory written by `save_enbed` (a `pretrain.<name>` with arch enbed).
        encoder_only: Load the encoder only (the trunk's; decoder weights are not read).
        pretrained: Load the weights (False: the same architecture with random weights, for `scratch`).
    """
    import transformers

    config = _checked_config(path)
    cls = getattr(transformers, "LongT5EncoderModel" if encoder_only else "LongT5ForConditionalGeneration")
    if not pretrained:
        return use_fast_dropout(cls(config))
    with quiet_transformers():
        model, info = cls.from_pretrained(str(path), config=config, local_files_only=True, output_loading_info=True)
    missing = sorted(info["missing_keys"]) + sorted(map(str, info["mismatched_keys"]))
    if missing:
        raise ValueError(f"enbed backbone {str(path)!r}: missing or mismatched weights {missing[:5]}")
    return use_fast_dropout(model)


class EnbedTrunk(nn.Module):
    """The encoder of an enbed model on one-hot DNA: per-base features (B, d_model, L); see the module docstring.

    Args:
        encoder: `LongT5EncoderModel`, possibly wrapped by peft (`apply_finetune`).
        finetune: Fine-tuning mode (`frozen` keeps the encoder in eval mode).
    """

    def __init__(self, encoder: nn.Module, finetune: str = "full"):
        super().__init__()
        self.encoder = encoder
        self.finetune = finetune
        self.out_channels = self.base.config.d_model
        self.train(self.training)

    @property
    def base(self) -> nn.Module:
        """The `LongT5EncoderModel` (inside the peft wrapper for LoRA)."""
        return self.encoder.get_base_model() if hasattr(self.encoder, "get_base_model") else self.encoder

    def train(self, mode: bool = True):
        """Set train/eval mode; a frozen encoder always stays in eval mode."""
        super().train(mode)
        if self.finetune == "frozen":
            self.encoder.eval()
        return self

    def inputs_embeds(self, x: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, L, d_model) of one-hot x (B, 4, L): the bases' rows, N's where a column is zero."""
        table = self.base.get_input_embeddings().weight
        start = tokenize_enbed.BASE_START
        bases, n_row = table[start : start + 4], table[start + 4]
        x = x.to(table.dtype).transpose(1, 2)
        return x @ bases + (1 - x.sum(-1, keepdim=True)) * n_row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features (B, d_model, L) of one-hot x (B, 4, L)."""
        if x.ndim != 3 or x.shape[1] != 4:
            raise ValueError(f"expected one-hot DNA of shape (B, 4, L), got {tuple(x.shape)}")
        grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.encoder.parameters()))
        with torch.set_grad_enabled(grad):
            h = self.encoder(inputs_embeds=self.inputs_embeds(x)).last_hidden_state
        return h.transpose(1, 2)


def build_enbed_trunk(params: dict) -> tuple[EnbedTrunk, int]:
    """An enbed trunk from its config block (call under the run's seed) and the head's convolution width.

    Args:
        params: The model's `enbed` block (missing keys from the schema): `backbone` (an enbed directory; None with
            `finetune: scratch`, which builds `architecture`), `finetune`, `lora`, `head_kernel`. Other keys the
            workflow passes to every language model (`species`, `species_list`) are ignored: enbed reads no species.

    Returns:
        (trunk in train mode, head kernel).
    """
    from transformers import LongT5EncoderModel

    defaults = block_defaults("models", "enbed")
    p = {**defaults, **params}
    lora = {**defaults["lora"], **(p["lora"] or {})}
    if p["backbone"] is None:
        if p["finetune"] != "scratch":
            raise ValueError(
                f"enbed.finetune: {p['finetune']} needs a backbone (a pretrain with arch: enbed); "
                "without one use scratch"
            )
        config = longt5_config({**defaults["architecture"], **p["architecture"]}, tokenize_enbed.SENTINEL_START)
        encoder = use_fast_dropout(LongT5EncoderModel(config))
    else:
        encoder = load_enbed(p["backbone"], encoder_only=True, pretrained=p["finetune"] != "scratch")
    trunk = EnbedTrunk(apply_finetune(encoder, p["finetune"], lora), p["finetune"])
    return use_fast_dropout(trunk), p["head_kernel"]
