# Genome QC of every configured species and the gate that admits genomes to language-model pretraining.
# Measures and thresholds: docs/genome-qc.md; the package: workflow/scripts/dnalm/qc/.


# Downloads need the internet (often missing on compute nodes); the Mash matrix and the gate take seconds.
localrules:
    download_proteins,
    compare_genomes,
    gate_genomes,


rule download_proteins:
    output:
        fasta="resources/{species}/proteins.fa",
        fai="resources/{species}/proteins.fa.fai",
        info="resources/{species}/proteins.json",
    log:
        "logs/download_proteins/{species}.log",
    conda:
        "../../envs/base.yaml"
    params:
        kind="genome",  # a protein FASTA is fetched, checked and written like a genome, without renaming
        source=get_source("proteins"),
        md5=get_md5("proteins"),
        aliases={},
        repo=REPO,
    script:
        "../scripts/download.py"


rule sketch_genome:
    input:
        fasta="resources/{species}/genome.fa",
    output:
        sketch="results/qc/mash/{species}.msh",
    log:
        "logs/sketch_genome/{species}.log",
    conda:
        "../../envs/qc.yaml"
    params:
        mash=config["qc"]["mash"],
    script:
        "../scripts/sketch_genome.py"


rule run_busco:
    input:
        sequences=get_busco_sequences,
    output:
        scores="results/qc/busco/{species}.json",
    log:
        "logs/run_busco/{species}.log",
    conda:
        "../../envs/qc.yaml"
    threads: 4
    resources:
        mem_mb=grow_on_retry(8000),
        runtime=grow_on_retry(480),
    params:
        busco=get_busco_params,
        workdir="results/qc/busco/{species}",
    script:
        "../scripts/run_busco.py"


rule assess_genome:
    input:
        unpack(get_qc_inputs),
    output:
        qc="results/qc/{species}.json",
    log:
        "logs/assess_genome/{species}.log",
    conda:
        "../../envs/qc.yaml"
    resources:
        mem_mb=grow_on_retry(4000),
    params:
        qc=get_qc_params,
    script:
        "../scripts/assess_genome.py"


rule compare_genomes:
    input:
        sketches=get_qc_sketches,
    output:
        matrix=report(
            "results/qc/mash_distances.tsv",
            caption="../report/qc_mash.rst",
            category="Genome QC",
        ),
    log:
        "logs/compare_genomes/compare_genomes.log",
    conda:
        "../../envs/qc.yaml"
    params:
        species=get_qc_species,
    script:
        "../scripts/compare_genomes.py"


rule gate_genomes:
    input:
        genomes=get_qc_genomes,
    output:
        summary=report(
            "results/qc/summary.tsv",
            caption="../report/qc_summary.rst",
            category="Genome QC",
        ),
        thresholds="results/qc/thresholds.tsv",
        pretrain="results/qc/pretrain_genomes.txt",
    log:
        "logs/gate_genomes/gate_genomes.log",
    conda:
        "../../envs/qc.yaml"
    params:
        thresholds=config["qc"]["thresholds"],
        busco_skipped=config["qc"]["busco"]["lineage"] is None,
    script:
        "../scripts/gate_genomes.py"
