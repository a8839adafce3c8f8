"""Tests for the repeat measures of genome QC with the real tools (tantan, WindowMasker): no mocks.

The planted genome: 400 kb of random sequence holding 25 copies (both strands, 3% substitutions each) of a 1.5 kb
element that carries a 120 bp tandem array of its own, and 10 separate 300 bp tandem arrays. WindowMasker must cover
at least 90% of the element's copies (92–95% with seeds 0–3 of this genome, 93–99% on genomes of 0.3–2 Mb with
20–40 copies at 2–3% divergence; a 5%-diverged element falls to ~80%) and under 0.5% of the random background (0.01%); tantan at least 95% of the tandem
arrays; the union counts the element's tandem array, found by both tools, once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_qc import needs, random_dna, write_fasta

from dnalm.io.errors import QCError
from dnalm.qc import assembly, tools

GENOME = 400_000
ELEMENT, COPIES, DIVERGENCE = 1_500, 25, 0.03
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def planted_genome(seed: int = 0) -> tuple[str, np.ndarray, np.ndarray]:
    """Random sequence with interspersed copies of one element and separate tandem arrays.

    Returns:
        The sequence, the mask of the element's copies and the mask of the separate tandem arrays.
    """
    rng = np.random.default_rng(seed)
    seq = list(random_dna(rng, GENOME))
    element = random_dna(rng, 690) + random_dna(rng, 6) * 20 + random_dna(rng, 690)
    copies, arrays = np.zeros(GENOME, dtype=bool), np.zeros(GENOME, dtype=bool)
    slot = GENOME // (COPIES + 10)  # one element copy or one tandem array per slot, at a random place in it
    for i in range(COPIES + 10):
        if i < COPIES:
            unit = list(element)
            for pos in rng.choice(ELEMENT, round(DIVERGENCE * ELEMENT), replace=False):
                unit[pos] = rng.choice([b for b in "ACGT" if b != unit[pos]])
            text = "".join(unit) if rng.random() < 0.5 else "".join(unit)[::-1].translate(COMPLEMENT)
        else:
            text = (random_dna(rng, int(rng.integers(2, 12))) * 300)[:300]
        start = i * slot + int(rng.integers(0, slot - len(text)))
        seq[start : start + len(text)] = text
        (copies if i < COPIES else arrays)[start : start + len(text)] = True
    return "".join(seq), copies, arrays


def as_mask(intervals: list[tuple[int, int]]) -> np.ndarray:
    """Intervals (0-based, half-open) as a mask of the planted genome."""
    mask = np.zeros(GENOME, dtype=bool)
    for start, end in intervals:
        mask[start:end] = True
    return mask


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """The planted genome written as FASTA, its masks, and what tantan and WindowMasker find on it."""
    seq, copies, arrays = planted_genome()
    fasta = write_fasta(tmp_path_factory.mktemp("repeats") / "planted.fa", {"chr1": seq})
    masker = tools.windowmasker_intervals(fasta, GENOME)
    return {"fasta": fasta, "copies": copies, "arrays": arrays, "masker": masker,
            "interspersed": as_mask(masker["intervals"]["chr1"]),
            "tandem": as_mask(tools.tantan_intervals(fasta)["chr1"])}  # fmt: skip


@needs("windowmasker")
def test_windowmasker_covers_the_planted_copies_and_little_else(planted: dict) -> None:
    found, copies, arrays = planted["interspersed"], planted["copies"], planted["arrays"]
    assert found[copies].mean() > 0.9
    assert found[~copies & ~arrays].mean() < 0.005
    assert planted["masker"]["unit"] == 10  # 4^10 >= 400 kb > 4^9
    assert set(planted["masker"]["thresholds"]) == {"t_low", "t_extend", "t_threshold", "t_high"}


@needs("tantan")
def test_tantan_finds_the_tandem_arrays_not_the_element(planted: dict) -> None:
    assert planted["tandem"][planted["arrays"]].mean() > 0.95
    assert planted["tandem"][planted["copies"]].mean() < 0.2  # the element's 120 bp array is 8% of it


@needs("tantan", "windowmasker")
def test_union_counts_a_base_in_both_once(planted: dict) -> None:
    result = assembly.repeat_fraction(planted["fasta"], assembly.scan_genome(planted["fasta"]))
    tandem, interspersed = planted["tandem"], planted["interspersed"]
    assert (tandem & interspersed).sum() > 1_000  # the element's tandem array, found by both
    assert result["tandem"]["bases"] == tandem.sum() and result["interspersed"]["bases"] == interspersed.sum()
    assert result["union"]["bases"] == (tandem | interspersed).sum()
    assert result["union"]["bases"] < tandem.sum() + interspersed.sum()
    assert result["method"] == "tantan+windowmasker" and result["fraction"] == result["union"]["fraction"]
    assert result["interspersed"]["tool"] == "windowmasker" and result["interspersed"]["min_length"] == 100


@needs("tantan", "windowmasker")
@pytest.mark.parametrize(("method", "kind"), [("tantan", "tandem"), ("windowmasker", "interspersed")])
def test_method_picks_the_gated_fraction(planted: dict, method: str, kind: str) -> None:
    result = assembly.repeat_fraction(planted["fasta"], assembly.scan_genome(planted["fasta"]), method)
    assert result["method"] == method and result["bases"] == result[kind]["bases"]


def test_unknown_repeat_method_is_an_error(tmp_path: Path) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 100})
    with pytest.raises(QCError, match="unknown repeat method 'repeatmasker'"):
        assembly.repeat_fraction(fasta, assembly.scan_genome(fasta), "repeatmasker")


@pytest.mark.parametrize(("length", "unit"), [(4**10, 10), (4**10 + 1, 11), (12_157_105, 12), (10, 2), (4**20, 16)])
def test_windowmasker_unit_is_the_smallest_k_with_4_to_the_k_at_least_the_length(length: int, unit: int) -> None:
    assert tools.windowmasker_unit(length) == unit


def test_parse_windowmasker_interval_output() -> None:
    lines = [">I dna:chromosome chromosome:R64-1-1:I:1:230218:1 REF\n", "0 - 62\n", "634 - 648\n", "\n",
             ">II\n", "10 - 209\n", ">Mito desc\n"]  # fmt: skip
    assert tools.parse_windowmasker(lines) == {"I": [(0, 63), (634, 649)], "II": [(10, 210)], "Mito": []}
    assert tools.parse_windowmasker(lines, min_length=100) == {"I": [], "II": [(10, 210)], "Mito": []}


def test_missing_windowmasker_names_the_tool_and_the_genome(tmp_path: Path, monkeypatch) -> None:
    fasta = write_fasta(tmp_path / "g.fa", {"a": "ACGT" * 100})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(QCError, match=f"windowmasker is not installed, needed for .*{fasta}.*ncbi-blast"):
        tools.windowmasker_intervals(fasta, 400)


@needs("windowmasker")
def test_failed_windowmasker_run_names_the_tool_and_the_genome(tmp_path: Path) -> None:
    fasta = tmp_path / "no_defline.fa"
    fasta.write_text("ACGTACGT\n")
    with pytest.raises(QCError, match=f"windowmasker -mk_counts on {fasta} failed.*defline"):
        tools.windowmasker_intervals(fasta, 8)
