"""Snakemake entry script for rule export_lm: a fine-tuned LM as a Hugging Face directory with its head."""

from dnalm.jobs import start

start(snakemake)

from dnalm.models.export import export_hf
from dnalm.predict import load_model

model, _ = load_model(snakemake.input.best)
export_hf(model, snakemake.output.hf)
