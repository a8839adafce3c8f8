"""Snakemake entry script for rule report: write results/report.html."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821

from dnalm.report import write_report  # noqa: E402

write_report(
    snakemake.output.html,  # noqa: F821
    inputs=snakemake.input.inputs,  # noqa: F821
    splits=snakemake.input.splits,  # noqa: F821
    histories=snakemake.input.histories,  # noqa: F821
    model_infos=snakemake.input.model_infos,  # noqa: F821
    comparisons=snakemake.input.comparisons,  # noqa: F821
    predictions=snakemake.input.predictions,  # noqa: F821
    n_examples=snakemake.params.n_examples,  # noqa: F821
    qc=snakemake.input.qc,  # noqa: F821
    pretrain_histories=snakemake.input.pretrain_histories,  # noqa: F821
    pretrain_summaries=snakemake.input.pretrain_summaries,  # noqa: F821
    counterfactuals=snakemake.input.counterfactuals,  # noqa: F821
    homology=snakemake.input.homology,  # noqa: F821
    pretrain_homology=snakemake.input.pretrain_homology,  # noqa: F821
    sweeps=snakemake.input.sweeps,  # noqa: F821
    interpretations=snakemake.input.interpretations,  # noqa: F821
    interpret_examples=snakemake.params.interpret_examples,  # noqa: F821
)
