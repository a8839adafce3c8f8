"""Tests for dnalm.config: schema validation, cross-checks that name the dotted key, sweep × seed runs, the
pretraining corpus' held-out chromosomes and the report manifest — on the demo config, without Snakemake."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from dnalm import config as dc
from dnalm.outputs import final_outputs, report_manifest

REPO = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def edited(*edits: tuple[list[str], object]) -> dict:
    """A deep copy of the demo config with each (path, value) set; value None deletes the key."""
    cfg = copy.deepcopy(DEMO)
    for path, value in edits:
        node = cfg
        for key in path[:-1]:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(path[-1])
        else:
            node[path[-1]] = value
    return cfg


def checked(cfg: dict) -> dict:
    """Validate (filling defaults) and cross-check `cfg`, from the repository root (as a user runs it)."""
    dc.validate(cfg)
    dc.check(cfg, REPO)
    return cfg


def test_the_demo_config_passes_and_gets_every_default() -> None:
    cfg = checked(copy.deepcopy(DEMO))
    assert cfg["tasks"]["polya"]["window"]["flank"] == 16
    assert cfg["models"]["bpnet"]["train"]["precision"] == "auto"
    assert cfg["models"]["lm_lora_conv"]["lm"]["lora"]["target_modules"] == ["query", "value", "dense"]


@pytest.mark.parametrize(("edit", "message"), [
    ((["tasks", "polya", "windw"], {"length": 300}), "tasks.polya: Additional properties are not allowed ('windw'"),
    ((["models", "bpnet", "train", "epochs"], "ten"), "models.bpnet.train.epochs: 'ten' is not of type 'integer'"),
    ((["species", "scer", "genome", "md5"], "not-an-md5"), "species.scer.genome.md5: 'not-an-md5' does not match"),
    ((["models", "bpnet", "arch"], "transformer"), "models.bpnet.arch: 'transformer' is not one of ['bpnet', 'lm', 'unet', 'enbed']"),
    ((["tasks", "polya", "split", "folds"], {"k": 8}), "tasks.polya.split: {"),  # chromosomes and folds: one of
    ((["qc", "thresholds", "max_n_fraction"], 2), "qc.thresholds.max_n_fraction: 2 is greater than the maximum"),
])
def test_schema_errors_name_the_dotted_key(edit, message) -> None:
    with pytest.raises(ValueError) as err:
        dc.validate(edited(edit))
    assert message in str(err.value) and "config.schema.yaml" in str(err.value)


@pytest.mark.parametrize(("edits", "message"), [
    ([(["tasks", "polya", "targets"], [{"name": "polya", "plus": "polya_plus", "minus": "nope"}])],
     "tasks.polya.targets (polya).minus: track 'nope' is not under species.scer.tracks"),
    ([(["tasks", "polya", "species"], "human")], "tasks.polya.species: 'human' is not under species"),
    ([(["models", "bpnet", "train", "jitter"], 40)], "models.bpnet.train.jitter (40) exceeds tasks.polya.window.flank"),
    ([(["models", "bpnet", "tasks"], ["polyA"])], "models.bpnet.tasks: 'polyA' is not under tasks"),
    ([(["models", "bpnet", "sweep"], {"train.lrr": [0.1]})],
     "models.bpnet.sweep.train.lrr: 'lrr' is not a key of models.bpnet"),
    ([(["models", "bpnet", "sweep"], {"lm.lora.r": [4]})],
     "models.bpnet.sweep.lm.lora.r: model bpnet is arch bpnet; sweep keys under bpnet or train"),
    ([(["models", "bpnet", "sweep"], {"train.lr": [0.1, -1]})],
     "models.bpnet.sweep: point bpnet~lr-1 sets train.lr to an invalid value"),
    ([(["interpret", "models"], ["nope"])], "interpret.models: 'nope' is not under models"),
    ([(["interpret", "motifs"], ["missing.meme"])], "interpret.motifs[0]: MEME file 'missing.meme' not found"),
    ([(["tasks", "polya", "split"], {"folds": {"k": 8, "val": 2, "test": 2}})],
     "tasks.polya.split.folds: val and test are both fold 2"),
    ([(["tasks", "polya", "split"], {"folds": {"k": 8, "val": 0, "test": 8}})],
     "tasks.polya.split.folds.test: fold 8 does not exist with k = 8"),
    ([(["tasks", "polya", "extra_train_species"], ["calb"])],
     "tasks.polya.extra_train_species: species 'calb' lacks the task's tracks ['polya_minus', 'polya_plus']"),
    ([(["tasks", "polya", "sites", "target"], "nope")], "tasks.polya.sites.target: no stranded target named 'nope'"),
    ([(["tasks", "polya", "type"], "tracks"), (["tasks", "polya", "window"], {"length": 300, "flank": 32})],
     "tasks.polya.window.length (300) must be a multiple of tasks.polya.bins.size (32)"),
    ([(["tasks", "polya", "type"], "tracks"), (["tasks", "polya", "window"], {"length": 320, "flank": 32}),
      (["models", "lm_lora_conv", "train", "jitter"], 32), (["interpret", "tracks"], {"targets": ["nope"]})],
     "interpret.tracks.targets: 'nope' is not a channel of tasks.polya (its channels: polya/+, polya/-;"),
    ([(["tasks", "polya", "type"], "tracks"), (["tasks", "polya", "window"], {"length": 320, "flank": 32}),
      (["models", "lm_lora_conv", "train", "jitter"], 32), (["interpret", "tracks"], {"range": 400})],
     "interpret.tracks.range: 400 bp is longer than the 320 bp windows of tasks.polya"),
    ([(["species", "calb", "qc_reference"], "nope")], "species.calb.qc_reference: 'nope' is not under species"),
    ([(["qc", "busco", "lineage"], "nowhere/fungi_odb10")], "qc.busco.lineage: directory 'nowhere/fungi_odb10'"),
    ([(["models", "lm_lora_conv", "lm", "backbone"], "no/such/dir")],
     "models.lm_lora_conv.lm.backbone: 'no/such/dir' is neither a pretrain name"),
    ([(["models", "lm_lora_conv", "lm", "backbone"], None)], "models.lm_lora_conv.lm.backbone is null"),
    ([(["species", "calb", "reference"], True)], "species ['scer', 'calb'] are all marked reference: true"),
])
def test_cross_check_errors_name_the_dotted_key(edits, message) -> None:
    with pytest.raises(ValueError) as err:
        checked(edited(*edits))
    assert message in str(err.value)


def test_a_language_model_on_a_tracks_task_is_a_valid_config() -> None:
    """Any trunk serves any task type: the former 'supports arch bpnet only' refusal is gone."""
    tracks = {"type": "tracks", "window": {"length": 320, "flank": 32}}
    cfg = checked(edited((["tasks", "polya"], {**DEMO["tasks"]["polya"], **tracks}),
                         (["models", "lm_lora_conv", "train", "jitter"], 32)))
    assert "polya" in dc.model_tasks(cfg, "lm_lora_conv") and cfg["tasks"]["polya"]["type"] == "tracks"


def test_sweep_and_seed_runs() -> None:
    cfg = checked(edited((["models", "bpnet", "sweep"], {"train.lr": [0.001, 0.01], "bpnet.layers": [2]}),
                         (["models", "bpnet", "seeds"], [0, 3])))
    runs = dc.model_runs(cfg, "bpnet")
    assert [r["run"] for r in runs] == ["bpnet~lr0.001~layers2~seed0", "bpnet~lr0.001~layers2~seed3",
                                        "bpnet~lr0.01~layers2~seed0", "bpnet~lr0.01~layers2~seed3"]
    spec = dc.run_spec(cfg, "bpnet~lr0.01~layers2~seed3")
    assert (spec["train"]["lr"], spec["bpnet"]["layers"], spec["seed"]) == (0.01, 2, 3)
    assert cfg["models"]["bpnet"]["train"]["lr"] == 0.001  # the configured model is not changed
    assert dc.sweep_labels(["lm.lora.dropout", "train.dropout"]) == {"lm.lora.dropout": "lm_lora_dropout",
                                                                     "train.dropout": "train_dropout"}
    assert dc.format_sweep_value([True, 2.0]) == "true-2.0"
    with pytest.raises(ValueError, match="not a run of models.bpnet"):
        dc.find_run(cfg, "bpnet~lr0.5")


def test_pretraining_corpus_leaves_out_every_tasks_validation_and_test_chromosomes() -> None:
    cfg = checked(copy.deepcopy(DEMO))
    genomes = {g["id"]: g for g in dc.pretrain_genomes(cfg, "fungal_lm")}
    split = cfg["tasks"]["polya"]["split"]["chromosomes"]
    assert genomes["scer"]["exclude"] == sorted(split["val"] + split["test"])
    assert genomes["scer"]["val"] == split["val"]
    assert all(not g["exclude"] for s, g in genomes.items() if s != "scer")  # no task on the other genomes


def test_report_manifest_names_every_file_with_its_task_and_model() -> None:
    cfg = checked(copy.deepcopy(DEMO))
    manifest = report_manifest(cfg)
    predictions = [r for r in manifest if r["kind"] == "prediction"]
    assert [r["model"] for r in predictions] == list(cfg["models"])
    assert predictions[0] == {"kind": "prediction", "task": "polya", "task_type": "profile", "model": "bpnet",
                              "path": "results/eval/polya/bpnet/predictions.h5"}
    modisco = [(r["model"], r["output"]) for r in manifest if r["kind"] == "modisco"]
    assert modisco == [(m, o) for m in cfg["interpret"]["models"] for o in cfg["interpret"]["outputs"]]
    assert len({r["path"] for r in manifest}) == len(manifest)
    assert "results/models/polya/lm_lora_conv/hf" in final_outputs(cfg)


def test_a_chromosome_in_two_splits_names_the_task_and_both_splits() -> None:
    cfg = edited((["tasks", "polya", "split", "chromosomes"], {"train": ["II", "XV"], "val": ["XV"], "test": ["VII"]}))
    with pytest.raises(ValueError, match=r"tasks\.polya\.split\.chromosomes: chromosome 'XV' is in both train and val"):
        checked(cfg)


def test_a_species_token_missing_from_a_local_backbone_is_a_config_error(tmp_path: Path) -> None:
    """Found with the config, before any job runs (it used to surface only when training started)."""
    from helpers import tiny_bert

    arch = {"layers": 1, "hidden": 16, "heads": 2, "intermediate": 32}
    tokens = list(dict.fromkeys(s.get("token") or name for name, s in DEMO["species"].items()))
    tiny_bert(tmp_path, "nucleotide", [t for t in tokens if t != "candida_albicans"], arch)
    cfg = edited((["models", "lm_lora_conv", "lm", "backbone"], str(tmp_path)))
    with pytest.raises(ValueError) as err:
        checked(cfg)
    assert str(err.value).startswith(f"species.calb.token: 'candida_albicans' is not a species token of "
                                     f"models.lm_lora_conv.lm.backbone ({tmp_path}")
    tiny_bert(tmp_path, "nucleotide", tokens, arch)
    checked(cfg)  # with every token the same config passes


def test_a_nucleotide_transformer_backbone_needs_no_species_tokens(tmp_path: Path) -> None:
    """NT's vocabulary has no species tokens and its models read none: the species check does not demand them; a
    backbone whose vocabulary is no known layout is an error naming the key."""
    from helpers import nt_tokenizer_files

    nt_tokenizer_files(tmp_path / "nt")
    checked(edited((["models", "lm_lora_conv", "lm", "backbone"], str(tmp_path / "nt"))))
    (tmp_path / "bpe").mkdir()
    (tmp_path / "bpe" / "vocab.txt").write_text("<s>\n</s>\nAC\nGT\n")
    with pytest.raises(ValueError, match=rf"models\.lm_lora_conv\.lm\.backbone: {tmp_path / 'bpe'}: vocabulary"):
        checked(edited((["models", "lm_lora_conv", "lm", "backbone"], str(tmp_path / "bpe"))))


def test_a_key_written_twice_in_a_config_file_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("species: {}\nmodels:\n  a: {arch: bpnet}\ntasks: {}\nmodels:\n  b: {arch: bpnet}\n")
    with pytest.raises(ValueError, match=rf"{path}, line 5: key 'models' is written twice in the same block "
                                         r"\(first on line 2\)"):
        dc.check_config_files([str(path)])
    dc.check_config_files([str(REPO / "config" / "config.yaml"), *map(str, (REPO / "config/examples").glob("*.yaml"))])


@pytest.mark.parametrize("shuffled", ["absent", {"label": "non_promoter"}])
def test_classification_examples_validate_with_and_without_shuffled_negatives(shuffled) -> None:
    """The schema fills defaults into nested blocks: absent, shuffled_negatives is off (label null)."""
    cfg = yaml.safe_load((REPO / "config" / "examples" / "ecoli_promoters.yaml").read_text())
    examples = cfg["tasks"]["promoters"]["examples"]
    if shuffled == "absent":
        examples.pop("shuffled_negatives")
    else:
        examples["shuffled_negatives"] = shuffled
    out = dc.validate(cfg)["tasks"]["promoters"]["examples"]["shuffled_negatives"]
    label = None if shuffled == "absent" else "non_promoter"
    assert out == {"label": label, "of": None, "per_example": 1, "seed": 0}
