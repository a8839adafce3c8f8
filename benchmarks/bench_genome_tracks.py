"""Genome-wide prediction tracks: bp/s of a BPNet tiled over R64, and peak RSS at 1x and 4x the genome size.

Writes the first `--bases` bases of the demo's S. cerevisiae R64 genome (resources/demo/scer, records cut at their
own boundaries, names kept) to a temporary FASTA, and 4x as many bases (the genome repeated as further records when
R64 runs out) to another. Per size, in a fresh subprocess, `dnalm.genome_tracks.predict_tracks` runs a random BPNet
of the demo's shape (config/config.yaml: `models.bpnet.bpnet`, the profile task's window length and its two
stranded outputs) over every chromosome, default overlap (a quarter of the window), and writes the two bigWigs;
the child reports wall time, bp/s (bases covered / wall time, FASTA reading, batching and bigWig writing
included) and its peak RSS (VmHWM). Flat memory is the goal: the 4x run should peak where the 1x run does. The
projected time for all of R64 (12,157,105 bp) is bases / (bp/s).

Usage: .venv/bin/python benchmarks/bench_genome_tracks.py [--bases 1000000] [--repeats 1] [--threads 2]
       [--batch 64] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))
GENOME = ROOT / "resources" / "demo" / "scer" / "Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz"
CONFIG = ROOT / "config" / "config.yaml"
R64_BASES = 12_157_105


def demo_bpnet() -> tuple[dict, int]:
    """The demo's BPNet trunk block and its profile task's window length (config/config.yaml)."""
    import yaml

    config = yaml.safe_load(CONFIG.read_text())
    profile = [task for task in config["tasks"].values() if task.get("type", "profile") == "profile"]
    if not profile:
        raise ValueError(f"{CONFIG}: no profile task to take the window length from")
    return dict(config["models"]["bpnet"]["bpnet"]), int(profile[0]["window"]["length"])


def write_chunk(out: Path, bases: int) -> int:
    """Write the first `bases` bases of R64 to `out` (the genome again, renamed, when it runs out); return bases."""
    records, name, seq = [], None, []
    with gzip.open(GENOME, "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                if name:
                    records.append((name, "".join(seq)))
                name, seq = line[1:].split()[0], []
            else:
                seq.append(line.strip())
    records.append((name, "".join(seq)))
    written, copy = 0, 0
    with open(out, "w") as fa:
        while written < bases:
            for name, seq in records:
                take = seq[: bases - written]
                if not take:
                    break
                fa.write(f">{name}{'_' + str(copy) if copy else ''}\n{take}\n")
                written += len(take)
            copy += 1
    return written


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM, not ru_maxrss: Linux carries that over from the parent on fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def predict_genome(fasta: str, out_dir: str, threads: int, batch: int) -> dict:
    """In this process: the demo-shaped random BPNet over every chromosome of `fasta`; wall time and peak RSS."""
    import torch

    from dnalm.device import set_threads
    from dnalm.genome_tracks import predict_tracks
    from dnalm.models import build_model

    set_threads(threads)
    params, length = demo_bpnet()
    torch.manual_seed(0)
    model = build_model("bpnet", params, "profile", 2).eval()
    paths = [Path(out_dir) / "plus.bw", Path(out_dir) / "minus.bw"]
    start = time.perf_counter()
    summary = predict_tracks(model, fasta, paths, length=length, batch_size=batch, device="cpu")
    seconds = time.perf_counter() - start
    return {
        **summary,
        "seconds": seconds,
        "bp_per_s": summary["bases"] / seconds,
        "peak_rss_mib": peak_rss_mib(),
        "bigwig_mib": sum(p.stat().st_size for p in paths) / 2**20,
    }


def child(fasta: Path, out_dir: Path, threads: int, batch: int) -> dict:
    """Run `predict_genome` in a fresh interpreter, so its peak RSS is that of this genome size alone."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
        "from bench_genome_tracks import predict_genome;"
        "print(json.dumps(predict_genome(sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))))"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(SCRIPTS),
            str(Path(__file__).parent),
            str(fasta),
            str(out_dir),
            str(threads),
            str(batch),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bases", type=int, default=1_000_000, help="bases of the 1x genome (4x gets four times)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="windows per forward pass")
    parser.add_argument("--dir", default=None, help="where the temporary genomes and bigWigs go")
    args = parser.parse_args()
    params, length = demo_bpnet()
    print(
        f"model: random BPNet {params} (profile, 2 outputs), window {length} bp; {args.threads} threads, "
        f"batch {args.batch}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name, factor in (("1x", 1), ("4x", 4)):
            fasta = Path(tmp) / f"{name}.fa"
            bases = write_chunk(fasta, factor * args.bases)
            runs = [child(fasta, Path(tmp), args.threads, args.batch) for _ in range(args.repeats)]
            rates = [r["bp_per_s"] for r in runs]
            print(
                f"{name} ({bases:,} bp, {runs[0]['windows']:,} windows, overlap {runs[0]['overlap']}): "
                "bp/s " + " ".join(f"{r:,.0f}" for r in rates) + f" (median {statistics.median(rates):,.0f}); "
                "peak RSS MiB "
                + " ".join(f"{r['peak_rss_mib']:.0f}" for r in runs)
                + f"; bigWigs {runs[0]['bigwig_mib']:.1f} MiB; projected R64 "
                f"{R64_BASES / statistics.median(rates):.0f} s"
            )


if __name__ == "__main__":
    main()
