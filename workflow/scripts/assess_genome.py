"""Snakemake entry script for rule assess_genome: the QC measures of one genome (results/qc/<species>.json)."""

from dnalm.jobs import start

start(snakemake)

from dnalm.qc.gate import assess_genome

inputs = snakemake.input
assess_genome(
    fasta=inputs.fasta,
    out=snakemake.output.qc,
    annotation=inputs.get("annotation"),
    sketch=inputs.sketch,
    reference_sketch=inputs.get("reference_sketch"),
    busco=inputs.get("busco"),
    **snakemake.params.qc,
)
