"""Does a fresh process compute its first square root like every other process? The trap behind BPNet trainings of
the same seed that ended in different models (docs/resume.md, "The same seed, the same model").

Starts `--processes` fresh Python processes, one after another; each sets `--threads` torch threads, optionally
calls `dnalm.device.set_threads` first (`--settled`), takes `torch.sqrt` of the same 2,688 seeded numbers (the size
of BPNet's first weight, which Adam's first step takes the square root of) twice, and prints both results' hashes.
Prints how many distinct first results and distinct second results the processes gave.

Usage: .venv/bin/python benchmarks/bench_first_sqrt.py [--processes 16] [--threads 2] [--settled]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

CODE = """
import hashlib, sys, torch
sys.path.insert(0, {scripts!r})
if {settled}:
    from dnalm.device import set_threads
    set_threads({threads})
else:
    torch.set_num_threads({threads})
x = torch.rand(2688, generator=torch.Generator().manual_seed(1)) + 0.5
print(*(hashlib.sha256(torch.sqrt(x).numpy().tobytes()).hexdigest()[:12] for _ in range(2)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settled", action="store_true", help="call dnalm.device.set_threads first")
    args = parser.parse_args()
    scripts = str(Path(__file__).resolve().parents[1] / "workflow" / "scripts")
    code = CODE.format(scripts=scripts, settled=args.settled, threads=args.threads)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(args.processes)]
    first, second = Counter(r[0] for r in runs), Counter(r[1] for r in runs)
    print(f"{args.processes} processes, {args.threads} threads, settled={args.settled}")
    print(f"first sqrt: {len(first)} distinct results {dict(first)}")
    print(f"second sqrt: {len(second)} distinct results {dict(second)}")


if __name__ == "__main__":
    main()
