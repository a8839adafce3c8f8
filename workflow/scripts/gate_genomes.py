"""Snakemake entry script for rule gate_genomes: QC summary, thresholds applied and the genomes admitted."""

from dnalm.jobs import start

start(snakemake)

from dnalm.qc.gate import gate_genomes

output = snakemake.output
gate_genomes(
    list(snakemake.input.genomes),
    output.summary,
    output.pretrain,
    output.thresholds,
    thresholds=snakemake.params.thresholds,
    busco_skipped=snakemake.params.busco_skipped,
)
