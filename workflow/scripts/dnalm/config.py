"""The workflow's config: schema validation with defaults, cross-checks, sweep × seed runs, derived settings.

`workflow/rules/common.smk` calls these on the `config` Snakemake loaded; everything here is plain Python on plain
dicts, so it is unit-tested directly. The schema (`workflow/schemas/config.schema.yaml`) is the only source of
defaults: `validate` fills them in, and every function below reads a validated config.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dnalm import tasks
from dnalm.config_conservation import (  # noqa: F401 (conservation_jobs, counterfactual_species: for the rules)
    check_conservation,
    check_counterfactual,
    conservation_jobs,
    counterfactual_species,
)
from dnalm.schema import SCHEMA, load_schema, pretrain_block

SPLITS = ("train", "val", "test")
#: A run id: a model id, then `~<label><value>` per swept key and `~seed<N>` for repeated seeds.
RUN_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*(~[A-Za-z0-9_.+-]+)*")


# ------------------------------------------------------------------------------------------------------ validation
def validate(cfg: dict, schema_path: str | Path = SCHEMA) -> dict:
    """Check `cfg` against the schema, listing every problem as `dotted.key: message`; fill in defaults in place.

    Raises:
        ValueError: Naming the schema file and every key that does not fit.
    """
    from snakemake.utils import validate as fill_defaults

    schema = load_schema(schema_path)
    errors = jsonschema.Draft202012Validator(schema).iter_errors(cfg)
    lines = sorted(f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors)
    if lines:
        raise ValueError(f"the config does not match {schema_path} (keys are documented there and in "
                         "config/README.md):\n" + "\n".join(lines))
    fill_defaults(cfg, schema=str(schema_path), set_default=True)
    for spec in cfg.get("pretrain", {}).values():  # defaults that depend on the arch
        spec.update(pretrain_block(spec))
    return cfg


class _UniqueKeys(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in one block (YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue  # `<<:` merges may be overridden by the block's own keys
            key = key_node.value
            if key in seen:
                raise ValueError(f"{self.name}, line {key_node.start_mark.line + 1}: key {key!r} is written twice in "
                                 f"the same block (first on line {seen[key]}); YAML would silently keep only the "
                                 "last one: merge the two")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def check_config_files(paths: list[str]) -> None:
    """Each config file the run reads is YAML without a key written twice in one block (errors name file and line)."""
    for path in dict.fromkeys(map(str, paths)):
        with open(path) as handle:
            loader = _UniqueKeys(handle)
            loader.name = path
            try:
                loader.get_single_data()
            finally:
                loader.dispose()


def with_defaults(cfg: dict) -> dict:
    """A validated deep copy of `cfg` with every default filled in (for tests and scripts)."""
    return validate(copy.deepcopy(cfg))


def resolve_path(name: str, repo: str | Path) -> str | None:
    """An existing path for `name`: absolute as given, else in the working directory, then in the repository."""
    candidates = [name] if os.path.isabs(name) else [name, os.path.join(repo, name)]
    found = [c for c in candidates if os.path.exists(c)]
    return os.path.abspath(found[0]) if found else None


# ------------------------------------------------------------------------------------------------------ cross-checks
def check(cfg: dict, repo: str | Path, schema_path: str | Path = SCHEMA) -> None:
    """Every cross-check the schema cannot express; each error names the dotted key and what to do."""
    check_species(cfg)
    check_tasks(cfg)
    check_models(cfg, repo)
    check_sweeps(cfg, load_schema(schema_path))
    check_interpret(cfg, repo)
    check_conservation(cfg)
    check_counterfactual(cfg)
    busco_lineage(cfg, repo)


def check_species(cfg: dict) -> None:
    """One reference at most; Mash references exist; BUSCO proteins mode has proteins."""
    references = [s for s, spec in cfg["species"].items() if spec["reference"]]
    if len(references) > 1:
        raise ValueError(f"species {references} are all marked reference: true; mark one")
    for species, spec in cfg["species"].items():
        reference = spec["qc_reference"]
        if reference is not None and reference not in cfg["species"]:
            raise ValueError(f"species.{species}.qc_reference: {reference!r} is not under species "
                             f"(known: {sorted(cfg['species'])})")
        if cfg["qc"]["busco"]["lineage"] is not None and busco_mode(cfg, species) == "proteins" \
                and spec["proteins"] is None:
            raise ValueError(f"species.{species}.proteins: qc.busco.mode is proteins, but species {species} has "
                             "no proteins FASTA")


def check_tasks(cfg: dict) -> None:
    """Species, tracks, split and extra species of every task, then its task type's own checks."""
    for task, spec in cfg["tasks"].items():
        if spec["species"] not in cfg["species"]:
            raise ValueError(f"tasks.{task}.species: {spec['species']!r} is not under species "
                             f"(known: {sorted(cfg['species'])})")
        tracks = cfg["species"][spec["species"]]["tracks"]
        for target in spec["targets"]:
            for key in ("plus", "minus", "track"):
                if key in target and target[key] not in tracks:
                    raise ValueError(f"tasks.{task}.targets ({target['name']}).{key}: track {target[key]!r} is "
                                     f"not under species.{spec['species']}.tracks (known: {sorted(tracks)})")
        _check_labelled(task, spec)
        _check_holdout(task, spec)
        _check_folds(task, spec)
        _check_extra_species(cfg, task, spec)
        tasks.get(spec["type"]).check(task, spec, cfg)


def _check_labelled(task: str, spec: dict) -> None:
    """Examples, random and given splits belong to classification tasks."""
    if spec["type"] == "classification":
        return
    if spec.get("examples"):
        raise ValueError(f"tasks.{task}.examples: only classification tasks read labelled examples; set "
                         f"tasks.{task}.type: classification or remove examples")
    for mode in ("random", "given"):
        if mode in spec["split"]:
            raise ValueError(f"tasks.{task}.split.{mode}: only for classification tasks; {spec['type']} tasks are "
                             "split by chromosomes or folds")


def _check_holdout(task: str, spec: dict) -> None:
    """No chromosome is in two of a chromosome holdout's splits."""
    chroms = spec["split"].get("chromosomes")
    if chroms is None:
        return
    seen: dict[str, str] = {}
    for split in SPLITS:
        for name in chroms[split] or []:
            if name in seen:
                raise ValueError(f"tasks.{task}.split.chromosomes: chromosome {name!r} is in both {seen[name]} and "
                                 f"{split}; list each chromosome in one split")
            seen[name] = split


def _check_folds(task: str, spec: dict) -> None:
    folds = spec["split"].get("folds")
    if folds is None or folds["val"] is None or folds["test"] is None:
        return  # cross-validated: dnalm.crossfold.expand_folds makes the fold choices (and checks val/test given)
    for key in ("val", "test"):
        if folds[key] >= folds["k"]:
            raise ValueError(f"tasks.{task}.split.folds.{key}: fold {folds[key]} does not exist with k = "
                             f"{folds['k']} (folds are numbered 0 to {folds['k'] - 1})")
    if folds["val"] == folds["test"]:
        raise ValueError(f"tasks.{task}.split.folds: val and test are both fold {folds['val']}; choose two "
                         "different folds")


def _check_extra_species(cfg: dict, task: str, spec: dict) -> None:
    names = task_track_names(spec)
    for species in spec["extra_train_species"]:
        if species not in cfg["species"]:
            raise ValueError(f"tasks.{task}.extra_train_species: {species!r} is not under species "
                             f"(known: {sorted(cfg['species'])})")
        if species == spec["species"]:
            raise ValueError(f"tasks.{task}.extra_train_species: {species!r} is the task's own species")
        missing = sorted(set(names) - set(cfg["species"][species]["tracks"]))
        if missing:
            raise ValueError(f"tasks.{task}.extra_train_species: species {species!r} lacks the task's tracks "
                             f"{missing} (add them under species.{species}.tracks with the same names)")


def check_models(cfg: dict, repo: str | Path) -> None:
    """Tasks of every model exist and fit it (jitter within the flank); LM backbones and pretraining corpora exist."""
    for name, spec in cfg["pretrain"].items():
        for species in spec["corpus"] or []:
            if species not in cfg["species"]:
                raise ValueError(f"pretrain.{name}.corpus: {species!r} is not under species "
                                 f"(known: {sorted(cfg['species'])})")
    for model, spec in cfg["models"].items():
        for task in spec["tasks"]:
            if task not in cfg["tasks"]:
                raise ValueError(f"models.{model}.tasks: {task!r} is not under tasks (known: {sorted(cfg['tasks'])})")
        for task in model_tasks(cfg, model):
            flank = cfg["tasks"][task]["window"]["flank"]
            if spec["train"]["jitter"] > flank:
                raise ValueError(f"models.{model}.train.jitter ({spec['train']['jitter']}) exceeds "
                                 f"tasks.{task}.window.flank ({flank})")
        if spec["arch"] in ("lm", "unet", "enbed"):
            _check_backbone(cfg, model, repo)


def _check_backbone(cfg: dict, model: str, repo: str | Path) -> None:
    """An LM's, U-Net's or enbed's backbone is a pretrain of its kind (bert, unet, enbed) or a directory; scratch
    needs none."""
    arch = cfg["models"][model]["arch"]
    block, where = cfg["models"][model][arch], f"models.{model}.{arch}.backbone"
    if block["backbone"] is None and block["finetune"] != "scratch":
        raise ValueError(f"{where} is null: give a pretrain name ({sorted(cfg['pretrain'])}) or a local "
                         f"{'U-Net ' if arch == 'unet' else 'Hugging Face '}directory, or use finetune: scratch")
    pretrain = cfg["pretrain"].get(block["backbone"]) if block["backbone"] is not None else None
    wanted = {"lm": "bert"}.get(arch, arch)
    if pretrain is not None and pretrain["arch"] != wanted:
        raise ValueError(f"{where}: pretrain.{block['backbone']} is arch {pretrain['arch']}; an arch {arch} model "
                         f"needs a pretrain with arch: {wanted}")
    local = block["backbone"] is not None and pretrain is None
    if local and not os.path.isdir(backbone_dir(cfg, model, repo)):
        raise ValueError(f"{where}: {block['backbone']!r} is neither a pretrain name "
                         f"({sorted(cfg['pretrain'])}) nor a directory")
    if local and arch == "lm":
        _check_species_tokens(cfg, model, backbone_dir(cfg, model, repo))


def _check_species_tokens(cfg: dict, model: str, path: str) -> None:
    """Every configured species' token is a species token of a local backbone's vocabulary (the model reads the
    task species' token and swaps in the others for the counterfactual). A vocabulary without species tokens (the
    Nucleotide Transformer's, `nt6`) demands none: such a model reads no species token."""
    from dnalm import tokenize

    vocab = tokenize.load_vocab(path)
    if vocab is None:
        raise ValueError(f"models.{model}.lm.backbone: {path} has no tokenizer files (tokenizer.json or vocab.txt)")
    try:
        kind = tokenize.infer_kind(vocab)
    except ValueError as err:
        raise ValueError(f"models.{model}.lm.backbone: {path}: {err}") from err
    if not tokenize.has_species(kind):
        return
    known = set(tokenize.species_names(vocab))
    for species in cfg["species"]:
        token = species_token(cfg, species)
        if token.lower() not in known:
            raise ValueError(f"species.{species}.token: {token!r} is not a species token of models.{model}.lm.backbone "
                             f"({path}; it knows {len(known)}: {', '.join(sorted(known)[:8])}"
                             f"{' …' if len(known) > 8 else ''}); set the token to one of them")


def check_sweeps(cfg: dict, schema: dict) -> None:
    """Swept keys exist and every point fits the schema; run ids are unique and filesystem-safe."""
    model_schema = schema["properties"]["models"]["additionalProperties"]
    for model, spec in cfg["models"].items():
        for key in spec["sweep"]:
            _check_swept_key(model, spec, key)
        seen = set()
        for run in model_runs(cfg, model):
            resolved = apply_overrides(spec, run["overrides"], run["seed"])
            error = jsonschema.exceptions.best_match(
                jsonschema.Draft202012Validator(model_schema).iter_errors(resolved))
            if error is not None:
                path = ".".join(map(str, error.absolute_path))
                raise ValueError(f"models.{model}.sweep: point {run['point']} sets {path} to an invalid value: "
                                 f"{error.message}")
            if not RUN_ID.fullmatch(run["run"]) or run["run"] in seen:
                raise ValueError(f"models.{model}.sweep: run id {run['run']!r} is not unique or not "
                                 "filesystem-safe; use values of letters, digits, '.', '+', '-' and '_'")
            seen.add(run["run"])


def _check_swept_key(model: str, spec: dict, key: str) -> None:
    where = f"models.{model}.sweep.{key}"
    if key.split(".")[0] not in ("train", spec["arch"]):
        raise ValueError(f"{where}: model {model} is arch {spec['arch']}; sweep keys under {spec['arch']} or train")
    node = spec
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{where}: {part!r} is not a key of models.{model} (see config/README.md)")
        node = node[part]


def check_interpret(cfg: dict, repo: str | Path) -> None:
    """Interpreted models exist; `interpret.tracks` fits the interpreted tracks tasks; motif files exist and parse
    (errors name the file, key or line)."""
    from dnalm.motifs import read_motif_files

    for block in ("interpret", "variants", "prediction_tracks"):
        for model in cfg[block]["models"] or []:
            if model not in cfg["models"]:
                raise ValueError(f"{block}.models: {model!r} is not under models (known: {sorted(cfg['models'])})")
            trained = model_tasks(cfg, model)
            if trained and not any(tasks.get(cfg["tasks"][t]["type"]).interpretable for t in trained):
                raise ValueError(f"{block}.models: {model!r} trains only on tasks whose type has no attributions, "
                                 f"variant effects or prediction tracks ({', '.join(trained)}; "
                                 f"docs/seqerror.md); remove it from {block}.models")
    for task in dict.fromkeys(t for t, _ in interpret_pairs(cfg)):
        interpret_selection(cfg, task)
    if interpret_pairs(cfg):
        read_motif_files(motif_files(cfg, repo))


# ---------------------------------------------------------------------------------------------- species and tasks
def species_token(cfg: dict, species: str) -> str:
    """The species' token for language models (its id when `token` is not set)."""
    return cfg["species"][species]["token"] or species


def species_tokens(cfg: dict) -> list[str]:
    """Every configured species token, once each, in config order: the vocabulary of pretrained LMs."""
    return list(dict.fromkeys(species_token(cfg, s) for s in cfg["species"]))


def task_track_names(spec: dict) -> list[str]:
    """Track names of a task's targets, once each, in order."""
    names = [t[k] for t in spec["targets"] for k in ("plus", "minus", "track") if k in t]
    return list(dict.fromkeys(names))


def split_params(spec: dict) -> dict:
    """assign_splits' params of a task: its split mode's settings, max_windows and seed."""
    split = spec["split"]
    mode = next(m for m in ("folds", "random", "given", "chromosomes") if m in split)
    settings = dict(split["chromosomes"]) if mode == "chromosomes" else {mode: split[mode]}
    return {**settings, "max_windows": spec["max_windows"], "seed": spec["seed"]}


def task_fasta(cfg: dict, task: str) -> str:
    """The FASTA a task's own windows are cut from: its species' genome, or (classification) its examples' records."""
    spec = cfg["tasks"][task]
    if spec["type"] == "classification":
        return f"results/windows/{task}/examples.fa"
    return f"resources/{spec['species']}/genome.fa"


def task_genomes(cfg: dict, task: str) -> dict[str, str]:
    """Species id → FASTA of every genome feeding a task: its species (`task_fasta`), then its extra train species."""
    spec = cfg["tasks"][task]
    return {spec["species"]: task_fasta(cfg, task),
            **{s: f"resources/{s}/genome.fa" for s in spec["extra_train_species"]}}


def qc_reference(cfg: dict, species: str) -> str | None:
    """Species whose genome `species` is Mash-compared to: its qc_reference, else the reference species, else None."""
    if cfg["species"][species]["qc_reference"] is not None:
        return cfg["species"][species]["qc_reference"]
    references = [s for s, v in cfg["species"].items() if v["reference"]]
    return references[0] if references else None


def qc_inputs(cfg: dict, species: str) -> dict[str, str]:
    """Files the QC of a genome reads: genome, Mash sketches (own and reference), annotation and BUSCO scores when
    configured."""
    inputs = {"fasta": f"resources/{species}/genome.fa", "sketch": f"results/qc/mash/{species}.msh"}
    reference = qc_reference(cfg, species)
    if reference is not None:
        inputs["reference_sketch"] = f"results/qc/mash/{reference}.msh"
    if cfg["species"][species]["annotation"] is not None:
        inputs["annotation"] = f"resources/{species}/annotation.gff3"
    if cfg["qc"]["busco"]["lineage"] is not None:
        inputs["busco"] = f"results/qc/busco/{species}.json"
    return inputs


def qc_params(cfg: dict, species: str) -> dict:
    """Settings of one genome's QC (rule assess_genome): its Mash reference, Mash, repeats and the gene window."""
    qc = cfg["qc"]
    return {"species": species, "reference": qc_reference(cfg, species), "mash": dict(qc["mash"]),
            "repeat_method": qc["repeats"]["method"],
            "min_interspersed_length": qc["repeats"]["min_interspersed_length"], "window": qc["gene_window"]}


def busco_params(cfg: dict, species: str, repo: str | Path) -> dict:
    """Settings of one genome's BUSCO run: the lineage directory, the mode and Augustus' species."""
    return {"lineage": busco_lineage(cfg, repo), "mode": busco_mode(cfg, species),
            "augustus_species": cfg["qc"]["busco"]["augustus_species"]}


def busco_mode(cfg: dict, species: str) -> str:
    """BUSCO mode of a species: qc.busco.mode, with auto = proteins when the species has a proteins FASTA."""
    mode = cfg["qc"]["busco"]["mode"]
    if mode == "auto":
        return "genome" if cfg["species"][species]["proteins"] is None else "proteins"
    return mode


def busco_lineage(cfg: dict, repo: str | Path) -> str | None:
    """Absolute path of qc.busco.lineage (the working directory first, then the repository), or None."""
    lineage = cfg["qc"]["busco"]["lineage"]
    if lineage is None:
        return None
    found = resolve_path(lineage, repo)
    if found is None or not os.path.isdir(found):
        tried = [lineage] if os.path.isabs(lineage) else [os.path.abspath(lineage), os.path.join(repo, lineage)]
        raise ValueError(f"qc.busco.lineage: directory {lineage!r} not found (tried {', '.join(tried)}); set it to "
                         "a local *_odb10 lineage directory, or null to skip BUSCO")
    return found


# ------------------------------------------------------------------------------------------------ sweeps and seeds
def format_sweep_value(value: Any) -> str:
    """A swept value as it appears in run ids: numbers as written, lists joined with '-', booleans lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "-".join(format_sweep_value(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def sweep_labels(keys: list[str]) -> dict[str, str]:
    """Short names of swept keys in run ids: the dotted key's last part, or all of it ('.' → '_') when two swept
    keys share their last part."""
    last = [key.split(".")[-1] for key in keys]
    return {key: name if last.count(name) == 1 else key.replace(".", "_") for key, name in zip(keys, last, strict=True)}


def sweep_points(cfg: dict, model: str) -> list[tuple[str, dict]]:
    """(point id, {dotted key: value}) for every point of a model's sweep grid; the model id alone without a sweep.

    A point id is the model id followed by `~<label><value>` per swept key, with a `_` between label and value when
    the value is not a number: lm_lora_conv~dropout0.3~lr0.001, lm~head_bpnet.
    """
    sweep = cfg["models"][model]["sweep"]
    labels = sweep_labels(list(sweep))
    points = []
    for values in itertools.product(*sweep.values()):
        name = model
        for key, value in zip(sweep, values, strict=True):
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            name += f"~{labels[key]}{'' if numeric else '_'}{format_sweep_value(value)}"
        points.append((name, dict(zip(sweep, values, strict=True))))
    return points


def model_runs(cfg: dict, model: str) -> list[dict]:
    """Training runs of a model: one per sweep point and seed of `seeds` (id suffix `~seed<N>`), or one per point
    with the model's `seed` when `seeds` is null. Dicts: run, point, model, seed, overrides."""
    seeds = cfg["models"][model]["seeds"]
    runs = []
    for point, overrides in sweep_points(cfg, model):
        for seed in seeds if seeds is not None else [cfg["models"][model]["seed"]]:
            run = f"{point}~seed{seed}" if seeds is not None else point
            runs.append({"run": run, "point": point, "model": model, "seed": seed, "overrides": overrides})
    return runs


def find_run(cfg: dict, run: str) -> dict:
    """The run dict of a run id (see `model_runs`)."""
    model = run.split("~")[0]
    if model not in cfg["models"]:
        raise ValueError(f"{run!r} is not a run of a configured model")
    for candidate in model_runs(cfg, model):
        if candidate["run"] == run:
            return candidate
    raise ValueError(f"{run!r} is not a run of models.{model} (its sweep and seeds)")


def apply_overrides(spec: dict, overrides: dict, seed: int) -> dict:
    """A model's config with swept values (dotted keys) and the run's seed in place of its own."""
    out = copy.deepcopy(spec)
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node[part]
        node[last] = copy.deepcopy(value)
    out["seed"] = seed
    return out


def run_spec(cfg: dict, run: str) -> dict:
    """The model config of a run id: its model's config with the point's values and the run's seed."""
    if run in cfg["models"]:
        return cfg["models"][run]
    info = find_run(cfg, run)
    return apply_overrides(cfg["models"][info["model"]], info["overrides"], info["seed"])


def model_tasks(cfg: dict, model: str) -> list[str]:
    """Tasks a model trains on: its `tasks`, or every task."""
    return cfg["models"][model]["tasks"] or list(cfg["tasks"])


def task_runs(cfg: dict, task: str) -> list[dict]:
    """Run dicts of every model trained on a task, in config order."""
    return [r for m in cfg["models"] if task in model_tasks(cfg, m) for r in model_runs(cfg, m)]


def sweep_tables(cfg: dict) -> list[tuple[str, str]]:
    """(task, model) of every model with a sweep, per task it trains on."""
    return [(t, m) for m, spec in cfg["models"].items() if spec["sweep"] for t in model_tasks(cfg, m)]


# ------------------------------------------------------------------------------------------------ language models
def backbone_dir(cfg: dict, run: str, repo: str | Path) -> str | None:
    """Backbone directory of an LM or U-Net run: results/pretrain/<name> for a pretrain name, else the configured
    path (the working directory first, then the repository)."""
    spec = run_spec(cfg, run)
    backbone = spec[spec["arch"]]["backbone"]
    if backbone in cfg["pretrain"]:
        return f"results/pretrain/{backbone}"
    if backbone is None or os.path.isabs(backbone) or os.path.exists(backbone):
        return backbone
    return str(Path(repo) / backbone)


def pretrain_genomes(cfg: dict, lm: str) -> list[dict]:
    """Per candidate genome of a corpus: species token, FASTA, index, chromosomes never trained on, validation ones.

    The candidates are `pretrain.<lm>.corpus`, or every species (the QC gate chooses). Chromosome-holdout tasks'
    val and test chromosomes are excluded; fold tasks' held-out folds are excluded by rule pretrain_homology.
    """
    genomes = []
    for species in cfg["pretrain"][lm]["corpus"] or list(cfg["species"]):
        held_out, val = set(), set()
        for task in cfg["tasks"].values():
            if task["species"] == species and "chromosomes" in task["split"]:
                chroms = task["split"]["chromosomes"]
                held_out.update(chroms["val"] + chroms["test"])
                val.update(chroms["val"])
        genomes.append({"id": species, "species": species_token(cfg, species),
                        "fasta": f"resources/{species}/genome.fa", "fai": f"resources/{species}/genome.fa.fai",
                        "exclude": sorted(held_out), "val": sorted(val)})
    return genomes


def held_out_windows(cfg: dict) -> dict[str, dict]:
    """Per task, what the pretraining corpus must not overlap: its species, genome and filtered windows, and (fold
    tasks) the fold layout and the val and test folds."""
    out = {}
    for task, spec in cfg["tasks"].items():
        folds = spec["split"].get("folds")
        out[task] = {"species": spec["species"], "fasta": task_fasta(cfg, task),
                     "windows": f"results/windows/{task}/windows.tsv",
                     "folds": f"results/splits/{spec.get('fold_group', task)}/folds.tsv" if folds else None,
                     "held_out_folds": [folds["val"], folds["test"]] if folds else []}
    return out


# -------------------------------------------------------------------------------------------------- interpretation
def interpret_models(cfg: dict) -> list[str]:
    """Models to interpret: interpret.models, or every model when it is null."""
    models = cfg["interpret"]["models"]
    return list(cfg["models"]) if models is None else models


def interpret_pairs(cfg: dict) -> list[tuple[str, str]]:
    """(task, model) pairs to interpret: each interpreted model on every task it trains on (of a cross-validated
    task, the first fold's) whose type has attributions (`TaskType.interpretable`)."""
    return [(t, m) for m in interpret_models(cfg) for t in model_tasks(cfg, m) if cfg["tasks"][t].get("fold", 0) == 0
            and tasks.get(cfg["tasks"][t]["type"]).interpretable]


def interpret_outputs(cfg: dict, task: str) -> list[str]:
    """The outputs attributions of a task explain: its task type's (classification: class), else interpret.outputs."""
    fixed = tasks.get(cfg["tasks"][task]["type"]).attribution_outputs
    return list(fixed) if fixed is not None else list(cfg["interpret"]["outputs"])


def interpret_selection(cfg: dict, task: str) -> dict | None:
    """What the task's attribution outputs select (tracks tasks: `interpret.tracks` as channels and bins)."""
    spec = cfg["tasks"][task]
    return tasks.get(spec["type"]).attribution_selection(task, spec, cfg["interpret"])


def motif_files(cfg: dict, repo: str | Path) -> list[str]:
    """Absolute paths of interpret.motifs (the working directory first, then the repository)."""
    paths = []
    for i, name in enumerate(cfg["interpret"]["motifs"]):
        found = resolve_path(name, repo)
        if found is None or not os.path.isfile(found):
            tried = [name] if os.path.isabs(name) else [name, os.path.join(repo, name)]
            raise ValueError(f"interpret.motifs[{i}]: MEME file {name!r} not found (tried {', '.join(tried)})")
        paths.append(found)
    return paths
