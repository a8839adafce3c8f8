"""The external QC tools: Mash sketches and distances, BUSCO (offline), tantan and WindowMasker."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dnalm.io.errors import QCError, require
from dnalm.io.tables import write_json, write_tsv

log = logging.getLogger(__name__)

AUGUSTUS_CONFIG = "/usr/share/augustus/config"
AUGUSTUS_SCRIPTS = "/usr/share/augustus/scripts"
BUSCO_KEYS = {  # our name: key in BUSCO's short_summary.json "results"
    "complete": "Complete",
    "single": "Single copy",
    "duplicated": "Multi copy",
    "fragmented": "Fragmented",
    "missing": "Missing",
    "n": "n_markers",
}


def _run(cmd: Sequence[Any], what: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a command, raising a QCError with its stderr when it fails."""
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        raise QCError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return proc


# ----------------------------------------------------------------------------------------------------------- tantan


def tantan_intervals(fasta: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Tandem repeats found by tantan (``tantan -f3``: BED output, default settings).

    Args:
        fasta: Genome FASTA (tantan's search ignores case).

    Returns:
        Sequence name → repeat intervals (0-based, half-open), in tantan's order.

    Raises:
        QCError: If tantan is missing or fails.
    """
    require("tantan", QCError)
    by_seq: dict[str, list[tuple[int, int]]] = {}
    with subprocess.Popen(
        ["tantan", "-f3", str(fasta)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        for line in proc.stdout:
            name, start, end = line.split("\t")[:3]
            by_seq.setdefault(name, []).append((int(start), int(end)))
        stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise QCError(f"tantan failed on {fasta} (exit {proc.returncode}): {stderr.strip()[-2000:]}")
    return by_seq


# ------------------------------------------------------------------------------------------------------ WindowMasker


def windowmasker_unit(length: int) -> int:
    """WindowMasker's unit (k-mer) length for a genome: the smallest k with 4^k >= the genome length.

    A unit of random sequence is then expected at most once per strand, so a unit counted many times is a copy of
    something rather than chance. WindowMasker's own choice is one shorter on most genome sizes (11 for the 12 Mb
    R64), where over-represented AT-rich words of unique sequence cross its thresholds (docs/genome-qc.md).

    Args:
        length: Genome length in bases.

    Returns:
        The unit length, within WindowMasker's range 1..16.
    """
    return min(16, max(1, math.ceil(math.log(max(length, 2), 4))))


def parse_windowmasker(lines: Iterable[str], min_length: int = 0) -> dict[str, list[tuple[int, int]]]:
    """Intervals of ``windowmasker -outfmt interval`` output.

    Args:
        lines: The output: ``>name description`` lines, each followed by ``start - end`` lines (0-based, end
            included).
        min_length: Intervals shorter than this are left out.

    Returns:
        Sequence name (the defline's first word) → intervals (0-based, half-open).
    """
    by_seq: dict[str, list[tuple[int, int]]] = {}
    intervals: list[tuple[int, int]] = []
    for line in lines:
        if line.startswith(">"):
            intervals = by_seq.setdefault((line[1:].split() or [""])[0], [])
        elif line.strip():
            start, end = (int(x) for x in line.split(" - "))
            if end + 1 - start >= min_length:
                intervals.append((start, end + 1))
    return by_seq


def windowmasker_intervals(fasta: str | Path, length: int, min_length: int = 100) -> dict[str, Any]:
    """Interspersed (high-copy) repeats found by WindowMasker (``-mk_counts`` then ``-ustat``, interval output).

    The unit length comes from ``windowmasker_unit``; the score thresholds are WindowMasker's own, from the genome's
    unit counts; ``-dust`` stays off (low complexity is tantan's share of the union).

    Args:
        fasta: Genome FASTA (case is ignored).
        length: Genome length in bases (picks the unit length).
        min_length: Masked intervals shorter than this are left out: one or two windows of over-represented short
            words, not copies of an element.

    Returns:
        ``intervals`` (sequence name → 0-based half-open intervals), ``unit`` and ``thresholds`` (WindowMasker's
        t_low, t_extend, t_threshold, t_high).

    Raises:
        QCError: If windowmasker is missing or fails; the message names the tool and the genome.
    """
    if shutil.which("windowmasker") is None:
        raise QCError(f"windowmasker is not installed, needed for the interspersed repeats of {fasta} "
                      "(Debian package ncbi-blast+, conda package blast; see envs/apt.txt)")  # fmt: skip
    unit = windowmasker_unit(length)
    with tempfile.TemporaryDirectory(prefix="windowmasker_") as tmp:
        counts, out = Path(tmp) / "counts", Path(tmp) / "intervals"
        _run(["windowmasker", "-mk_counts", "-unit", unit, "-in", fasta, "-out", counts],
             f"windowmasker -mk_counts on {fasta}")  # fmt: skip
        _run(["windowmasker", "-ustat", counts, "-in", fasta, "-outfmt", "interval", "-dust", "false", "-out", out],
             f"windowmasker -ustat on {fasta}")  # fmt: skip
        with open(counts) as handle:  # the thresholds are the ">t_<name> <value>" lines at the end
            thresholds = {line[1:].split()[0]: int(line.split()[1]) for line in handle if line.startswith(">t_")}
        with open(out) as handle:
            intervals = parse_windowmasker(handle, min_length)
    return {"intervals": intervals, "unit": unit, "thresholds": thresholds}


# ------------------------------------------------------------------------------------------------------------- Mash


def mash_sketch(
    fasta: str | Path, sketch: str | Path, k: int = 21, sketch_size: int = 10_000, seed: int = 42
) -> None:
    """Sketch a genome (all its sequences together) with ``mash sketch``.

    Args:
        fasta: Genome FASTA.
        sketch: Output sketch; must end in ``.msh``.
        k: k-mer size; the same for every genome.
        sketch_size: Hashes kept per sketch; the same for every genome.
        seed: Hash seed; the same for every genome.

    Raises:
        QCError: If the output name does not end in .msh or mash fails.
    """
    if not str(sketch).endswith(".msh"):
        raise QCError(f"{sketch}: a Mash sketch name must end in .msh")
    require("mash", QCError)
    cmd = ["mash", "sketch", "-k", k, "-s", sketch_size, "-S", seed, "-o", sketch, fasta]
    proc = _run(cmd, f"mash sketch of {fasta}")
    log.info("%s", proc.stderr.strip())


def mash_distance(reference: str | Path, query: str | Path) -> dict[str, Any]:
    """Mash distance between two sketches (``mash dist``).

    Args:
        reference: Sketch of the reference genome.
        query: Sketch of the genome measured.

    Returns:
        distance, p_value, shared_hashes and sketch_hashes (the denominator of the shared count).
    """
    require("mash", QCError)
    out = _run(["mash", "dist", reference, query], "mash dist").stdout.strip().splitlines()
    fields = out[-1].split("\t")
    shared, hashes = fields[4].split("/")
    return {
        "distance": float(fields[2]),
        "p_value": float(fields[3]),
        "shared_hashes": int(shared),
        "sketch_hashes": int(hashes),
    }


def mash_matrix(sketches: Mapping[str, str | Path]) -> pd.DataFrame:
    """Symmetric matrix of Mash distances between genomes (``mash triangle`` on their sketches).

    Args:
        sketches: Species → sketch; the matrix keeps this order.

    Returns:
        A square DataFrame indexed by species on both axes.
    """
    require("mash", QCError)
    names = list(sketches)
    matrix = pd.DataFrame(0.0, index=names, columns=names)
    lines = _run(["mash", "triangle", *sketches.values()], "mash triangle").stdout.strip().splitlines()[1:]
    if len(lines) != len(names):
        raise QCError(f"mash triangle returned {len(lines)} rows for {len(names)} sketches: {list(sketches.values())}")
    for i, line in enumerate(lines):
        for j, value in enumerate(line.split("\t")[1:]):
            matrix.iloc[i, j] = matrix.iloc[j, i] = float(value)
    matrix.index.name = "species"
    return matrix


def write_mash_matrix(sketches: Mapping[str, str | Path], out: str | Path) -> pd.DataFrame:
    """Write the Mash distance matrix of the genomes as TSV (first column ``species``).

    Args:
        sketches: Species → sketch, in the order of the matrix.
        out: Output TSV.

    Returns:
        The matrix.
    """
    matrix = mash_matrix(sketches)
    write_tsv(matrix.reset_index(), out)
    log.info("Mash distances of %d genomes -> %s", len(matrix), out)
    return matrix


# ------------------------------------------------------------------------------------------------------------ BUSCO


def read_lineage(lineage: str | Path) -> dict[str, str]:
    """Check a local BUSCO lineage directory and return its ``dataset.cfg``.

    Args:
        lineage: A ``*_odb10`` directory (as unpacked from busco-data.ezlab.org, or made locally).

    Returns:
        The dataset.cfg entries (name, domain, creation_date, number_of_BUSCOs, number_of_species, ...).

    Raises:
        QCError: If the directory, its name, dataset.cfg or hmms/ is not what BUSCO needs offline.
    """
    path = Path(lineage)
    if not path.is_dir():
        raise QCError(f"BUSCO lineage {lineage}: not a directory; set qc.busco.lineage to a local *_odb10 directory")
    if not path.name.endswith("_odb10"):
        raise QCError(f"BUSCO lineage {lineage}: BUSCO 5.4 needs a directory name ending in _odb10")
    cfg_path = path / "dataset.cfg"
    if not cfg_path.is_file() or not (path / "hmms").is_dir():
        raise QCError(f"BUSCO lineage {lineage}: dataset.cfg or hmms/ is missing")
    cfg = dict(line.strip().split("=", 1) for line in cfg_path.read_text().splitlines() if "=" in line)
    missing = [k for k in ("domain", "creation_date", "number_of_BUSCOs", "number_of_species") if k not in cfg]
    if missing or cfg["domain"] not in ("eukaryota", "prokaryota", "viruses"):
        raise QCError(f"{cfg_path}: needs domain (eukaryota, prokaryota or viruses) and {missing or 'valid values'}")
    return cfg


def augustus_config(target: str | Path, species: str) -> str:
    """Make a writable AUGUSTUS config directory with only the parameter sets BUSCO needs.

    BUSCO writes its retrained species into ``$AUGUSTUS_CONFIG_PATH/species``, so the system copy (read-only, 140 MB,
    nearly all of it species parameters) cannot be used in place: everything but ``species/`` is copied, plus
    ``species/generic`` and ``species/<species>``.

    Args:
        target: Directory to create (replaced if it exists).
        species: AUGUSTUS species of the lineage (dataset.cfg ``species``) or from ``qc.busco.augustus_species``.

    Returns:
        The path to set as AUGUSTUS_CONFIG_PATH.

    Raises:
        QCError: If no AUGUSTUS config is found or it lacks the species.
    """
    source = Path(os.environ.get("AUGUSTUS_CONFIG_PATH") or AUGUSTUS_CONFIG)
    if not (source / "species").is_dir():
        source = Path(AUGUSTUS_CONFIG)
    if not (source / "species" / species).is_dir():
        raise QCError(f"AUGUSTUS species {species!r} not found in {source}/species; set qc.busco.augustus_species")
    target = Path(target)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("species"))
    for name in dict.fromkeys(["generic", species]):
        if (source / "species" / name).is_dir():
            shutil.copytree(source / "species" / name, target / "species" / name)
    return str(target)


def busco_command(
    sequences: str | Path, lineage: Path, mode: str, workdir: Path, threads: int, augustus: bool
) -> list[str]:
    """The ``busco`` command line of an offline run in ``workdir``."""
    cmd = ["busco", "-i", str(Path(sequences).resolve()), "-l", str(lineage), "-m", mode, "-o", "run",
           "--out_path", str(workdir), "--download_path", str(workdir / "downloads"), "--offline", "-c", str(threads),
           "-f"]  # fmt: skip
    return cmd + ["--augustus"] if augustus else cmd


def busco_env(workdir: Path, species: str) -> dict[str, str]:
    """The environment of a BUSCO run with AUGUSTUS: a writable config copy in ``workdir``, its scripts on PATH."""
    env = dict(os.environ)
    env["AUGUSTUS_CONFIG_PATH"] = augustus_config(workdir / "augustus_config", species)
    if Path(AUGUSTUS_SCRIPTS).is_dir():
        env["PATH"] = f"{AUGUSTUS_SCRIPTS}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_busco(
    sequences: str | Path,
    lineage: str | Path,
    out: str | Path,
    workdir: str | Path,
    mode: str = "genome",
    threads: int = 1,
    augustus_species: str | None = None,
) -> dict[str, Any]:
    """Run BUSCO 5 offline on a genome or a proteome and write its scores as JSON.

    Genome mode with a eukaryote lineage uses AUGUSTUS (``--augustus``; metaeuk is not in Debian): a writable copy of
    its config goes in ``workdir`` and is removed afterwards. Prokaryote lineages use prodigal.

    Args:
        sequences: Genome FASTA (mode genome) or protein FASTA (mode proteins).
        lineage: Local ``*_odb10`` lineage directory.
        out: Output JSON: complete, single, duplicated, fragmented, missing (percent), n, counts, summary line,
            lineage, domain, mode, BUSCO version.
        workdir: BUSCO's working directory (its full output stays there).
        mode: "genome" or "proteins".
        threads: CPUs for BUSCO.
        augustus_species: AUGUSTUS species for eukaryote genomes; None takes the lineage's dataset.cfg ``species``.

    Returns:
        The scores written to ``out``.

    Raises:
        QCError: If the lineage is unusable, a tool is missing or BUSCO fails.
    """
    if mode not in ("genome", "proteins"):
        raise QCError(f"unknown BUSCO mode {mode!r}; use genome or proteins")
    lineage = Path(lineage).resolve()
    cfg = read_lineage(lineage)
    require("busco", QCError)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    augustus = mode == "genome" and cfg["domain"] == "eukaryota"
    env = busco_env(workdir, augustus_species or cfg.get("species") or "generic") if augustus else dict(os.environ)
    cmd = busco_command(sequences, lineage, mode, workdir, threads, augustus)
    if augustus and augustus_species:
        cmd += ["--augustus_species", augustus_species]
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(workdir / "augustus_config", ignore_errors=True)
    log.info("BUSCO output:\n%s", proc.stdout[-20000:])
    summary = workdir / "run" / f"run_{lineage.name}" / "short_summary.json"
    if proc.returncode != 0 or not summary.is_file():
        raise QCError(
            f"BUSCO failed on {sequences} (exit {proc.returncode}); see {workdir}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    scores = busco_scores(summary, lineage.name, cfg["domain"], mode)
    write_json(scores, out)
    return scores


def busco_scores(summary: str | Path, lineage: str, domain: str, mode: str) -> dict[str, Any]:
    """BUSCO percentages and counts from a ``short_summary.json``.

    Args:
        summary: BUSCO's short_summary.json.
        lineage: Lineage name.
        domain: Lineage domain.
        mode: BUSCO mode run.

    Returns:
        The scores.
    """
    data = json.loads(Path(summary).read_text())
    results = data["results"]
    scores: dict[str, Any] = {ours: float(results[theirs]) for ours, theirs in BUSCO_KEYS.items()}
    scores["n"] = int(results["n_markers"])
    scores["counts"] = {k: round(scores[k] * scores["n"] / 100) for k in BUSCO_KEYS if k != "n"}
    scores.update(
        summary=results["one_line_summary"],
        lineage=lineage,
        domain=domain,
        mode=mode,
        version=str(data.get("versions", {}).get("busco", "")),
    )
    return scores
