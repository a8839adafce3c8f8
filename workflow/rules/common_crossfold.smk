# Input functions of the rules across folds and runs (rules/crossfold.smk): the fold ensemble of a cross-validated
# task's fold, the cross-fold table of its group, and the pretrained-against-scratch table (dnalm.crossfold).


def get_ensemble_members(wildcards):
    """The fold ensemble's checkpoints: the fold task's own run and that of the fold task validating on its test
    fold."""
    return dnalm.crossfold.ensemble_members(config, wildcards.task, wildcards.model)


def _unit_tasks(wildcards):
    units = dnalm.crossfold.comparison_units(config)
    if wildcards.task not in units:
        raise ValueError(
            f"{wildcards.task!r} is neither a task nor a cross-validated task"
        )
    return units[wildcards.task]


def _ensembled(task):
    """Whether a fold task gets a fold ensemble (`TaskType.fold_ensemble`)."""
    spec = config["tasks"][task]
    return "fold_group" in spec and tasks.get(spec["type"]).fold_ensemble


def get_cross_fold_inputs(wildcards):
    """Every fold task's runs.tsv and (profile and tracks tasks) each run's fold-ensemble metrics."""
    members = _unit_tasks(wildcards)
    ensembles = [
        f"results/eval/{t}/{r['run']}/ensemble.json" for t, r in _ensemble_runs(members)
    ]
    return {
        "runs": [f"results/eval/{t}/runs.tsv" for t in members],
        "ensembles": ensembles,
    }


def _ensemble_runs(members):
    return [
        (t, r)
        for t in members
        if _ensembled(t)
        for r in dnalm.config.task_runs(config, t)
    ]


def get_ensemble_folds(wildcards):
    """The fold of each fold-ensemble input of cross_fold, in order."""
    return [
        config["tasks"][t]["fold"] for t, _ in _ensemble_runs(_unit_tasks(wildcards))
    ]


def get_unit_runs(wildcards):
    """runs.tsv of every task of the unit (a group's fold tasks, or the task)."""
    return get_cross_fold_inputs(wildcards)["runs"]


def get_unit_folds(wildcards):
    """Each fold task's fold number, in the order of its inputs (None: not cross-validated)."""
    return [config["tasks"][t].get("fold") for t in _unit_tasks(wildcards)]


def get_pretraining_pairs(wildcards):
    return dnalm.crossfold.pretraining_pairs(config, _unit_tasks(wildcards)[0])
