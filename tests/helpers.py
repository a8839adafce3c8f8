"""Helpers shared by the tests: window stores and checkpoints written by hand, Python code run in a real subprocess
and signalled at a chosen moment, the structure of a report page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"

#: Prelude of `start_python`: the package importable, deterministic torch, arguments as JSON in `args`.
_PRELUDE = f"""
import json, sys
sys.path.insert(0, {str(SCRIPTS)!r})
import torch
torch.use_deterministic_algorithms(True)
args = json.loads(sys.argv[1])
"""


def start_python(code: str, args: dict) -> subprocess.Popen:
    """Start `code` in a new Python process (with the prelude above); stderr is captured for error messages."""
    return subprocess.Popen([sys.executable, "-c", _PRELUDE + code, json.dumps(args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def signal_when(proc: subprocess.Popen, ready: Callable[[], bool], sig: int, timeout: float = 120.0) -> str:
    """Send `sig` to a running process as soon as `ready()` holds, wait for it to end, and return its stderr.

    Fails the test when the process ends first (showing its stderr) or `ready` stays false for `timeout` s.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"not ready after {timeout} s"
        time.sleep(0.001)
    os.kill(proc.pid, sig)
    _, err = proc.communicate()
    return err.decode()


class Planted:
    """An object whose unpickling runs code (it creates the directory `marker`), as in a malicious checkpoint."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def run_to_report(workdir: Path, config: dict, cores: int = 2) -> Path:
    """Write `config` to workdir/config.yaml and run the workflow there to results/report.html; the workdir."""
    import yaml

    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakefile = Path(__file__).resolve().parents[1] / "workflow" / "Snakefile"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir), "--configfile",
           str(workdir / "config.yaml"), "--cores", str(cores), "results/report.html"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return workdir


def save_store(directory: Path, split: str, seq: np.ndarray, targets: np.ndarray, **meta) -> str:
    """Write a window store (`dnalm.store.store_paths` layout) from arrays and return its prefix.

    `meta` must give at least length, flank, channels and rc_perm; ids default to `<split><i>`.
    """
    prefix = directory / split
    np.save(f"{prefix}.seq.npy", seq)
    np.save(f"{prefix}.targets.npy", targets)
    meta = {"split": split, "n": len(seq), "ids": [f"{split}{i}" for i in range(len(seq))], **meta}
    Path(f"{prefix}.json").write_text(json.dumps(meta))
    return str(prefix)


def tiny_bert(directory: Path, kind: str, species: list[str], architecture: dict, seed: int = 123) -> str:
    """A small random BertForMaskedLM saved as a downloaded SpeciesLM/DNABERT checkpoint looks: `save_pretrained`
    weights and config, `vocab.txt` and `tokenizer_config.json` in dnalm's token layout (`kind`, `species`)."""
    import torch
    from transformers import BertForMaskedLM

    from dnalm import tokenize
    from dnalm.models.backbones import bert_config

    vocab = tokenize.vocabulary(kind, species)
    torch.manual_seed(seed)
    BertForMaskedLM(bert_config(len(vocab), architecture)).save_pretrained(str(directory))
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                                 "do_lower_case": False}))
    return str(directory)


def tiny_nt(directory: Path, architecture: dict, *, seed: int = 123, positions: str = "absolute",
            weights: str = "bin", vocab_size: int = 4105) -> str:
    """A small random EsmForMaskedLM saved as a Nucleotide Transformer v1 download looks: `config.json`
    (model_type esm, NT v1's settings: absolute positions, token dropout, no embedding LayerNorm, vocab_size 4105),
    `pytorch_model.bin` (or `model.safetensors` with `weights="safetensors"`, as a fine-tuned copy has), and NT's
    tokenizer files: `vocab.txt` (4,107 tokens), `tokenizer_config.json` (EsmTokenizer, no end token),
    `special_tokens_map.json`. `positions="rotary"` gives ESM-2's rotary positions instead."""
    import torch
    from transformers import EsmConfig, EsmForMaskedLM

    from dnalm.models.backbones import ARCHITECTURE_KEYS

    fields = {ARCHITECTURE_KEYS[k]: v for k, v in architecture.items()}
    config = EsmConfig(vocab_size=vocab_size, pad_token_id=1, mask_token_id=2, position_embedding_type=positions,
                       token_dropout=True, emb_layer_norm_before=False, layer_norm_eps=1e-12,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, tie_word_embeddings=False,
                       max_position_embeddings=fields.pop("max_position_embeddings", 1002), **fields)
    torch.manual_seed(seed)
    model = EsmForMaskedLM(config)
    model.save_pretrained(str(directory))
    if weights == "bin":
        (directory / "model.safetensors").unlink()
        torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, directory / "pytorch_model.bin")
    nt_tokenizer_files(directory)
    return str(directory)


def nt_tokenizer_files(directory: Path) -> None:
    """The tokenizer files of a Nucleotide Transformer download: `vocab.txt` (4,107 tokens, NT's order),
    `tokenizer_config.json` (EsmTokenizer, no end token: NT appends none), `special_tokens_map.json`."""
    from dnalm import tokenize

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(tokenize.LAYOUTS["nt6"].tokens) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({"clean_up_tokenization_spaces": True,
                                                                 "eos_token": None, "model_max_length": 1000,
                                                                 "tokenizer_class": "EsmTokenizer"}))
    (directory / "special_tokens_map.json").write_text(json.dumps({"cls_token": "<cls>", "mask_token": "<mask>",
                                                                   "pad_token": "<pad>", "unk_token": "<unk>"}))


#: Elements of a report section whose text `report_structure` keeps, and the key of the section's dict it goes to.
_STRUCTURE_TEXT = {"h2": "title", "h3": "h3", "h4": "h4", "th": "tables", "figcaption": "figures"}


class _StructureParser(HTMLParser):
    """Collect the report's top-level sections with the headings, table headers and figure captions inside each."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self._depth = 0  # depth of <section> elements; the top-level ones are the report's sections
        self._tag: str | None = None  # the element whose text is being collected
        self._thead = False  # inside a table's header (a <th> elsewhere is not a column title)
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._depth += 1
            if self._depth == 1:
                self.sections.append({"id": dict(attrs).get("id"), "title": "", "h3": [], "h4": [], "tables": [],
                                      "figures": []})
        elif tag == "thead" and self.sections:
            self.sections[-1]["tables"].append([])
            self._thead = True
        elif tag in _STRUCTURE_TEXT and self.sections and (tag != "th" or self._thead):
            self._tag, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._depth -= 1
        elif tag == "thead":
            self._thead = False
        elif tag == self._tag:
            text = " ".join("".join(self._text).split())
            key, section = _STRUCTURE_TEXT[tag], self.sections[-1]
            if key == "title":
                section["title"] = text
            else:  # a header cell goes to the table opened last; a caption loses its numbers
                target = section["tables"][-1] if key == "tables" else section[key]
                target.append(_caption(text) if key == "figures" else text)
            self._tag = None

    def handle_data(self, data: str) -> None:
        if self._tag is not None:
            self._text.append(data)


def _caption(text: str) -> str:
    """A figure caption without what a run chooses: every number written `#`, and the strand of a window id
    (`species:chrom:start:strand`) written `±`, since which windows a model ranks first differs between CPUs."""
    text = re.sub(r"\d+(?:[.,]\d+)*", "#", text)
    return re.sub(r"(\w+:\w+:#:)[+-]", r"\1±", text)


def report_structure(html: str) -> dict:
    """What a report page shows, without the numbers that change from run to run.

    Args:
        html: The text of a report page (results/report.html).

    Returns:
        `{"sections": [...]}`, one dict per top-level section in page order: `id`, `title` (its h2), `h3` and `h4`
        (headings in order), `tables` (each table's header row) and `figures` (captions, every number written `#` and
        window strands `±`).
    """
    parser = _StructureParser()
    parser.feed(html)
    parser.close()
    return {"sections": parser.sections}
