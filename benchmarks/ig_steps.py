"""How many integrated-gradient steps a language model's attributions need: completeness and agreement by steps.

For a trained model (`results/models/<task>/<model>/best.ckpt`) and its test windows, attributes a seeded sample of
windows with each number of steps (the same dinucleotide-shuffled references every time) and prints per output and
step count:
- seconds;
- the completeness gap per window-reference pair, as `attribute` logs it (|Σ (x − r)·m − (f(x) − f(r))| over the
  window's mean |f(x) − f(r)|): median and maximum;
- the same per window, after averaging over the references (`dnalm.attribution.completeness_gap`);
- agreement with the most steps: the median over windows of the Pearson correlation of the hypothetical
  contributions (what modisco clusters) with those at the largest step count.
`interpret.ig_steps` is the knob; benchmarks/RESULTS.md records this for the planted-motif model.

Usage (after the planted-motif example, or any run with a language model):
    .venv/bin/python benchmarks/ig_steps.py results/models/synth/kmer_lm/best.ckpt results/windows/synth/test \\
        [--windows 20] [--steps 5 10 20 40] [--shuffles 5] [--outputs count profile] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm import attribution
from dnalm.attribution import select_windows
from dnalm.predict import load_model
from dnalm.store import WindowStore


class PairGaps(logging.Handler):
    """Keeps the per-pair gap median and maximum that `attribute` logs."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.last = (float("nan"), float("nan"))

    def emit(self, record: logging.LogRecord) -> None:
        if "completeness gap" in str(record.msg):
            self.last = record.args[1:3]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("store", help="window store prefix, e.g. results/windows/<task>/test")
    ap.add_argument("--windows", type=int, default=20)
    ap.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40])
    ap.add_argument("--shuffles", type=int, default=5)
    ap.add_argument("--outputs", nargs="+", default=["count", "profile"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    store = WindowStore(a.store)
    model, info = load_model(a.checkpoint)
    if attribution.resolve_method(model) != "ig":
        sys.exit(f"{a.checkpoint} is a {info.get('arch')} model attributed with DeepLIFT (exact); nothing to measure")
    x, _ = store.batch(select_windows(len(store), a.windows, a.seed))
    x = np.asarray(x, dtype=np.float32)
    refs = attribution.make_references(x, a.shuffles, a.seed).numpy()
    steps = sorted(a.steps)
    pairs = PairGaps()
    attribution.log.addHandler(pairs)
    attribution.log.setLevel(logging.INFO)
    print(f"{a.checkpoint}: {len(x)} windows x {a.shuffles} references, length {x.shape[2]}, "
          f"{torch.get_num_threads()} threads")
    print("output   steps  seconds  pair_gap_median  pair_gap_max  window_gap_median  hyp_r_vs_most_steps")
    for output in a.outputs:
        hyps, rows = {}, []
        for n in steps:
            start = time.perf_counter()
            attr, hyp = attribution.attribute(model, x, output=output, references=refs, steps=n, device="cpu")
            seconds = time.perf_counter() - start
            window = attribution.completeness_gap(model, x, attr, refs, output=output, device="cpu")
            hyps[n] = hyp
            rows.append((n, seconds, *pairs.last, np.median(window)))
        ref = hyps[steps[-1]].reshape(len(x), -1)
        for n, seconds, gm, gmax, wm in rows:
            h = hyps[n].reshape(len(x), -1)
            r = np.median([np.corrcoef(h[i], ref[i])[0, 1] for i in range(len(x))])
            print(f"{output:8s} {n:5d} {seconds:8.1f}  {gm:15.3f}  {gmax:12.3f}  {wm:17.3f}  {r:19.4f}")


if __name__ == "__main__":
    main()
