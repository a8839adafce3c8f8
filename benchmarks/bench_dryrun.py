"""Wall time of `snakemake -n` (DAG building) on the 165-genome example config (goal: ≤ 20 s).

Usage: python benchmarks/bench_dryrun.py [config] [runs]  (from the repository root; default
config/examples/fungal_lm_165.yaml, 3 runs). Each run uses a fresh empty working directory, so every job is
planned; prints each run's time, the median and the number of jobs.
"""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run(config: Path) -> tuple[float, float, int]:
    """Wall seconds and CPU seconds (user + system) of one dry run, and the number of jobs it plans."""
    with tempfile.TemporaryDirectory(prefix="dnalm_dryrun_") as tmp:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow" / "Snakefile"), "--configfile",
               str(config), "--directory", tmp, "-n", "--cores", "1", "--quiet", "rules"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        raise SystemExit(f"dry run failed:\n{proc.stderr[-3000:]}")
    jobs = re.search(r"^total\s+(\d+)", proc.stdout, re.MULTILINE)
    return seconds, cpu, int(jobs.group(1)) if jobs else -1


def main() -> None:
    config = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "config" / "examples" / "fungal_lm_165.yaml"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    times, cpus = [], []
    for i in range(runs):
        seconds, cpu, jobs = dry_run(config)
        times.append(seconds)
        cpus.append(cpu)
        print(f"run {i + 1}: {seconds:.1f} s wall, {cpu:.1f} s CPU ({jobs} jobs)")
    print(f"snakemake -n {config.name}: median {statistics.median(times):.1f} s wall, "
          f"{statistics.median(cpus):.1f} s CPU over {runs} runs (goal <= 20 s; wall time is CPU time on an idle machine)")


if __name__ == "__main__":
    main()
