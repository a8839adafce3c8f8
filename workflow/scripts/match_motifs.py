"""Snakemake entry script for rule match_motifs: TOMTOM matches of every modisco pattern -> motifs.tsv."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.interpret import match_motifs  # noqa: E402

match_motifs(
    dict(zip(snakemake.params.outputs, snakemake.input.modisco)),  # noqa: F821
    list(snakemake.input.motifs),  # noqa: F821
    snakemake.output.tsv,  # noqa: F821
    q_threshold=snakemake.params.q_threshold,  # noqa: F821
    reverse_complement=snakemake.params.reverse_complement,  # noqa: F821
)
