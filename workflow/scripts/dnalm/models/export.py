"""Hugging Face exports of fine-tuned language models: the backbone any transformers user loads, the head beside it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from dnalm import tokenize, tokenize_enbed
from dnalm.models import SequenceModel
from dnalm.models.backbones import load_backbone, max_tokens, quiet_transformers
from dnalm.models.enbed import EnbedTrunk
from dnalm.models.heads import build_head, build_stack
from dnalm.models.lm import LMTrunk
from dnalm.schema import PRETRAIN_WINDOWS

#: How each tokenizer layout reads a window, for `head.json`.
LAYOUT_TEXT = {
    "kmer6_species": "[CLS] <species> overlapping 6-mers [SEP]; per-base features = mean over the covering 6-mers",
    "nucleotide": "[CLS] <species> one token per base [SEP]; per-base features = the base's hidden state",
    "nt6": "<cls> then non-overlapping 6-mers from the left of each N-free stretch, the rest single bases (the "
           "Nucleotide Transformer's tokenizer); per-base features = the hidden state of the base's token",
}


def export_hf(model: SequenceModel, out_dir: str | Path) -> Path:
    """Export an LM model as a Hugging Face directory: backbone (LoRA merged) + tokenizer, and the head beside them.

    Writes `config.json` and `model.safetensors` (a `BertModel` or `EsmModel`, loadable with `AutoModel`),
    `tokenizer.json`,
    `tokenizer_config.json`, `vocab.txt` (loadable with `AutoTokenizer`), `head.safetensors` (the feature stack's
    and the head's state dicts, keys prefixed `stack.` and `head.`) and `head.json` (how to rebuild them and use
    the model: `load_exported`). An enbed model (`dnalm.models.enbed`) exports its encoder instead
    (`_export_enbed`). The model itself is unchanged.
    """
    from safetensors.torch import save_file

    trunk = model.trunk
    if isinstance(trunk, EnbedTrunk):
        return _export_enbed(model, Path(out_dir))
    if not isinstance(trunk, LMTrunk):
        raise TypeError(f"only language models export to Hugging Face directories, not a {type(trunk).__name__}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone = _merged(trunk.backbone)
    with quiet_transformers():
        backbone.save_pretrained(str(out))
    limit = max_tokens(trunk.config) or trunk.config.max_position_embeddings
    tokenize.save_tokenizer(trunk.vocab, out, max_length=limit)
    weights = {f"stack.{k}": v for k, v in trunk.stack.state_dict().items()}
    weights.update({f"head.{k}": v for k, v in model.head.state_dict().items()})
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(out / "head.safetensors"))
    info = {"stack": trunk.stack_spec, "head": model.head_spec, "hidden": trunk.config.hidden_size,
            "tokenizer": trunk.kind, "species": trunk.species, "finetune": trunk.finetune,
            "input": "one-hot DNA (B, 4, L), rows A, C, G, T; N all zeros",
            "layout": f"{LAYOUT_TEXT[trunk.kind]}; stack, then head, on features (B, hidden, L)"}
    (out / "head.json").write_text(json.dumps(info, indent=2))
    return out


def _merged(backbone: torch.nn.Module) -> torch.nn.Module:
    """A CPU copy of a backbone with its LoRA adapters merged into the weights (unchanged without adapters)."""
    backbone = copy.deepcopy(backbone).cpu()
    return backbone.merge_and_unload() if hasattr(backbone, "merge_and_unload") else backbone


def _export_enbed(model: SequenceModel, out: Path) -> Path:
    """`export_hf` of an enbed model: the encoder as a `LongT5EncoderModel` (LoRA merged; `config.json`,
    `model.safetensors`), the enbed tokenizer files (`AutoTokenizer`), the head's state dict (`head.safetensors`,
    keys prefixed `head.`) and `head.json`."""
    from safetensors.torch import save_file

    trunk = model.trunk
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        _merged(trunk.encoder).save_pretrained(str(out))
    n_sentinels = trunk.base.config.vocab_size - tokenize_enbed.SENTINEL_START
    tokenize_enbed.save_tokenizer(out, n_sentinels, max_length=PRETRAIN_WINDOWS["enbed"])
    weights = {f"head.{k}": v.detach().cpu().contiguous() for k, v in model.head.state_dict().items()}
    save_file(weights, str(out / "head.safetensors"))
    info = {"head": model.head_spec, "hidden": trunk.out_channels, "tokenizer": "enbed", "finetune": trunk.finetune,
            "input": "one-hot DNA (B, 4, L), rows A, C, G, T; N all zeros",
            "layout": "one token per base (A C G T N), no special tokens; per-base features = the encoder's last "
                      "hidden states; head on features (B, d_model, L)"}
    (out / "head.json").write_text(json.dumps(info, indent=2))
    return out


def load_exported(path: str | Path, device: torch.device | str | None = None) -> SequenceModel:
    """Rebuild an `export_hf` directory as an eval-mode model (backbone fully trainable if trained on)."""
    from safetensors.torch import load_file

    path = Path(path)
    info = json.loads((path / "head.json").read_text())
    if info["tokenizer"] == "enbed":
        from transformers import LongT5EncoderModel

        with quiet_transformers():
            trunk = EnbedTrunk(LongT5EncoderModel.from_pretrained(str(path), local_files_only=True))
        spec = info["head"]
        model = SequenceModel(trunk, build_head(spec["kind"], trunk.out_channels, spec["n_outputs"], spec["params"]),
                              spec)
        model.head.load_state_dict({k[5:]: v for k, v in load_file(str(path / "head.safetensors")).items()})
        return model.eval().to(device or "cpu")
    backbone, vocab = load_backbone(str(path))
    stack, _ = build_stack(info["stack"]["kind"], backbone.config.hidden_size, info["stack"]["params"])
    trunk = LMTrunk(backbone, stack, vocab=vocab, species=info["species"], finetune="full",
                    stack_spec=info["stack"])
    spec = info["head"]
    model = SequenceModel(trunk, build_head(spec["kind"], trunk.out_channels, spec["n_outputs"], spec["params"]),
                          spec)
    weights = load_file(str(path / "head.safetensors"))
    trunk.stack.load_state_dict({k[6:]: v for k, v in weights.items() if k.startswith("stack.")})
    model.head.load_state_dict({k[5:]: v for k, v in weights.items() if k.startswith("head.")})
    return model.eval().to(device or "cpu")
