"""Helpers shared by the tests: window stores written by hand, Python code run in a real subprocess and signalled at a
chosen moment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
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
    from dnalm.models.lm import bert_config

    vocab = tokenize.vocabulary(kind, species)
    torch.manual_seed(seed)
    BertForMaskedLM(bert_config(len(vocab), architecture)).save_pretrained(str(directory))
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n")
    (directory / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                                 "do_lower_case": False}))
    return str(directory)
