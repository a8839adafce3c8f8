"""How the planted-motif check depends on the sample of test windows: attribute -> modisco -> match per seed.

The check of tests/integration/test_interpret_synthetic.py (every planted element among an output's top six
patterns, no pattern matching a decoy) is run on one seeded sample of test windows. This repeats it for a trained
model on several samples (`--seeds`, the `seed` that picks the windows and their shuffled references) and sample sizes
(`--windows`), with the example config's modisco settings (the test's), and prints per sample: the planted elements recovered (all outputs;
the positive count patterns), and every pattern whose best match is a decoy. With `--euclidean` it also matches the same
patterns the way memelite does by itself (Euclidean distance of the probability columns, which dnalm used before it
compared columns by correlation) and prints that version's decoy matches. benchmarks/RESULTS.md records it for the
planted-motif LM and BPNet.

Usage (in the working directory of config/examples/synthetic_motifs.yaml, after its run):
    .venv/bin/python benchmarks/planted_samples.py results/models/synth/kmer_lm/best.ckpt results/windows/synth/test \\
        resources/synthetic/motifs.meme [--windows 200 400] [--seeds 0 1 2 3 4] [--outputs count] [--steps 10] \\
        [--shuffles 5] [--threads 2] [--keep DIR] [--euclidean]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))
from dnalm import attribution, interpret
from dnalm.motifs import bh_qvalues, read_motif_files
from dnalm.store import WindowStore
from dnalm.synthetic import decoys_matched, recovered

MODISCO = yaml.safe_load((REPO / "config" / "examples" / "synthetic_motifs.yaml").read_text())["interpret"]["modisco"]


def decoy_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The patterns of a motifs table whose significant best match is a decoy."""
    return table[table["best_match"].isin(decoys_matched(table)) & table["significant"]]


def euclidean_decoys(files: dict[str, str], motif_files: list[str]) -> pd.DataFrame:
    """Patterns whose best match is a significant decoy when memelite compares probability columns by Euclidean
    distance (its own column score, both strands merged by memelite)."""
    from memelite import tomtom

    motifs = read_motif_files(motif_files)
    patterns = [p for output, path in files.items() for p in interpret.read_patterns(path, output)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = tomtom([np.ascontiguousarray(x.ppm[x.trimmed()].T) for x in patterns], list(motifs.values()))[0]
    q, names = bh_qvalues(p), np.array(list(motifs))
    best = q.argmin(axis=1)
    table = pd.DataFrame({"output": [x.output for x in patterns], "sign": [x.sign for x in patterns],
                          "n_seqlets": [x.n_seqlets for x in patterns], "consensus": [x.consensus() for x in patterns],
                          "best_match": names[best], "q_value": q[np.arange(len(patterns)), best]})
    table["significant"] = table["q_value"] < 0.05
    return decoy_rows(table)


def report(label: str, decoys: pd.DataFrame) -> None:
    print(f"    {label}: decoys matched: {len(decoys)}", flush=True)
    for row in decoys.itertuples():
        print(f"      {row.output} {row.sign} {row.n_seqlets} seqlets {row.consensus} -> {row.best_match} "
              f"q = {row.q_value:.3g}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("store", help="window store prefix, e.g. results/windows/synth/test")
    parser.add_argument("motifs", nargs="+", help="known-motif MEME file(s): the synthetic genome's motifs.meme")
    parser.add_argument("--windows", type=int, nargs="+", default=[200, 400])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--outputs", nargs="+", default=["count"], choices=interpret.OUTPUTS)
    parser.add_argument("--steps", type=int, default=10, help="integrated-gradient steps (language models)")
    parser.add_argument("--shuffles", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", help="directory to keep each sample's arrays and tables in (default: discarded)")
    parser.add_argument("--euclidean", action="store_true", help="also match by memelite's Euclidean column distance")
    args = parser.parse_args()

    store = WindowStore(args.store)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.keep or scratch)
        clean, clean_euclidean = 0, 0
        for n_windows in args.windows:
            for seed in args.seeds:
                out = root / f"w{n_windows}_seed{seed}"
                out.mkdir(parents=True, exist_ok=True)
                start = time.perf_counter()
                attribution.attribute_windows(args.checkpoint, store, str(out / "attributions.npz"), n_windows=n_windows,
                                            outputs=args.outputs, n_shuffles=args.shuffles, seed=seed,
                                            ig_steps=args.steps, threads=args.threads)
                files = {}
                for output in args.outputs:
                    files[output] = str(out / f"modisco.{output}.h5")
                    interpret.run_modisco(str(out / "attributions.npz"), output, files[output], **MODISCO)
                table = interpret.match_motifs(files, args.motifs, str(out / "motifs.tsv"))
                count = table[(table["output"] == "count") & (table["sign"] == "+")]
                decoys = decoy_rows(table)
                clean += decoys.empty
                print(f"windows {n_windows} seed {seed} ({time.perf_counter() - start:.0f} s): "
                      f"{len(table)} patterns; recovered {sorted(recovered(table))}; "
                      f"positive count patterns {sorted(recovered(count))}", flush=True)
                report("correlation (dnalm)", decoys)
                if args.euclidean:
                    euclidean = euclidean_decoys(files, args.motifs)
                    clean_euclidean += euclidean.empty
                    report("Euclidean (memelite's own)", euclidean)
        n = len(args.windows) * len(args.seeds)
        print(f"{clean} of {n} samples match no decoy" +
              (f" ({clean_euclidean} of {n} by Euclidean distance)" if args.euclidean else ""))


if __name__ == "__main__":
    main()
