# Downloads run on the host that runs Snakemake, not as cluster jobs: compute nodes often have no internet access.
localrules:
    download_genome,
    download_annotation,
    download_track,
    download_variants,


rule download_genome:
    output:
        fasta="resources/{species}/genome.fa",
        fai="resources/{species}/genome.fa.fai",
        info="resources/{species}/genome.json",
    log:
        "logs/download/{species}/genome.log",
    conda:
        "../../envs/base.yaml"
    params:
        kind="genome",
        source=get_source("genome"),
        md5=get_md5("genome"),
        aliases=get_aliases,
        repo=REPO,
    script:
        "../scripts/download.py"


rule download_annotation:
    output:
        gff="resources/{species}/annotation.gff3",
        info="resources/{species}/annotation.json",
    log:
        "logs/download/{species}/annotation.log",
    conda:
        "../../envs/base.yaml"
    params:
        kind="annotation",
        source=get_source("annotation"),
        md5=get_md5("annotation"),
        aliases=get_aliases,
        repo=REPO,
    script:
        "../scripts/download.py"


rule download_track:
    input:
        fai="resources/{species}/genome.fa.fai",
    output:
        bw="resources/{species}/tracks/{track}.bw",
        info="resources/{species}/tracks/{track}.json",
    log:
        "logs/download/{species}/tracks/{track}.log",
    conda:
        "../../envs/base.yaml"
    params:
        kind="track",
        source=get_source("track"),
        md5=get_md5("track"),
        aliases=get_aliases,
        track_lengths=get_track_lengths,
        repo=REPO,
    script:
        "../scripts/download.py"


rule download_variants:
    input:
        fasta="resources/{species}/genome.fa",
        fai="resources/{species}/genome.fa.fai",
    output:
        tsv="resources/{species}/variants/{vcf}.tsv",
        info="resources/{species}/variants/{vcf}.json",
    log:
        "logs/download/{species}/variants/{vcf}.log",
    conda:
        "../../envs/base.yaml"
    params:
        kind="variants",
        source=get_source("variants"),
        md5=get_md5("variants"),
        aliases=get_aliases,
        repo=REPO,
    script:
        "../scripts/download.py"
