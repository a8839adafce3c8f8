#!/usr/bin/env bash
# Wall time of the demo (config/config.yaml) from inputs to results/report.html, in fresh working directories.
# Usage: bash benchmarks/bench_demo.sh [repeats=3] [cores=2]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
cores=${2:-2}
times=()
for i in $(seq "$repeats"); do
  work=$(mktemp -d)
  start=$(date +%s.%N)
  .venv/bin/snakemake --directory "$work" --configfile config/config.yaml --cores "$cores" results/report.html \
    > "$work/snakemake.out" 2>&1 || { tail -30 "$work/snakemake.out"; exit 1; }
  end=$(date +%s.%N)
  t=$(python3 -c "print(round($end - $start, 1))")
  times+=("$t")
  echo "run $i: ${t} s"
  last=$work
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "demo wall time, %d runs, %s cores: median %.0f s\n", NR, "'"$cores"'", a[int((NR+1)/2)]}'
echo "per-rule wall time of the last run (from job start/finish lines):"
.venv/bin/python - "$last/snakemake.out" <<'PY'
import re, sys
from datetime import datetime
text = open(sys.argv[1]).read()
stamps = {}
current = None
for block in re.split(r"\n(?=\[\w{3} \w{3} +\d+ [\d:]+ \d{4}\])", text):
    m = re.match(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", block)
    if not m:
        continue
    t = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
    for rule, jobid in re.findall(r"rule (\w+):.*?jobid: (\d+)", block, re.S):
        stamps[jobid] = [rule, t, None]
    for jobid in re.findall(r"Finished jobid: (\d+)", block):
        if jobid in stamps:
            stamps[jobid][2] = t
totals = {}
for rule, t0, t1 in stamps.values():
    if t1:
        totals[rule] = totals.get(rule, 0) + (t1 - t0).total_seconds()
for rule, s in sorted(totals.items(), key=lambda kv: -kv[1]):
    print(f"  {rule:22s} {s:6.0f} s")
PY
