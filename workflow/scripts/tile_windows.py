import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.tracks import tile_windows

tile_windows(
    snakemake.input.fasta,
    snakemake.input.fai,
    snakemake.output.windows,
    **snakemake.params.window,
)
