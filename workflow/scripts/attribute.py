"""Snakemake entry script for rule attribute: DeepLIFT/SHAP attributions of test windows -> attributions.npz."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.interpret import attribute_windows  # noqa: E402
from dnalm.store import WindowStore  # noqa: E402

attribute_windows(
    snakemake.input.best,  # noqa: F821
    WindowStore(snakemake.input.seq, snakemake.input.targets, snakemake.input.meta),  # noqa: F821
    snakemake.output.npz,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    **snakemake.params.hp,  # noqa: F821
)
