"""Build the demo's stranded, base-resolution poly(A) 3'-end bigWigs from the cluster table.

Input: `Scer_SRR5276077_polyA_clusters.tsv.gz` (42,130 poly(A) clusters of SRA run SRR5276077 on R64-1-1, 1-based
coordinates; see SOURCE.md) and `chrom.sizes`. Each cluster's reads (`total_count`) are placed on its representative
cleavage site (`coord`, 1-based) on its strand: `polya_plus.bw` holds the + strand, `polya_minus.bw` the - strand, one
value per base, zero elsewhere. Clusters sharing a site and strand are summed. The table does not say how the reads
of a cluster spread over its span (mean width 12 bp), so no spread is invented.

Run from this directory: `python make_polya_bigwigs.py` (needs numpy, pandas and pyBigWig from envs/requirements.txt).
"""

import sys
from pathlib import Path

import pandas as pd
import pyBigWig

HERE = Path(__file__).resolve().parent


def write_strand(clusters: pd.DataFrame, sizes: list[tuple[str, int]], strand: str, path: Path) -> int:
    """Write the reads of one strand's clusters as a base-resolution bigWig; return the number of sites."""
    sites = clusters[clusters["strand"] == strand].groupby(["chrom", "coord"], sort=False)["total_count"].sum()
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(sizes, maxZooms=10)
    n = 0
    for chrom, _ in sizes:
        if chrom not in sites.index.get_level_values(0):
            continue
        chrom_sites = sites.loc[chrom].sort_index()
        starts = [int(c) - 1 for c in chrom_sites.index]
        bw.addEntries(chrom, starts, values=[float(v) for v in chrom_sites.values], span=1)
        n += len(starts)
    bw.close()
    return n


def main() -> None:
    """Write polya_plus.bw and polya_minus.bw next to this script."""
    sizes = [(c, int(n)) for c, n in (line.split("\t") for line in (HERE / "chrom.sizes").read_text().splitlines())]
    clusters = pd.read_csv(HERE / "Scer_SRR5276077_polyA_clusters.tsv.gz", sep="\t", dtype={"chrom": str})
    known = {c for c, _ in sizes}
    unknown = set(clusters["chrom"]) - known
    if unknown:
        sys.exit(f"clusters on chromosomes missing from chrom.sizes: {sorted(unknown)}")
    for strand, name in (("+", "polya_plus.bw"), ("-", "polya_minus.bw")):
        n = write_strand(clusters, sizes, strand, HERE / name)
        print(f"{name}: {n} sites on strand {strand}")


if __name__ == "__main__":
    main()
