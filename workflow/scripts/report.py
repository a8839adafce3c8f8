"""Snakemake entry script for rule report: write results/report.html from the report manifest."""

from dnalm.jobs import start

start(snakemake)

from dnalm.report import write_report

files: dict[str, list[str]] = {}
for record in snakemake.params.manifest:
    files.setdefault(record["kind"], []).append(record["path"])
write_report(
    snakemake.output.html,
    inputs=files.get("input", []),
    splits=files.get("split_counts", []),
    histories=files.get("history", []),
    model_infos=files.get("model_info", []),
    comparisons=files.get("comparison", []),
    predictions=files.get("prediction", []),
    n_examples=snakemake.params.n_examples,
    qc=[*files.get("qc_genome", []), *files.get("qc_summary", []), *files.get("qc_thresholds", []),
        *files.get("qc_mash_distances", [])],
    pretrain_histories=files.get("pretrain_history", []),
    pretrain_summaries=files.get("pretrain_summary", []),
    counterfactuals=files.get("counterfactual", []),
    homology=files.get("homology_summary", []),
    pretrain_homology=files.get("pretrain_homology", []),
    sweeps=files.get("sweep", []),
    interpretations=[*files.get("attributions", []), *files.get("motifs", []), *files.get("modisco", [])],
    interpret_examples=snakemake.params.interpret_examples,
)
