"""Write the demo's VCF of poly(A) positioning-element variants and matched controls: `pas_variants.vcf`.

Input: `Scer_SRR5276077_polyA_clusters.tsv.gz` (1-based `coord` of each cluster's cleavage site, its strand and
`total_count`) and the R64-1-1 genome of this directory. Sites: the clusters on the demo's test chromosome VII with at
least 10 reads (the 872 sites of the demo's task). Elements: every AATAAA (on the site's strand) lying wholly within
the 40 bp upstream of a site, mutated to AAGAAA (its T, the third base, to G; on the - strand the VCF gives the
genome strand's A>C). Controls: for each element, one substitution of the same kind (a T on the site's strand to G)
at a seeded random position of the same 300 bp window around the site, more than 50 bp from the site and outside any
A/T-rich hexamer (AWTAAA, AAWAAA or their reverse complements). INFO: CLASS (element or control), SITE (the
cluster's pa_id) and STRAND (the site's strand). A variant that two sites share is written once.

Usage: python resources/demo/scer/make_pas_variants.py   (from the repository root; writes pas_variants.vcf here)
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CHROM, MIN_READS, UPSTREAM, WINDOW, MIN_CONTROL_DISTANCE, SEED = "VII", 10, 40, 300, 50, 0
COMPLEMENT = str.maketrans("ACGT", "TGCA")
ARICH = re.compile(r"(?=(A[AT]TAAA|AA[AT]AAA|TTTA[AT]T|TTT[AT]TT))")


def read_chromosome(path: Path, name: str) -> str:
    """One record of a gzipped FASTA, upper case."""
    seq, keep = [], False
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                if keep:
                    break
                keep = line[1:].split()[0] == name
            elif keep:
                seq.append(line.strip())
    return "".join(seq).upper()


def site_strand(seq: str, start: int, end: int, strand: str) -> str:
    """Bases [start, end) (0-based) read on the site's strand."""
    piece = seq[start:end]
    return piece if strand == "+" else piece.translate(COMPLEMENT)[::-1]


def genome_position(start: int, end: int, offset: int, strand: str) -> int:
    """0-based genome position of base `offset` of [start, end) read on `strand`."""
    return start + offset if strand == "+" else end - 1 - offset


def main() -> None:
    seq = read_chromosome(HERE / "Saccharomyces_cerevisiae.R64-1-1.dna.toplevel.fa.gz", CHROM)
    clusters = pd.read_csv(HERE / "Scer_SRR5276077_polyA_clusters.tsv.gz", sep="\t", dtype={"chrom": str})
    sites = clusters[(clusters["chrom"] == CHROM) & (clusters["total_count"] >= MIN_READS)]
    arich = np.zeros(len(seq), dtype=bool)
    for match in ARICH.finditer(seq):
        arich[match.start():match.start() + 6] = True
    rng = np.random.default_rng(SEED)
    records: dict[tuple[int, str], tuple[str, str, str, str]] = {}
    for site in sites.itertuples(index=False):
        centre, strand = int(site.coord) - 1, site.strand
        lo, hi = (centre - UPSTREAM, centre) if strand == "+" else (centre + 1, centre + 1 + UPSTREAM)
        upstream = site_strand(seq, lo, hi, strand)
        for match in re.finditer(r"(?=AATAAA)", upstream):
            pos = genome_position(lo, hi, match.start() + 2, strand)
            ref, alt = ("T", "G") if strand == "+" else ("A", "C")
            if (pos, alt) in records:
                continue
            records[(pos, alt)] = (ref, "element", site.pa_id, strand)
            w_lo, w_hi = centre - WINDOW // 2, centre + WINDOW // 2
            candidates = [p for p in range(max(w_lo, 0), min(w_hi, len(seq)))
                          if seq[p] == ref and abs(p - centre) > MIN_CONTROL_DISTANCE and not arich[p]
                          and (p, alt) not in records]
            if candidates:
                control = int(rng.choice(candidates))
                records[(control, alt)] = (ref, "control", site.pa_id, strand)
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={CHROM},length={len(seq)}>",
             '##INFO=<ID=CLASS,Number=1,Type=String,Description="element: AATAAA>AAGAAA upstream of a poly(A) site; '
             'control: the same substitution elsewhere in the window">',
             '##INFO=<ID=SITE,Number=1,Type=String,Description="The poly(A) cluster (pa_id)">',
             '##INFO=<ID=STRAND,Number=1,Type=String,Description="The poly(A) site\'s strand">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for (pos, alt), (ref, kind, pa_id, strand) in sorted(records.items()):
        lines.append(f"{CHROM}\t{pos + 1}\t{kind}_{pa_id}_{pos + 1}\t{ref}\t{alt}\t.\t.\t"
                     f"CLASS={kind};SITE={pa_id};STRAND={strand}")
    (HERE / "pas_variants.vcf").write_text("\n".join(lines) + "\n")
    kinds = pd.Series([v[1] for v in records.values()]).value_counts().to_dict()
    print(f"{len(records)} variants on {CHROM} ({kinds}) -> {HERE / 'pas_variants.vcf'}")


if __name__ == "__main__":
    main()
