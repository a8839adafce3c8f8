"""Snakemake entry script for rule export_lm: a fine-tuned LM as a Hugging Face directory with its head."""

from dnalm.jobs import start

start(snakemake)

from dnalm.models.export import export_hf  # noqa: E402
from dnalm.predict import load_model  # noqa: E402

model, _ = load_model(snakemake.input.best)
export_hf(model, snakemake.output.hf)
