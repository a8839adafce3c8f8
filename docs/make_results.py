"""Write docs/results.md, the tables of finished runs, from their result files.

Run from the repository root after a run has finished, e.g. the demo and the planted-motif check:

    python docs/make_results.py RUN_DIR [RUN_DIR ...] [--config CONFIG ...] [--out docs/results.md]

Each run directory (the working directory Snakemake ran in) gets one section: a header line naming the run directory,
its config and the git commit of this repository, then one markdown table per result file found:
results/qc/summary.tsv, results/splits/<task>/summary.tsv, results/pretrain/<lm>/pretrain.json,
results/eval/<task>/comparison.tsv, results/interpret/<task>/<model>/motifs.tsv and positional.tsv. Values are copied
from the files
(q- and p-values rounded to three significant digits); nothing is interpreted.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("docs/results.md")
#: Config files looked for inside a run directory when --config is not given.
CONFIG_CANDIDATES = ("config.yaml", "config/config.yaml")
#: motifs.tsv columns shown, in order (offset and p_value stay in the file).
MOTIF_COLUMNS = ["output", "pattern", "sign", "n_seqlets", "consensus", "best_match", "q_value", "strand",
                 "significant", "found", "second_match", "second_q_value"]
#: positional.tsv columns shown, in order.
POSITIONAL_COLUMNS = ["output", "kmer", "start", "end", "mean_contribution", "windows", "enrichment"]
ROUNDED = {"q_value", "p_value", "second_q_value", "mash_p_value"}


# ------------------------------------------------------------------------------------------------------- reading


def read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows (as text) of a tab-separated file with a header line.

    Args:
        path: The file.

    Returns:
        The column names and one dict per row.
    """
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def cell(value: object, column: str = "") -> str:
    """A value as a markdown table cell: p- and q-values to three significant digits, `|` escaped."""
    text = "" if value is None else str(value)
    if column in ROUNDED and text not in ("", "nan"):
        try:
            text = f"{float(text):.3g}"
        except ValueError:
            pass
    return text.replace("|", "\\|").replace("\n", " ")


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# ------------------------------------------------------------------------------------------------------- sections


def qc_section(run: Path) -> list[str]:
    """Genome QC: results/qc/summary.tsv transposed (one row per measure, one column per genome)."""
    path = run / "results" / "qc" / "summary.tsv"
    if not path.exists():
        return []
    columns, rows = read_tsv(path)
    species = [row["species"] for row in rows]
    body = [[f"`{c}`", *(cell(row[c], c) for row in rows)] for c in columns if c != "species"]
    return ["### Genome QC", "", f"`{path.relative_to(run)}`", "", *table(["measure", *species], body), ""]


def splits_section(run: Path) -> list[str]:
    """Windows before and after the homology filter: results/splits/<task>/summary.tsv as it is."""
    lines: list[str] = []
    for path in sorted((run / "results" / "splits").glob("*/summary.tsv")):
        columns, rows = read_tsv(path)
        body = [[cell(row[c], c) for c in columns] for row in rows]
        lines += [f"### Splits of task {path.parent.name}", "", f"`{path.relative_to(run)}`", "",
                  *table(columns, body), ""]
    return lines


def pretrain_section(run: Path) -> list[str]:
    """Each pretrained LM: the scalar fields of pretrain.json, then its corpus genomes."""
    lines: list[str] = []
    for path in sorted((run / "results" / "pretrain").glob("*/pretrain.json")):
        summary = json.loads(path.read_text())
        scalars = [[f"`{key}`", cell(", ".join(map(str, value)) if isinstance(value, list) else value)]
                   for key, value in summary.items() if key != "corpus"]
        lines += [f"### Pretraining of {path.parent.name}", "", f"`{path.relative_to(run)}`", "",
                  *table(["field", "value"], scalars), ""]
        corpus = summary.get("corpus") or []
        if corpus:
            columns = list(dict.fromkeys(key for genome in corpus for key in genome))
            lines += [*table(columns, [[cell(genome.get(c)) for c in columns] for genome in corpus]), ""]
    return lines


def comparison_section(run: Path) -> list[str]:
    """Each task's comparison.tsv, every metric as `mean ± sd` where an sd is given."""
    lines: list[str] = []
    for path in sorted((run / "results" / "eval").glob("*/comparison.tsv")):
        columns, rows = read_tsv(path)
        shown = [c for c in columns if not (c.endswith("_sd") and c[:-3] in columns)]
        body = []
        for row in rows:
            values = []
            for c in shown:
                sd = row.get(f"{c}_sd", "") if f"{c}_sd" in columns else ""
                values.append(cell(row[c], c) + (f" ± {cell(sd)}" if sd not in ("", "nan") else ""))
            body.append(values)
        lines += [f"### Test metrics of task {path.parent.name}", "", f"`{path.relative_to(run)}`", "",
                  *table(shown, body), ""]
    return lines


def motifs_section(run: Path) -> list[str]:
    """Per task: the significant best matches of each model; per model: every pattern of motifs.tsv."""
    lines: list[str] = []
    for task_dir in sorted(p for p in (run / "results" / "interpret").glob("*") if p.is_dir()):
        files = sorted(task_dir.glob("*/motifs.tsv"))
        if not files:
            continue
        tables = {path.parent.name: read_tsv(path)[1] for path in files}
        lines += [f"### Motifs of task {task_dir.name}", "", *known_motif_table(tables), ""]
        for model, rows in tables.items():
            body = [[cell(row.get(c, ""), c) for c in MOTIF_COLUMNS] for row in rows]
            path = (task_dir / model / "motifs.tsv").relative_to(run)
            lines += [f"#### Patterns of {model} on {task_dir.name}", "", f"`{path}`", "",
                      *table(MOTIF_COLUMNS, body), ""]
            lines += positional_table(run, task_dir / model)
    return lines


def positional_table(run: Path, model_dir: Path) -> list[str]:
    """The strongest site-aligned elements of one model (positional.tsv), when the task is site-centred."""
    path = model_dir / "positional.tsv"
    if not path.is_file():
        return []
    body = [[cell(row.get(c, ""), c) for c in POSITIONAL_COLUMNS] for row in read_tsv(path)[1]]
    return [f"#### Positional elements of {model_dir.name} on {model_dir.parent.name}", "",
            f"`{path.relative_to(run)}`", "", *table(POSITIONAL_COLUMNS, body), ""]


def known_motif_table(tables: dict[str, list[dict[str, str]]]) -> list[str]:
    """Known motif × model: the lowest q-value among the patterns found to match it (`found`: significant and supported
    by enough seqlets; `significant` in files written before that column), with the pattern."""
    best: dict[str, dict[str, dict[str, str]]] = {}
    for model, rows in tables.items():
        for row in rows:
            if (row.get("found") or row.get("significant") or "").lower() != "true":
                continue
            current = best.setdefault(row["best_match"], {}).get(model)
            if current is None or float(row["q_value"]) < float(current["q_value"]):
                best[row["best_match"]][model] = row
    if not best:
        return ["No pattern has a best match reported as found."]
    models = list(tables)
    body = []
    for motif in sorted(best):
        cells = []
        for model in models:
            row = best[motif].get(model)
            cells.append("" if row is None else f"q = {cell(row['q_value'], 'q_value')}: {row['output']} "
                         f"{row['pattern']} ({row['sign']}, {row['n_seqlets']} seqlets, strand {row['strand']})")
        body.append([motif, *cells])
    return ["Matches reported as found (lowest q-value per known motif and model):", "",
            *table(["known motif", *models], body)]


# ------------------------------------------------------------------------------------------------------- page


def git_commit(repo: Path = REPO) -> str:
    """Short hash of the repository's HEAD (`git rev-parse --short HEAD`), marked when the tree has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} (with uncommitted changes)" if dirty else head


def find_config(run: Path, given: Path | None) -> str:
    """The config's path and md5 for the header: the one given, else one found in the run directory."""
    candidates = [given] if given is not None else [run / name for name in CONFIG_CANDIDATES]
    for path in candidates:
        if path.is_file():
            md5 = hashlib.md5(path.read_bytes()).hexdigest()
            return f"`{path}` (md5 {md5})"
    if given is not None:
        raise FileNotFoundError(f"config {given} does not exist")
    return "not recorded (pass --config)"


def run_section(run: Path, config: Path | None, commit: str) -> list[str]:
    """The section of one run directory: header line, then every table found."""
    if not (run / "results").is_dir():
        raise FileNotFoundError(f"{run} has no results/ directory: is it the directory Snakemake ran in?")
    parts = [qc_section(run), splits_section(run), pretrain_section(run), comparison_section(run),
             motifs_section(run)]
    body = [line for part in parts for line in part]
    header = f"Run directory `{run}`, config {find_config(run, config)}, commit `{commit}`."
    return [f"## {run.name}", "", header, "", *(body or ["No result file found.", ""])]


def render(runs: list[Path], configs: list[Path | None], commit: str) -> str:
    """The whole page."""
    lines = ["# Results", "",
             "Generated by `python docs/make_results.py` from finished runs; do not edit by hand. What the figures",
             "mean is explained in [the studies](studies.md) and [attributions](attributions.md); measured speeds",
             "and earlier runs are in [benchmarks/RESULTS.md](../benchmarks/RESULTS.md).", ""]
    for run, config in zip(runs, configs, strict=True):
        lines += run_section(run, config, commit)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the results page of one or more finished run directories.

    Args:
        argv: Command-line arguments (default: sys.argv[1:]).

    Returns:
        0 on success; 2 for a bad argument (argparse exits), 1 when a run directory has no results.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="directory Snakemake ran in")
    parser.add_argument("--config", action="append", type=Path, default=[],
                        help="config file of each RUN_DIR, in the same order (default: RUN_DIR/config.yaml if any)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output markdown file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if len(args.config) > len(args.runs):
        parser.error("more --config than run directories")
    configs = list(args.config) + [None] * (len(args.runs) - len(args.config))
    try:
        page = render(args.runs, configs, git_commit())
    except FileNotFoundError as error:
        print(f"make_results: {error}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
