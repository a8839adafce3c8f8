"""Snakemake entry script for rule run_modisco: TF-MoDISco patterns of one output -> modisco.<output>.h5."""

import logging
import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
os.environ.setdefault("NUMBA_NUM_THREADS", str(snakemake.threads))  # noqa: F821

from dnalm.interpret import run_modisco  # noqa: E402

run_modisco(
    snakemake.input.npz,  # noqa: F821
    snakemake.wildcards.output,  # noqa: F821
    snakemake.output.h5,  # noqa: F821
    **snakemake.params.settings,  # noqa: F821
)
