"""The codon-position control of LM conservation on R64: pretrain a small nucleotide LM, score chrI, test C3 < C1, C2.

Pretrains a BERT masked LM with nucleotide tokens (`dnalm.pretrain.pretrain_lm`) on S. cerevisiae R64 chromosomes
II–XVI (the demo's Ensembl genome, `resources/demo/scer/`), chromosome I held out for validation, then scores a
stretch of chromosome I (`dnalm.conservation.run_conservation`; the RefSeq copy of chrI and its GFF3 in
`resources/demo/saccharomyces_chrI/`, the same sequence) and prints the pretraining time, the final validation loss
and accuracy, and the codon control (mean C at codon positions 1, 2, 3 and outside codons, one-sided Wilcoxon
p-values, `holds`). `--scores-only` rescores an existing `--out` directory, or the weights of its `last.ckpt`
(`--checkpoint`: an unfinished run, at its last evaluation).

    python benchmarks/conservation_r64.py --out /tmp/r64_lm --steps 1500
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

SPECIES = "saccharomyces_cerevisiae"
TRAIN = ["II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI"]
CHR_I = "NC_001133.9"


def gunzip(source: Path, target: Path) -> Path:
    """Decompress `source` to `target` once."""
    if not target.exists():
        with gzip.open(source, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def pretrain(out: Path, work: Path, args: argparse.Namespace) -> float:
    """Pretrain the LM into `out`; seconds taken."""
    from dnalm.pretrain import pretrain_lm

    fasta = gunzip(REPO / "resources/demo/scer/Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz", work / "r64.fa")
    spec = {"tokenizer": "nucleotide", "window": args.window, "stride": args.window // 2, "layers": args.layers,
            "hidden": args.hidden, "heads": args.heads, "intermediate": 4 * args.hidden, "steps": args.steps,
            "batch_size": args.batch_size, "lr": args.lr, "eval_every": args.eval_every, "val_windows": 128,
            "dropout": args.dropout, "attention_dropout": 0.0, "seed": 0, "precision": args.precision}
    genomes = [{"species": SPECIES, "fasta": str(fasta), "train_chroms": TRAIN, "val_chroms": ["I"]}]
    start = time.perf_counter()
    pretrain_lm(genomes, str(out), spec, species=[SPECIES], threads=args.threads)
    return time.perf_counter() - start


def from_checkpoint(out: Path, target: Path, args: argparse.Namespace) -> Path:
    """An LM directory with the weights of `out/last.ckpt` (an unfinished run's last evaluation)."""
    import torch
    from transformers import BertForMaskedLM

    from dnalm import tokenize
    from dnalm.checkpoint import load_verified
    from dnalm.models.backbones import bert_config, quiet_transformers

    state = load_verified(out / "last.ckpt")
    vocab = tokenize.vocabulary("nucleotide", [SPECIES])
    hidden = state["model"]["bert.embeddings.word_embeddings.weight"].shape[1]
    layers = 1 + max(int(k.split(".")[3]) for k in state["model"] if k.startswith("bert.encoder.layer."))
    arch = {"layers": layers, "hidden": hidden, "heads": args.heads, "intermediate": 4 * hidden, "max_positions": 512}
    model = BertForMaskedLM(bert_config(len(vocab), arch))
    model.load_state_dict(state["model"])
    with quiet_transformers():
        model.save_pretrained(str(target))
    tokenize.save_tokenizer(vocab, target)
    print(f"weights of {out / 'last.ckpt'}, step {state['step']}", flush=True)
    torch.set_num_threads(args.threads)
    return target


def score(lm: Path, work: Path, args: argparse.Namespace) -> dict:
    """Run the conservation of chrI[start, end) and return the summary."""
    from dnalm.conservation import run_conservation
    from dnalm.io.fasta import index_fasta

    data = REPO / "resources/demo/saccharomyces_chrI"
    fasta = gunzip(data / "ScerR64_I_GCF_000146045.2_R64_genomic.fna.gz", work / "chrI.fa")
    index_fasta(fasta)
    gff = gunzip(data / "ScerR64_I.gff.gz", work / "chrI.gff3")
    bed = work / "region.bed"
    bed.write_text(f"{CHR_I}\t{args.start}\t{args.end}\n")
    start = time.perf_counter()
    summary = run_conservation(str(lm), str(fasta), str(gff), str(work / "c.bw"), str(work / "c.npz"),
                               str(work / "c.json"), species=SPECIES, regions=str(bed), context=args.context,
                               batch_size=512, threads=args.threads)
    summary["scoring_seconds"] = time.perf_counter() - start
    return summary


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {}
        if not args.scores_only:
            result["pretrain_seconds"] = pretrain(out, work, args)
        lm = from_checkpoint(out, work / "lm", args) if args.checkpoint else out
        summary = score(lm, work, args)
    if (out / "history.tsv").exists():
        result["history_last"] = (out / "history.tsv").read_text().splitlines()[-1]
    result.update({k: summary[k] for k in ("bases", "context", "mean_conservation", "codon_control",
                                           "scoring_seconds")})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the LM directory (written unless --scores-only)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--start", type=int, default=30_000, help="first base of chrI scored")
    parser.add_argument("--end", type=int, default=45_000, help="base after the last")
    parser.add_argument("--context", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scores-only", action="store_true")
    parser.add_argument("--checkpoint", action="store_true", help="score the weights of OUT/last.ckpt")
    main(parser.parse_args())
