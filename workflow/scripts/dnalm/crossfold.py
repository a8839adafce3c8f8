"""Cross-validation over k genome folds: one config task becomes k fold tasks, and their results one table.

A task whose `split.folds` gives neither `val` nor `test` is cross-validated, as study 2 and Borzoi's
`hound_train_folds` do: fold task `<task>_fold<i>` tests on fold i and validates on fold i + 1 (mod k), so every fold
is test once and validation once. `expand_folds` rewrites the config in place right after validation (the Snakefile
calls it; every rule and script then sees ordinary tasks); the steps that do not depend on the fold choice (the fold
layout, candidate windows) are made once per group, under the group's name (`layout_task`).

The summaries (rule `cross_fold`, `summarize_folds`): per model and metric, the mean over folds (seeds averaged within
a fold first) with a 95% Student-t interval over the k fold means; and the fold ensemble: each fold's test windows
predicted by the mean of the models that never trained on them (the fold's own model, and the one that validated on it).
"""

from __future__ import annotations

import copy

#: A fold task's id is its group's id, this suffix and the fold number.
FOLD_SUFFIX = "_fold"


# ------------------------------------------------------------------------------------------------------ config side
def is_cross_validated(spec: dict) -> bool:
    """Whether a task's split is k-fold cross-validation (folds with neither val nor test given)."""
    folds = spec.get("split", {}).get("folds")
    return folds is not None and folds.get("val") is None and folds.get("test") is None


def fold_choice(i: int, k: int) -> dict:
    """The val and test folds of fold task i of k: test fold i, validation fold i + 1 (mod k)."""
    return {"val": (i + 1) % k, "test": i}


def expand_folds(cfg: dict) -> dict[str, list[str]]:
    """Replace every cross-validated task by its k fold tasks, in place, and point models at them.

    Fold task `<task>_fold<i>` is the task's block with `split.folds.val`/`test` from `fold_choice`, plus
    `fold_group` (the task id) and `fold` (i). A model's `tasks` naming the group names its fold tasks instead.
    Calling it again on an expanded config changes nothing.

    Raises:
        ValueError: Only one of val and test is given, or a fold task's id is already a task.

    Returns:
        Group id → its fold task ids (empty when no task is cross-validated).
    """
    expanded, groups = {}, {}
    for task, spec in cfg["tasks"].items():
        folds = spec["split"].get("folds")
        if folds is not None and (folds.get("val") is None) != (folds.get("test") is None):
            given = "val" if folds.get("val") is not None else "test"
            raise ValueError(f"tasks.{task}.split.folds.{given} is given without "
                             f"{'test' if given == 'val' else 'val'}: give both for one fold choice, or neither to "
                             "cross-validate over all k folds")
        if not is_cross_validated(spec):
            expanded[task] = spec
            continue
        groups[task] = []
        for i in range(folds["k"]):
            fold_task = f"{task}{FOLD_SUFFIX}{i}"
            if fold_task in cfg["tasks"]:
                raise ValueError(f"tasks.{fold_task}: this id is fold {i} of cross-validated task {task!r}; rename "
                                 "the task")
            block = copy.deepcopy(spec)
            block["split"]["folds"].update(fold_choice(i, folds["k"]))
            expanded[fold_task] = {**block, "fold_group": task, "fold": i}
            groups[task].append(fold_task)
    cfg["tasks"] = expanded
    for spec in cfg["models"].values():
        spec["tasks"] = [t for task in spec["tasks"] for t in groups.get(task, [task])]
    return groups


def fold_groups(cfg: dict) -> dict[str, list[str]]:
    """Group id → fold task ids, in fold order, of an expanded config."""
    groups: dict[str, list[str]] = {}
    for task, spec in cfg["tasks"].items():
        if "fold_group" in spec:
            groups.setdefault(spec["fold_group"], []).append(task)
    return groups


def layout_task(cfg: dict, task: str) -> str:
    """The task id under which a task's fold layout and candidate windows are made: its group's, else its own."""
    spec = cfg["tasks"].get(task)
    return spec.get("fold_group", task) if spec is not None else task


def task_spec(cfg: dict, task: str) -> dict:
    """A task's config block; for a group id, its first fold task's (they share everything but the fold choice).

    Raises:
        KeyError: Neither a task nor a group.
    """
    if task in cfg["tasks"]:
        return cfg["tasks"][task]
    members = fold_groups(cfg).get(task)
    if not members:
        raise KeyError(f"{task!r} is neither a task nor a cross-validated task's group")
    return cfg["tasks"][members[0]]


def comparison_units(cfg: dict) -> dict[str, list[str]]:
    """What tables across runs summarise: each cross-validated group (its fold tasks) and each other task (itself)."""
    units: dict[str, list[str]] = {}
    for task, spec in cfg["tasks"].items():
        units.setdefault(spec.get("fold_group", task), []).append(task)
    return units


def pretraining_pairs(cfg: dict, task: str) -> list[tuple[str, str]]:
    """(pretrained, scratch) model pairs on a task: language models (arch lm, same backbone, tokenizer and head),
    U-Nets or enbed encoders (arch unet or enbed, same backbone), one fine-tuned from the pretrained weights (lora,
    frozen or full), the other `finetune: scratch`; unswept models."""
    from dnalm.config import model_tasks

    def same(model: str) -> tuple:
        arch = cfg["models"][model]["arch"]
        block = cfg["models"][model][arch]
        return (arch, block["backbone"], block["tokenizer"], block["head"]) if arch == "lm" else (arch, block["backbone"])

    lms = [m for m, spec in cfg["models"].items()
           if spec["arch"] in ("lm", "unet", "enbed") and not spec["sweep"] and task in model_tasks(cfg, m)]
    mode = {m: cfg["models"][m][cfg["models"][m]["arch"]]["finetune"] for m in lms}
    return [(p, s) for s in lms if mode[s] == "scratch" for p in lms if mode[p] != "scratch" and same(p) == same(s)]


def ensemble_members(cfg: dict, task: str, run: str) -> list[str]:
    """Checkpoints of the fold ensemble on a fold task's test windows: the models that never trained on its test fold
    (its own run, and the run of the fold task that validated on that fold)."""
    spec = cfg["tasks"][task]
    members = fold_groups(cfg)[spec["fold_group"]]
    previous = members[(spec["fold"] - 1) % len(members)]
    return [f"results/models/{t}/{run}/best.ckpt" for t in (task, previous)]
