# Input functions of the classification rules (rules/classification.smk); every other rule's are in common.smk.


def get_test_set(wildcards):
    return get_task(wildcards)["test_sets"][wildcards.test_set]


def get_test_set_inputs(wildcards):
    """make_test_set's inputs: the task's filtered windows and example records, and the genome for intervals."""
    genome = get_genome(wildcards) if get_test_set(wildcards).get("intervals") else {}
    return {
        "windows": f"results/windows/{wildcards.task}/windows.tsv",
        "examples": f"results/windows/{wildcards.task}/examples.fa",
        **genome,
    }


def get_test_set_species(wildcards):
    return {get_task(wildcards)["species"]: {}}


def get_test_set_store(prefix=""):
    """Input function: the three files of a test set's window store, keys prefixed."""

    def store(wildcards):
        base = f"results/windows/{wildcards.task}/test_sets/{wildcards.test_set}"
        files = {"seq": f"{base}.seq.npy", "targets": f"{base}.targets.npy"}
        return {prefix + k: v for k, v in {**files, "meta": f"{base}.json"}.items()}

    return store


def get_test_set_metrics(wildcards):
    return [
        f"results/eval/{wildcards.task}/{r['run']}/test_sets/{wildcards.test_set}/metrics.json"
        for r in dnalm.config.task_runs(config, wildcards.task)
    ]
