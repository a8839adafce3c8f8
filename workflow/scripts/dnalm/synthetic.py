"""Synthetic poly(A) ground truth: a genome whose stranded 3'-end signal is caused by planted motifs at known places.

Every site gets, on its strand, a cleavage element (TTTCA, the site being the A of CA); 70% of the sites also get a
positioning element (AATAAA) 14–22 bp upstream of the site, which multiplies the site's reads by three, and half of
the sites the efficiency element (TATATA) 32–48 bp upstream, which multiplies them by four. Reads fall on the site
(70%) and its two neighbours (`spread` 1; with `spread` 2, over ±2 bp, as real 3'-end data spread). The rest of the genome is random with yeast's base composition. Interpretation must
find the three planted elements and none of the decoys (yeast transcription-factor consensus sites that were not
planted and do not contain a planted element on either strand).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig

from dnalm.motifs import IUPAC, consensus_ppm, write_meme

#: Planted elements: name -> consensus (the site is the last base of the cleavage element).
PLANTED = {"positioning_AATAAA": "AATAAA", "efficiency_TATATA": "TATATA", "cleavage_TTTCA": "TTTCA"}
#: Distances (bp) of the positioning and efficiency elements' last base upstream of the site.
POSITIONING_DISTANCE, EFFICIENCY_DISTANCE = range(14, 23), range(32, 49)
#: Offsets from the site where each planted element's last base lies, and the shortest piece of it that counts as it
#: in a site-aligned view (`planted_at`): the cleavage element's CA, four bases of the others.
PLANTED_OFFSETS = {"positioning_AATAAA": (range(-22, -13), 4), "efficiency_TATATA": (range(-48, -31), 4),
                   "cleavage_TTTCA": (range(1), 2)}
#: Decoys: yeast transcription-factor consensus sites (see resources/motifs/SOURCE.md), never planted.
DECOYS = {
    "Gcn4_TGACTCA": "TGACTCA", "Cbf1_CACGTG": "CACGTG", "Mbp1_MCB_ACGCGT": "ACGCGT", "Swi4_SCB_CACGAAA": "CACGAAA",
    "Reb1_TTACCCG": "TTACCCG", "Abf1_RTCRYNNNNNACG": "RTCRYNNNNNACG", "Rap1_RMACCCAYNCAYY": "RMACCCAYNCAYY",
    "Mcm1_CCWWWWWWGG": "CCWWWWWWGG", "Msn2_STRE_AGGGG": "AGGGG", "Hsf1_HSE_TTCNNGAA": "TTCNNGAANNTTC",
    "Ste12_PRE_TGAAACA": "TGAAACA", "Yap1_TTACTAA": "TTACTAA", "Ume6_URS1_WSGGCGGCWW": "WSGGCGGCWW",
    "Hap2345_CCAAT": "TNRRCCAATCA", "Rpn4_PACE_GGTGGCAAA": "GGTGGCAAA", "Aft1_TGCACCC": "TGCACCC",
    "Sko1_CRE_TGACGTCA": "TGACGTCA", "Tbf1_TTAGGG": "TTAGGGTTAGGG", "Rox1_YYNATTGTTY": "YYNATTGTTY",
    "Pdr1_PDRE_TCCGCGGA": "TCCGCGGA", "Gcr1_CTTCC": "CTTCC",
    "Hac1_UPRE_CAGCGTG": "CAGCGTG", "Ino2_ICRE_TTCACATGC": "TTCACATGC", "Met31_AAACTGTGG": "AAACTGTGG",
}
def _expand(consensus: str) -> set[str]:
    """Every string an IUPAC consensus stands for (both strands); N stays N (it matches no element's base)."""
    seqs = {""}
    for code in consensus:
        seqs = {s + b for s in seqs for b in ("N" if code == "N" else IUPAC[code])}
    return seqs | {s[::-1].translate(str.maketrans("ACGTN", "TGCAN")) for s in seqs}


def synthetic_decoys() -> dict[str, str]:
    """The decoys of the synthetic genome: DECOYS that hold no planted element on either strand."""
    planted = list(PLANTED.values())
    return {name: c for name, c in DECOYS.items()
            if not any(p in s for s in _expand(c) for p in planted)}


def recovered(table: pd.DataFrame, top: int = 6) -> set[str]:
    """Planted elements that are the found (significant, supported) best match of one of an output's `top` patterns
    (by seqlets), in a `motifs.tsv` table of `dnalm.interpret.match_motifs`."""
    best = table.sort_values("n_seqlets", ascending=False, kind="stable").groupby("output").head(top)
    return set(best.loc[best["found"], "best_match"]) & set(PLANTED)


def planted_at(elements: pd.DataFrame) -> set[str]:
    """Planted elements that a table of positional elements (`dnalm.positional`: kmer, end offset) places where they
    were planted: an element that is (a long enough piece of) the planted consensus, placed so that its last base
    falls in the planted offsets (`PLANTED_OFFSETS`)."""
    found = set()
    for name, (offsets, min_length) in PLANTED_OFFSETS.items():
        motif = PLANTED[name]
        for row in elements.itertuples():
            k = len(row.kmer)
            starts = [j for j in range(len(motif) - k + 1) if motif[j : j + k] == row.kmer] if k >= min_length else []
            if any(row.end + len(motif) - (j + k) in offsets for j in starts):
                found.add(name)
    return found


def decoys_matched(table: pd.DataFrame) -> set[str]:
    """Decoys that are the significant best match of any pattern of a `motifs.tsv` table."""
    return set(table.loc[table["significant"], "best_match"]) & set(synthetic_decoys())


BASE_FREQ = np.array([0.31, 0.19, 0.19, 0.31])  # A C G T, yeast-like


def _revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


def _random_seq(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(np.array(list("ACGT")), size=n, p=BASE_FREQ)


def _plant(chrom: np.ndarray, site: int, strand: str, motif: str, distance: int) -> tuple[int, int]:
    """Write `motif` ending `distance` bases upstream of `site` (0: ending at the site) on `strand`."""
    if strand == "+":
        end = site - distance + 1
        start = end - len(motif)
        chrom[start:end] = list(motif)
    else:
        start = site + distance
        end = start + len(motif)
        chrom[start:end] = list(_revcomp(motif))
    return start, end


def _sites(rng: np.random.Generator, length: int, spacing: int, margin: int) -> list[tuple[int, str]]:
    """Site positions every `spacing` ± 20% bp (none within `margin` of an end), each on a random strand."""
    sites, pos = [], margin
    while pos < length - margin:
        sites.append((pos, "+" if rng.random() < 0.5 else "-"))
        pos += int(spacing * rng.uniform(0.8, 1.2))
    return sites


#: Share of a site's reads at each offset from it, by `spread`.
SPREAD = {1: ((-1, 0.15), (0, 0.7), (1, 0.15)), 2: ((-2, 0.05), (-1, 0.15), (0, 0.6), (1, 0.15), (2, 0.05))}


def make_chromosome(rng: np.random.Generator, name: str, length: int, spacing: int,
                    base_reads: float, spread: int = 1) -> tuple[str, list[dict], dict[str, np.ndarray]]:
    """One chromosome: sequence, the planted sites, and per-base reads on each strand."""
    chrom = _random_seq(rng, length)
    signal = {"+": np.zeros(length), "-": np.zeros(length)}
    rows = []
    for site, strand in _sites(rng, length, spacing, margin=200):
        d_pos = int(rng.integers(POSITIONING_DISTANCE.start, POSITIONING_DISTANCE.stop))
        d_eff = int(rng.integers(EFFICIENCY_DISTANCE.start, EFFICIENCY_DISTANCE.stop))
        positioned, efficient = bool(rng.random() < 0.7), bool(rng.random() < 0.5)
        _plant(chrom, site, strand, PLANTED["cleavage_TTTCA"], 0)
        if positioned:
            _plant(chrom, site, strand, PLANTED["positioning_AATAAA"], d_pos)
        if efficient:
            _plant(chrom, site, strand, PLANTED["efficiency_TATATA"], d_eff)
        reads = base_reads * (3.0 if positioned else 1.0) * (4.0 if efficient else 1.0) * rng.lognormal(0.0, 0.3)
        for offset, share in SPREAD[spread]:
            signal[strand][site + offset] += round(reads * share)
        rows.append({"chrom": name, "site": site, "strand": strand,
                     "positioning_distance": d_pos if positioned else None,
                     "efficiency_distance": d_eff if efficient else None, "reads": reads})
    return "".join(chrom), rows, signal


def _write_bigwig(path: Path, chroms: dict[str, int], values: dict[str, np.ndarray]) -> None:
    """Per-base bigWig of the non-zero values (atomically)."""
    tmp = path.with_name(f".{path.name}.tmp")
    bw = pyBigWig.open(str(tmp), "w")
    bw.addHeader(list(chroms.items()))
    for name in chroms:
        pos = np.flatnonzero(values[name])
        if len(pos):
            bw.addEntries([name] * len(pos), pos.tolist(), ends=(pos + 1).tolist(),
                          values=values[name][pos].astype(float).tolist())
    bw.close()
    tmp.replace(path)


def write_synthetic(out_dir: str | Path, *, n_chroms: int = 6, length: int = 240_000, spacing: int = 300,
                    base_reads: float = 20.0, seed: int = 0, spread: int = 1) -> dict[str, Path]:
    """Write genome.fa, plus.bw, minus.bw, sites.tsv (the ground truth) and motifs.meme (planted + decoys).

    Chromosomes are named chr1…chrN. Returns the paths by kind. The default size (6 × 240 kb, ~4,800 sites) is what
    BPNet's count head needs to learn the elements that scale the reads within 15 epochs: with 60 kb chromosomes
    (~1,200 sites, 56 steps per epoch) it still predicted about the mean log count after 40 epochs.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    seqs, rows, plus, minus = {}, [], {}, {}
    for i in range(1, n_chroms + 1):
        name = f"chr{i}"
        seqs[name], chrom_rows, signal = make_chromosome(rng, name, length, spacing, base_reads, spread)
        rows += chrom_rows
        plus[name], minus[name] = signal["+"], signal["-"]
    paths = {"genome": out / "genome.fa", "plus": out / "plus.bw", "minus": out / "minus.bw",
             "sites": out / "sites.tsv", "motifs": out / "motifs.meme"}
    fasta = "".join(f">{n}\n" + "\n".join(s[i:i + 80] for i in range(0, len(s), 80)) + "\n" for n, s in seqs.items())
    paths["genome"].write_text(fasta)
    sizes = {n: len(s) for n, s in seqs.items()}
    _write_bigwig(paths["plus"], sizes, plus)
    _write_bigwig(paths["minus"], sizes, minus)
    pd.DataFrame(rows).to_csv(paths["sites"], sep="\t", index=False)
    motifs = {name: consensus_ppm(c) for name, c in {**PLANTED, **synthetic_decoys()}.items()}
    write_meme(paths["motifs"], motifs, tuple(BASE_FREQ))
    return paths


#: Planted variants: each breaks its element's third base (AATAAA > AAGAAA, TATATA > TAGATA on the site's strand).
BROKEN_BASE = 2
#: Decoys that planted variants' controls break (plain consensus, no IUPAC codes), at their middle base.
VARIANT_DECOYS = ("Gcn4_TGACTCA", "Cbf1_CACGTG", "Mbp1_MCB_ACGCGT", "Reb1_TTACCCG", "Aft1_TGCACCC")


def planted_variants(genome: str | Path, sites: str | Path, chrom: str, out_vcf: str | Path,
                     decoy_distance: range = range(40, 90)) -> pd.DataFrame:
    """Write a VCF of one chromosome of the synthetic genome: every planted positioning and efficiency element broken
    (`BROKEN_BASE`; INFO CLASS=positioning_AATAAA or efficiency_TATATA, FACTOR = the reads' planted factor, 3 or 4),
    and every decoy of `VARIANT_DECOYS` found `decoy_distance` bp from a site broken at its middle base (CLASS=decoy,
    FACTOR=1). Returns the variants written."""
    from dnalm.io.fasta import read_fasta

    seq = next(s.decode() for name, s in read_fasta(genome) if name == chrom)
    table = pd.read_csv(sites, sep="\t")
    rows, planted = [], np.zeros(len(seq), dtype=bool)
    for site in table[table["chrom"] == chrom].itertuples(index=False):
        planted[max(site.site - 60, 0):site.site + 61] = True
        for name, column, factor in (("positioning_AATAAA", "positioning_distance", 3),
                                     ("efficiency_TATATA", "efficiency_distance", 4)):
            if pd.isna(getattr(site, column)):
                continue
            distance, motif = int(getattr(site, column)), PLANTED[name]
            if site.strand == "+":
                pos, ref, alt = site.site - distance + 1 - len(motif) + BROKEN_BASE, "T", "G"
            else:
                pos, ref, alt = site.site + distance + len(motif) - 1 - BROKEN_BASE, "A", "C"
            if seq[pos] == ref and motif[BROKEN_BASE] == "T":
                rows.append((pos, ref, alt, name, factor))
    sites = table.loc[table["chrom"] == chrom, "site"].to_numpy()
    for name in VARIANT_DECOYS:
        for motif in {DECOYS[name], _revcomp(DECOYS[name])}:
            for match in re.finditer(f"(?={motif})", seq):
                start, end = match.start(), match.start() + len(motif)
                gaps = np.maximum(sites - end, start - sites)  # bases between the motif and each site
                if np.isin(gaps, decoy_distance).any() and not planted[start:end].any():
                    pos = start + len(motif) // 2
                    rows.append((pos, seq[pos], "ACGT"[("ACGT".index(seq[pos]) + 2) % 4], "decoy", 1))
    variants = pd.DataFrame(rows, columns=["pos", "ref", "alt", "class", "factor"]).drop_duplicates("pos")
    variants = variants.sort_values("pos")
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={chrom},length={len(seq)}>",
             '##INFO=<ID=CLASS,Number=1,Type=String,Description="The element the variant breaks">',
             '##INFO=<ID=FACTOR,Number=1,Type=Integer,Description="The planted factor of the element on reads">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"{chrom}\t{v.pos + 1}\t{v[3]}_{v.pos + 1}\t{v.ref}\t{v.alt}\t.\t.\tCLASS={v[3]};FACTOR={v.factor}"
              for v in variants.itertuples(index=False)]
    Path(out_vcf).write_text("\n".join(lines) + "\n")
    return variants


def main() -> None:
    """Command line: `python -m dnalm.synthetic OUT_DIR [--seed S]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chromosomes", type=int, default=6)
    parser.add_argument("--length", type=int, default=240_000)
    args = parser.parse_args()
    paths = write_synthetic(args.out_dir, n_chroms=args.chromosomes, length=args.length, seed=args.seed)
    print(json.dumps({k: str(v) for k, v in paths.items()}, indent=2))


if __name__ == "__main__":
    main()
