"""What reverse-complement augmentation does to a per-strand count head on site-oriented windows.

Retrains a finished run's BPNet (its model.json: architecture, train settings, seed) on the same window stores with
`revcomp` true and false, and prints per epoch the validation count MSE, then on the test windows the count MSE and
count Pearson per channel (log(1 + total) per window) of each best checkpoint. The demo's windows are stored in their
site's orientation (channel + is the site's strand).

Usage: .venv/bin/python benchmarks/revcomp_count_head.py RESULTS_DIR [TASK] [MODEL] [--threads 2]
  e.g. benchmarks/revcomp_count_head.py results polya bpnet   (after `make demo`)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm import training
from dnalm.device import pick_device
from dnalm.predict import load_model, predict_outputs
from dnalm.store import WindowStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("task", nargs="?", default="polya")
    parser.add_argument("model", nargs="?", default="bpnet")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results = Path(args.results)
    info = json.loads((results / "models" / args.task / args.model / "model.json").read_text())
    if info["arch"] != "bpnet":
        raise SystemExit(f"{args.model} is a {info['arch']} model; this script retrains BPNet models")

    def store(split: str) -> WindowStore:
        prefix = results / "windows" / args.task / split
        return WindowStore(prefix)

    test = store("test")
    for revcomp in (True, False):
        with tempfile.TemporaryDirectory() as out:
            summary = training.train(store("train"), store("val"), out, arch="bpnet", model_params=info["model_params"],
                                     train_params=dict(info["train_params"], revcomp=revcomp), seed=info["seed"],
                                     threads=args.threads)
            history = pd.read_csv(Path(out) / "history.tsv", sep="\t")
            model, _ = load_model(str(Path(out) / "best.ckpt"))
        predicted, observed = [], []
        for _, (_, log_counts), y in predict_outputs(model, test, 64, pick_device("cpu")):
            predicted.append(log_counts)
            observed.append(torch.log1p(y.sum(-1)))
        p, o = torch.cat(predicted).numpy(), torch.cat(observed).numpy()
        channels = summary["channels"]
        print(f"revcomp {revcomp}: {summary['precision']}, count weight {summary['count_weight']:.4g}, best epoch "
              f"{summary['best_epoch']} of {summary['epochs_run']}")
        print("  validation count MSE per epoch: " + " ".join(f"{v:.2f}" for v in history["val_count_loss"]))
        print("  validation Pearson median per epoch: " + " ".join(f"{v:.3f}" for v in history["val_pearson_median"]))
        for c, name in enumerate(channels):
            r = np.corrcoef(p[:, c], o[:, c])[0, 1]
            print(f"  test {name}: count MSE {np.mean((p[:, c] - o[:, c]) ** 2):.2f}, count Pearson {r:.3f} "
                  f"({len(o)} windows)")


if __name__ == "__main__":
    main()
