"""Per-window profile Pearson of a model's test predictions after smoothing both profiles over w bp.

Shows how much of the low base-resolution Pearson on single-base spikes comes from a few bases of position error.
Usage: .venv/bin/python benchmarks/smoothed_pearson.py results/eval/polya/bpnet/predictions.h5 [1 5 11 21]
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
from scipy.ndimage import uniform_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))
from dnalm.metrics import pearson_rows


def main() -> None:
    path, widths = sys.argv[1], [int(w) for w in sys.argv[2:]] or [1, 5, 11, 21]
    with h5py.File(path, "r") as h5:
        observed, predicted = h5["observed"][:], h5["predicted"][:]
    print(f"{path}: {len(observed)} windows")
    for width in widths:
        r = pearson_rows(uniform_filter1d(predicted, width, axis=2), uniform_filter1d(observed, width, axis=2))
        print(f"smoothing {width:3d} bp: Pearson median {np.nanmedian(r):.3f}, mean {np.nanmean(r):.3f}")


if __name__ == "__main__":
    main()
