"""Snakemake entry script for rule report: write results/report.html from the report manifest."""

from dnalm.jobs import start

start(snakemake)

from dnalm.report import write_report

write_report(
    snakemake.output.html,
    snakemake.params.manifest,
    n_examples=snakemake.params.n_examples,
    interpret_examples=snakemake.params.interpret_examples,
)
