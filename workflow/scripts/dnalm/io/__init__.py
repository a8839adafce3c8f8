"""Every file format in one place: FASTA, GFF3/GTF, bigWig, fetched sources, chromosome names and tables."""

from dnalm.io.tables import read_fai, umask_mode, write_json, write_tsv

__all__ = ["read_fai", "umask_mode", "write_json", "write_tsv"]
