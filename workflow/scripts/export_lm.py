import logging
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

from dnalm.models.lm import export_hf
from dnalm.training import load_model

model, _ = load_model(snakemake.input.best)
export_hf(model, snakemake.output.hf)
