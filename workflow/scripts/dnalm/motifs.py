"""Known-motif files: MEME reading (with errors naming file and line) and writing, IUPAC consensus matrices,
q-values. Kept free of torch so that the workflow can check motif files when it reads the config."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ALPHABET = "ACGT"
#: IUPAC codes as the bases they stand for.
IUPAC = {"A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
         "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}



def consensus_ppm(consensus: str, match: float = 0.85) -> np.ndarray:
    """A (4, w) probability matrix from an IUPAC consensus: `match` shared by a position's bases, the rest spread."""
    ppm = np.zeros((4, len(consensus)))
    for i, code in enumerate(consensus.upper()):
        bases = IUPAC.get(code)
        if bases is None:
            raise ValueError(f"consensus {consensus!r}: {code!r} is not an IUPAC nucleotide code")
        hit = [ALPHABET.index(b) for b in bases]
        rest = (1.0 - match) / (4 - len(hit)) if len(hit) < 4 else 0.0
        ppm[:, i] = rest
        ppm[hit, i] = match / len(hit) if len(hit) < 4 else 0.25
    return ppm


def write_meme(path: str | Path, motifs: dict[str, np.ndarray], background: tuple[float, ...] = (0.25,) * 4) -> None:
    """Write (4, w) probability matrices as a MEME file (atomically: temp file, then rename)."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "", "Background letter frequencies",
             " ".join(f"{b} {f:.3f}" for b, f in zip(ALPHABET, background)), ""]
    for name, ppm in motifs.items():
        lines += [f"MOTIF {name}", f"letter-probability matrix: alength= 4 w= {ppm.shape[1]} nsites= 20 E= 0"]
        lines += [" ".join(f"{v:.4f}" for v in column) for column in ppm.T] + [""]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def _meme_row(path: str, number: int, line: str, motif: str) -> np.ndarray:
    """One row of a letter-probability matrix, checked."""
    try:
        row = np.array([float(v) for v in line.split()])
    except ValueError:
        row = np.array([])
    if row.size != 4 or np.any(row < 0) or abs(row.sum() - 1) > 0.02:
        raise ValueError(f"{path}, line {number}: motif {motif!r} needs 4 probabilities (A C G T) summing to 1, "
                         f"got {line.strip()!r}; fix the matrix or export the file again as MEME")
    return row / row.sum()


def read_meme(path: str | Path) -> dict[str, np.ndarray]:
    """Read a MEME motif file (e.g. a JASPAR export) into {motif id: (4, w) probability matrix}.

    Errors name the file and line: a matrix header without `w=`, rows that are not four probabilities, a matrix
    shorter than its `w`, a repeated motif id, a non-ACGT alphabet or a file without motifs.
    """
    path = str(path)
    motifs: dict[str, np.ndarray] = {}
    name, width, rows = None, None, []
    with open(path) as handle:
        lines = list(handle)
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text.startswith("ALPHABET") and text.split("=", 1)[-1].strip() not in ("ACGT", "ACGU"):
            raise ValueError(f"{path}, line {number}: only DNA/RNA motifs (ALPHABET= ACGT) are supported, got {text!r}")
        if width is not None and len(rows) < width:
            if not text:
                continue
            rows.append(_meme_row(path, number, text, name))
            if len(rows) == width:
                motifs[name] = np.array(rows).T
                name, width, rows = None, None, []
        elif text.startswith("MOTIF"):
            if name is not None:
                raise ValueError(f"{path}, line {number}: motif {name!r} has no letter-probability matrix")
            fields = text.split()
            if len(fields) < 2:
                raise ValueError(f"{path}, line {number}: MOTIF line without an id")
            name = fields[1]
            if name in motifs:
                raise ValueError(f"{path}, line {number}: motif id {name!r} appears twice")
        elif text.startswith("letter-probability matrix"):
            found = re.search(r"\bw=\s*(\d+)", text)
            if name is None or found is None or int(found.group(1)) < 1:
                raise ValueError(f"{path}, line {number}: a letter-probability matrix line needs a MOTIF line before "
                                 f"it and w= <width>, got {text!r}")
            width = int(found.group(1))
    if width is not None or name is not None:
        raise ValueError(f"{path}, line {len(lines)}: motif {name!r} ends before its {width or '?'} matrix rows")
    if not motifs:
        raise ValueError(f"{path}: no motifs found (expected MEME format: MOTIF lines, each followed by a "
                         "'letter-probability matrix: ... w= N' line and N rows of A C G T probabilities)")
    return motifs


def read_motif_files(paths: list[str]) -> dict[str, np.ndarray]:
    """Motifs of several MEME files; an id in two files is an error naming both."""
    motifs: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    for path in paths:
        for name, ppm in read_meme(path).items():
            if name in motifs:
                raise ValueError(f"motif id {name!r} is in both {origin[name]} and {path}; rename one")
            motifs[name], origin[name] = ppm, path
    return motifs


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values along the last axis (each query's p-values against all targets, as TOMTOM)."""
    p = np.asarray(p, dtype=float)
    n = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(p)
    np.put_along_axis(q, order, np.minimum(ranked, 1.0), axis=-1)
    return q
