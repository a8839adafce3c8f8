"""Write config/examples/fungal_lm_165.yaml: study 2's corpus shape (SEEDS.md §2), R64 plus 164 genomes by URL.

The 164 genomes are placeholders: well-formed https URLs under genomes.example.org and md5 sums derived from their
names, so the config validates and `snakemake -n` builds the full DAG (~500 QC jobs, pretraining, 8 fold tasks), but
nothing can be downloaded. The 4 R64 tracks are placeholders too, listed in a track table and the task's targets in
a target table (config/examples/fungal_lm_165_tracks.tsv, _targets.tsv): study 2's 2,488 tracks are 2,488 rows. Replace them with real assemblies (e.g. NCBI Saccharomycetales RefSeq genomes) to run it.

Usage: python benchmarks/make_fungal_lm_165.py  (from the repository root)
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "config" / "examples" / "fungal_lm_165.yaml"
#: R64's tracks and the task's targets as tables (species.scer.track_table, tasks.coverage.target_table).
TRACK_TABLE = "config/examples/fungal_lm_165_tracks.tsv"
TARGET_TABLE = "config/examples/fungal_lm_165_targets.tsv"
N_OTHER = 164

HEADER = """\
# Study 2 of SEEDS.md at the scale of its largest corpus: a fungal DNA language model pretrained on R64 plus 164
# Saccharomycetales genomes (16 kb windows), fine-tuned on R64 coverage tracks (32 bp bins, squashed scale) with 8-fold
# cross-validation over contiguous genome folds (one task, 8 fold tasks), the pretrained LM against the same LM from
# scratch and BPNet, with homology-filtered splits and corpus.
# Written by benchmarks/make_fungal_lm_165.py. The 164 genomes and the R64 tracks are placeholders (genomes.example.org,
# md5s derived from their names): the config builds its DAG (`snakemake -n`, benchmarks/bench_dryrun.py) but does not
# download; put real URLs and md5s in their place to run it, on a GPU cluster.
"""


def md5_of(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def source(url: str) -> dict:
    return {"url": url, "md5": md5_of(url)}


def species() -> dict:
    out = {
        "scer": {
            "token": "saccharomyces_cerevisiae",
            "reference": True,
            "genome": {"url": "file://resources/demo/scer/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz",
                       "md5": "103245e292833b928981d7bf813f615a"},
            "annotation": {"url": "file://resources/demo/scer/Saccharomyces_cerevisiae.R64-1-1.96.gtf.gz",
                           "md5": "d1d9c504025611758a46c2266284f8ef"},
            "track_table": TRACK_TABLE,
        }
    }
    for i in range(1, N_OTHER + 1):
        sid = f"sacch{i:03d}"
        out[sid] = {
            "token": f"saccharomycetales_{i:03d}",
            "genome": source(f"https://genomes.example.org/saccharomycetales/GCA_9{i:08d}.1/{sid}_genomic.fna.gz"),
        }
    return out


#: Placeholder R64 coverage tracks, one of each of study 2's kinds (its 2,488 tracks would be listed the same way).
TRACKS = ("rna_plus", "rna_minus", "h3k4me3", "reb1_chipexo")


def task() -> dict:
    """Study 2's fine-tuning: 16 kb windows, 32 bp bins on the squashed scale, 8-fold cross-validation."""
    return {
        "type": "tracks",
        "species": "scer",
        "target_table": TARGET_TABLE,
        "window": {"length": 16384, "stride": 4096, "flank": 64},
        "bins": {"size": 32, "aggregate": "mean", "transform": "squash"},
        "split": {
            "folds": {"k": 8, "min_gap": 100},  # no val/test: every fold is the test fold once
            "homology": {"enabled": True, "preset": "asm20", "min_identity": 0.95, "min_coverage": 0.5},
        },
        "seed": 0,
    }


def config() -> dict:
    homology = {"enabled": True, "preset": "asm20", "min_identity": 0.95, "min_coverage": 0.5}
    return {
        "species": species(),
        "tasks": {"coverage": task()},
        "pretrain": {
            "fungal_lm_165": {
                "corpus": None,
                "tokenizer": "kmer6_species",
                "window": 16384,
                "stride": 16384,
                "layers": 8,
                "hidden": 512,
                "heads": 8,
                "steps": 200000,
                "batch_size": 32,
                "lr": 0.0005,
                "eval_every": 2000,
                "val_windows": 512,
                "homology": homology,
            }
        },
        "models": {
            "bpnet": {"arch": "bpnet", "bpnet": {"filters": 64, "layers": 9}, "train": {"epochs": 30, "jitter": 64}},
            "lm_full": {  # the pretrained LM, every weight fine-tuned ...
                "arch": "lm",
                "lm": {"backbone": "fungal_lm_165", "finetune": "full", "head": "conv"},
                "train": {"epochs": 20, "batch_size": 8, "lr": 0.0001, "jitter": 64},
            },
            "lm_scratch": {  # ... against the same architecture from random weights: what pretraining is worth
                "arch": "lm",
                "lm": {"backbone": "fungal_lm_165", "finetune": "scratch", "head": "conv"},
                "train": {"epochs": 20, "batch_size": 8, "lr": 0.0001, "jitter": 64},
            },
        },
        "qc": {"busco": {"lineage": None}, "gene_window": 16384},
    }


def write_tables() -> None:
    """The track table (name, source, md5) and the target table (name, track or plus and minus)."""
    rows = ["name\tsource\tmd5"]
    for name in TRACKS:
        url = f"https://tracks.example.org/r64/{name}.bw"
        rows.append(f"{name}\t{url}\t{md5_of(url)}")
    (REPO / TRACK_TABLE).write_text("\n".join(rows) + "\n")
    targets = ["name\ttrack\tplus\tminus", "rna\t\trna_plus\trna_minus", "h3k4me3\th3k4me3\t\t",
               "reb1\treb1_chipexo\t\t"]
    (REPO / TARGET_TABLE).write_text("\n".join(targets) + "\n")


def main() -> None:
    OUT.write_text(HEADER + "\n" + yaml.safe_dump(config(), sort_keys=False, width=120))
    write_tables()
    print(f"wrote {OUT}, {TRACK_TABLE} and {TARGET_TABLE}")


if __name__ == "__main__":
    main()
