"""The transformer U-Net trunk (study 2's best LM architecture, after Borzoi): convolutions down, attention, back up.

`UNetTrunk` maps one-hot DNA (B, 4, L) to per-base features (B, channels, L), so every head serves it:

- a stem convolution (`stem_kernel` wide) at base resolution, then `depth` down-sampling stages, each a max-pool ×2
  and a residual convolution block (`kernel` wide, GELU) whose width grows by `growth` (Borzoi: 512 → 1,280 over
  six stages, ~1.2× a stage);
- at 1/2^depth resolution a small pre-norm transformer (`layers`, `heads`; rotary position embeddings on queries
  and keys, so attention sees relative offsets as in Borzoi and Enformer; `scaled_dot_product_attention`; a 2×-wide
  ReLU feed-forward), with a learned species embedding added to its input when the trunk knows species;
- up-sampling stages as in Borzoi's U-Net: a 1×1 convolution to the next width, nearest-neighbour up-sampling ×2,
  the skip connection of that resolution through its own 1×1 convolution added, a `kernel`-wide convolution + GELU;
  the last one ends at base resolution with `channels` features.

Lengths that are not a multiple of 2^depth are padded with N (all-zero columns) on both sides to the next
multiple (the odd base on the right) and the features cropped back to L, so any window length works.

Widths are rounded up to multiples of 2 × heads (rotary embeddings pair the dimensions of each head). Nonlinearities
are `nn` modules and the attention holds `nn.LayerNorm`s, so attribution takes integrated gradients
(`dnalm.attribution.resolve_method`). Species follow the nucleotide vocabulary (`dnalm.tokenize`) with
`species_names`, `use_species` and `vocab` as the language-model trunk has them (species-token counterfactual).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dnalm import tokenize
from dnalm.models.species import SpeciesSwitch
from dnalm.schema import block_defaults

#: The architecture keys of a U-Net (`models.<id>.unet.architecture`, `pretrain.<id>.unet`).
ARCHITECTURE_KEYS = ("channels", "growth", "depth", "kernel", "stem_kernel", "layers", "heads", "dropout")


def unet_widths(channels: int, growth: float, depth: int, heads: int) -> list[int]:
    """Widths of the base resolution and of each down-sampling stage, rounded up to multiples of 2 × heads."""
    step = 2 * heads
    return [step * math.ceil(channels * growth**i / step) for i in range(depth + 1)]


class ConvBlock(nn.Module):
    """A convolution + GELU and a residual convolution + GELU on its output ('same' padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, padding="same")
        self.act = nn.GELU()
        self.res = nn.Conv1d(out_channels, out_channels, kernel, padding="same")
        self.res_act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, out, L) of (B, in, L)."""
        h = self.act(self.conv(x))
        return h + self.res_act(self.res(h))


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of queries or keys (B, heads, T, head_dim): pairs of dimensions rotated by angles
    position × 10000^(−2i / head_dim), so their dot products depend on relative offsets only."""
    dim, length = x.shape[-1], x.shape[-2]
    freqs = 10000 ** (-torch.arange(0, dim, 2, device=x.device, dtype=torch.float32) / dim)
    angles = torch.arange(length, device=x.device, dtype=torch.float32)[:, None] * freqs
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class Attention(nn.Module):
    """Multi-head self-attention with rotary positions; `query`, `key`, `value`, `out` are the LoRA targets."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) → (B, T, dim)."""
        b, t, d = x.shape

        def split(layer: nn.Module) -> torch.Tensor:
            return layer(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = rotary(split(self.query)), rotary(split(self.key)), split(self.value)
        h = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(h.transpose(1, 2).reshape(b, t, d))


class TransformerLayer(nn.Module):
    """Pre-norm transformer layer: x + attention(norm(x)), then x + feed-forward(norm(x)) (`ffn_in`, `ffn_out`)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = Attention(dim, heads, dropout)
        self.ffn_in, self.ffn_act, self.ffn_out = nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) → (B, T, dim)."""
        x = x + self.drop1(self.attention(self.norm1(x)))
        return x + self.drop2(self.ffn_out(self.ffn_act(self.ffn_in(self.norm2(x)))))


class UpBlock(nn.Module):
    """Borzoi's up-sampling step: 1×1 conv, nearest ×2, plus the skip's 1×1 conv, then a conv + GELU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__()
        self.project = nn.Conv1d(in_channels, out_channels, 1)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.skip = nn.Conv1d(out_channels, out_channels, 1)
        self.conv = nn.Conv1d(out_channels, out_channels, kernel, padding="same")
        self.act = nn.GELU()

    def forward(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Features at twice h's resolution, with skip's width."""
        return self.act(self.conv(self.upsample(self.project(h)) + self.skip(skip)))


class UNetTrunk(SpeciesSwitch, nn.Module):
    """The transformer U-Net; see the module docstring.

    Args:
        channels: Width of the stem and of the output features (`out_channels`, rounded up to 2 × heads).
        growth: Width factor of each down-sampling stage.
        depth: Down-sampling stages (the transformer runs at 1/2^depth of the input length).
        kernel: Width of the stage convolutions.
        stem_kernel: Width of the stem convolution.
        layers: Transformer layers.
        heads: Attention heads.
        dropout: Dropout of the transformer (attention weights and residual branches).
        species: Species the embedding knows, in nucleotide-vocabulary order; [] for none.
        species_in_use: The species whose embedding forward adds (None: the first).
    """

    def __init__(self, channels: int = 32, growth: float = 1.25, depth: int = 4, kernel: int = 5,
                 stem_kernel: int = 15, layers: int = 2, heads: int = 4, dropout: float = 0.1,
                 species: list[str] | None = None, species_in_use: str | None = None):
        super().__init__()
        widths = unet_widths(channels, growth, depth, heads)
        self.depth, self.out_channels = depth, widths[0]
        self.stem = nn.Conv1d(4, widths[0], stem_kernel, padding="same")
        self.stem_act = nn.GELU()
        self.pools = nn.ModuleList(nn.MaxPool1d(2) for _ in range(depth))
        self.down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1], kernel) for i in range(depth))
        self.transformer = nn.ModuleList(TransformerLayer(widths[-1], heads, dropout) for _ in range(layers))
        self.final_norm = nn.LayerNorm(widths[-1])
        self.up = nn.ModuleList(UpBlock(widths[i + 1], widths[i], kernel) for i in reversed(range(depth)))
        self.vocab = tokenize.vocabulary("nucleotide", list(species or []))
        self.species_embedding = nn.Embedding(len(species), widths[-1]) if species else None
        self.species_id = tokenize.species_id(self.vocab, species_in_use or species[0]) if species else None
        self.finetune = "full"  # `_apply_finetune` sets the mode

    # ------------------------------------------------------------------------------------------------- species
    def species_rows(self, batch: int, device: torch.device) -> torch.Tensor:
        """Embedding rows (B,) of the species in use."""
        row = self.species_id - tokenize.species_start("nucleotide")
        return torch.full((batch,), row, dtype=torch.long, device=device)

    # ------------------------------------------------------------------------------------------------- forward
    def bottom(self, h: torch.Tensor, species: torch.Tensor | None) -> torch.Tensor:
        """The transformer on (B, C, T) features, with the species embedding (rows (B,)) added to its input."""
        h = h.transpose(1, 2)
        if self.species_embedding is not None:
            rows = species if species is not None else self.species_rows(h.shape[0], h.device)
            h = h + self.species_embedding(rows)[:, None, :]
        for layer in self.transformer:
            h = layer(h)
        return self.final_norm(h).transpose(1, 2)

    def forward(self, x: torch.Tensor, species: torch.Tensor | None = None) -> torch.Tensor:
        """Features (B, out_channels, L) of one-hot x (B, 4, L); `species`: embedding rows (B,) (pretraining),
        None for the species in use."""
        if x.ndim != 3 or x.shape[1] != 4:
            raise ValueError(f"expected one-hot DNA of shape (B, 4, L), got {tuple(x.shape)}")
        length, unit = x.shape[-1], 2**self.depth
        pad = -length % unit
        h = self.stem_act(self.stem(F.pad(x, (pad // 2, pad - pad // 2))))
        skips = []
        for pool, block in zip(self.pools, self.down, strict=True):
            skips.append(h)
            h = block(pool(h))
        h = self.bottom(h, species)
        for up, skip in zip(self.up, reversed(skips), strict=True):
            h = up(h, skip)
        return h[..., pad // 2 : pad // 2 + length]

    def train(self, mode: bool = True):
        """Set train/eval mode; a frozen trunk always stays in eval mode (no dropout on fixed features)."""
        super().train(mode)
        if self.finetune == "frozen":
            super().train(False)
        return self


# ------------------------------------------------------------------------------------------------ checkpoints
#: `model_type` in the `config.json` of a pretrained U-Net directory (`dnalm.pretrain_unet`).
MODEL_TYPE = "dnalm_unet"


def save_checkpoint(out: str | Path, weights: dict[str, torch.Tensor], architecture: dict, species: list[str],
                    extra: dict | None = None) -> None:
    """Write a U-Net directory: `config.json` (`model_type`, `architecture`, `species` in embedding order, `extra`)
    and `model.safetensors` (the masked-LM model's weights: `trunk.*` and the output layer `mlm.*`)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_type": MODEL_TYPE, "architecture": dict(architecture), "species": list(species), **(extra or {})}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(out / "model.safetensors"))


def read_checkpoint(path: str | Path) -> tuple[dict, list[str], dict[str, torch.Tensor]]:
    """(architecture, species, trunk weights) of a U-Net directory, or an error that names the path."""
    from safetensors.torch import load_file

    directory = Path(path)
    config_path, weights_path = directory / "config.json", directory / "model.safetensors"
    if not config_path.exists():
        raise ValueError(f"U-Net backbone {path!r} has no config.json; give a pretrain.<name> with arch: unet or "
                         "its directory (results/pretrain/<name>)")
    config = json.loads(config_path.read_text())
    if config.get("model_type") != MODEL_TYPE:
        raise ValueError(f"U-Net backbone {path!r} has model_type {config.get('model_type')!r}, not {MODEL_TYPE!r}: "
                         "a BERT or ESM checkpoint is an `lm` backbone (arch: lm, lm.backbone)")
    if not weights_path.exists():
        raise ValueError(f"U-Net backbone {path!r} has no model.safetensors")
    weights = {k.removeprefix("trunk."): v for k, v in load_file(str(weights_path)).items() if k.startswith("trunk.")}
    return dict(config["architecture"]), list(config["species"]), weights


def _apply_finetune(trunk: UNetTrunk, mode: str, lora: dict) -> UNetTrunk:
    """`frozen`: no weight trains, eval mode kept; `lora`: peft adapters on the transformer's `lora.target_modules`
    (Linear layers), nothing else of the trunk trains; `full`, `scratch`: everything trains."""
    trunk.finetune = mode
    if mode == "frozen":
        trunk.requires_grad_(False)
    elif mode == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        names = {n.rsplit(".", 1)[-1] for n, m in trunk.transformer.named_modules() if isinstance(m, nn.Linear)}
        unknown = set(lora["target_modules"]) - names
        if unknown:
            raise ValueError(f"unet.lora.target_modules: {sorted(unknown)} are not Linear layers of the U-Net's "
                             f"transformer (known: {', '.join(sorted(names))})")
        config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"], bias="none",
                            target_modules=list(lora["target_modules"]))
        trunk.transformer = inject_adapter_in_model(config, trunk.transformer)
        for name, param in trunk.named_parameters():
            param.requires_grad_("lora_" in name)
    return trunk.train(trunk.training)


def build_unet_trunk(params: dict) -> tuple[UNetTrunk, int]:
    """A U-Net trunk from its config block (call under the run's torch seed) and the head's convolution width.

    Args:
        params: The model's `unet` block (missing keys from the schema): `backbone` (a U-Net directory; None with
            `finetune: scratch`, which builds `architecture`), `finetune`, `lora`, `head_kernel`, plus `species`
            (the task species' token) and `species_list` (every configured token: the counterfactual's).

    Returns:
        (trunk in train mode, head kernel).
    """
    defaults = block_defaults("models", "unet")
    p = {**defaults, **params}
    p["architecture"] = {**defaults["architecture"], **p["architecture"]}
    p["lora"] = {**defaults["lora"], **p["lora"]}
    species_list = list(p.get("species_list") or ([p["species"]] if p.get("species") else []))
    if p["backbone"] is None:
        if p["finetune"] != "scratch":
            raise ValueError(f"unet.finetune: {p['finetune']} needs a backbone (a pretrain with arch: unet); "
                             "without one use scratch")
        architecture, species, weights = p["architecture"], species_list, None
    else:
        architecture, species, weights = read_checkpoint(p["backbone"])
        missing = [s for s in species_list if s.lower() not in {t.lower() for t in species}]
        if missing:
            raise ValueError(f"U-Net backbone {p['backbone']!r} has no species embedding for {missing} (it knows "
                             f"{species}); pretrain it with every configured species")
    trunk = UNetTrunk(**architecture, species=species, species_in_use=p.get("species"))
    if weights is not None and p["finetune"] != "scratch":
        try:
            trunk.load_state_dict(weights)
        except RuntimeError as err:
            raise ValueError(f"U-Net backbone {p['backbone']!r}: weights do not fit its config.json ({err})") from err
    return _apply_finetune(trunk, p["finetune"], p["lora"]), p["head_kernel"]
