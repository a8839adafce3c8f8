"""Make the E. coli promoter example's inputs from the RegulonDB-derived benchmark files (see SOURCE.md).

Run once, by hand, with the directory of the benchmark FASTAs and the genome FASTA (gzip):

    python resources/demo/ecoli/prepare.py BENCHMARK_DIR GENOME_FNA_GZ resources/demo/ecoli

Writes `promoters.tsv.gz`: the sigma70 promoters (label promoter; TSS −60..+20) and the coding-region fragments of the
benchmark's negative set (label non_promoter), as intervals on NC_000913.3 with strand, each checked base for base
against the genome (an example whose sequence is not at its header's coordinates is left out and counted).
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")


def read_fasta(path: Path) -> list[tuple[str, str]]:
    records, name, seq = [], None, []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    records.append((name, "".join(seq).upper()))
                name, seq = line[1:], []
            elif line:
                seq.append(line)
    if name is not None:
        records.append((name, "".join(seq).upper()))
    return records


def locate(genome: str, seq: str, strand: str, start: int) -> int | None:
    """The 0-based start of `seq` on `strand` within 2 bp of `start`, or None."""
    target = seq if strand == "+" else seq.translate(COMPLEMENT)[::-1]
    for delta in (0, -1, 1, -2, 2):
        s = start + delta
        if genome[s : s + len(seq)] == target:
            return s
    return None


def main(bench: Path, genome_path: Path, out: Path) -> None:
    (chrom, genome), = read_fasta(genome_path)
    chrom = chrom.split()[0]
    rows, missing = [], {"promoter": 0, "non_promoter": 0}
    for header, seq in read_fasta(bench / "sigma70promoter.fa.gz"):
        found = re.match(r"(ECK\d+)_(\S+?)_(forward|reverse)_(\d+)_", header)
        if not found:
            missing["promoter"] += 1
            continue
        ident, name, direction, tss = found.groups()
        strand, tss = ("+" if direction == "forward" else "-"), int(tss)
        guess = tss - 61 if strand == "+" else tss - 21  # TSS (1-based) at position 61 of the 81-mer
        start = locate(genome, seq, strand, guess)
        if start is None:
            missing["promoter"] += 1
            continue
        evidence = header.rsplit("_", 1)[-1] or "unlabeled"
        rows.append((chrom, start, start + len(seq), strand, f"{ident}_{name}", "promoter", evidence))
    for i, (header, seq) in enumerate(read_fasta(bench / "negative2860.fa.gz")):
        found = re.search(r"K-12 (reverse )?(\d+)_(\d+)", header)  # forward fragments carry no strand word
        strand = "-" if found and found.group(1) else "+"
        start = locate(genome, seq, strand, int(found.group(2))) if found else None
        if start is None:
            missing["non_promoter"] += 1
            continue
        rows.append((chrom, start, start + len(seq), strand, f"coding_{i + 1}", "non_promoter", "coding"))
    with gzip.open(out / "promoters.tsv.gz", "wt") as handle:
        handle.write("chrom\tstart\tend\tstrand\tid\tlabel\tevidence\n")
        for row in rows:
            handle.write("\t".join(map(str, row)) + "\n")
    print(f"{len(rows)} intervals written; not found at their coordinates: {missing}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
