"""Config cross-checks and derived settings of LM conservation and of the species-token counterfactual."""

from __future__ import annotations


def _species_token(cfg: dict, species: str) -> str:
    """The species' token for language models (its id when `token` is not set), as `dnalm.config.species_token`."""
    return cfg["species"][species]["token"] or species


def reference_species(cfg: dict) -> str | None:
    """The species marked `reference: true`, or None."""
    return next((s for s, spec in cfg["species"].items() if spec["reference"]), None)


def conservation_species(cfg: dict) -> list[str]:
    """Species scored by `conservation`: its `species`, or the reference species when that is null."""
    listed = cfg["conservation"]["species"]
    if listed is not None:
        return list(listed)
    reference = reference_species(cfg)
    return [reference] if reference is not None else []


def check_conservation(cfg: dict) -> None:
    """Scored LMs are pretrained here; scored species are configured, annotated, and some exist when models do."""
    block = cfg["conservation"]
    for lm in block["models"]:
        if lm not in cfg["pretrain"]:
            raise ValueError(f"conservation.models: {lm!r} is not under pretrain (known: {sorted(cfg['pretrain'])}); "
                             "conservation needs a masked LM pretrained by this workflow")
        arch = cfg["pretrain"][lm].get("arch", "bert")
        if arch != "bert":
            raise ValueError(f"conservation.models: pretrain.{lm} is arch {arch}; conservation reads a BERT masked "
                             "LM's per-base predictions (arch: bert)")
    if not block["models"]:
        return
    species = conservation_species(cfg)
    if not species:
        raise ValueError("conservation.species: null means the reference species, but no species has reference: "
                         "true; list the species to score")
    for name in species:
        if name not in cfg["species"]:
            raise ValueError(f"conservation.species: {name!r} is not under species (known: {sorted(cfg['species'])})")
        if cfg["species"][name]["annotation"] is None:
            raise ValueError(f"species.{name}.annotation: conservation scores {name}, and its codon-position control "
                             "needs the CDS of an annotation; add one or leave the species out of conservation.species")


def check_counterfactual(cfg: dict) -> None:
    """Listed counterfactual species are species ids or tokens of the config's species when a model's backbone is
    pretrained here (whose vocabulary is those tokens; other backbones' vocabularies are checked when loaded)."""
    listed = cfg["evaluate"]["counterfactual_species"]
    own = any(spec.get("arch") == "lm" and (spec.get("lm") or {}).get("backbone") in cfg["pretrain"]
              for spec in cfg["models"].values())
    if listed is None or not own:
        return
    tokens = {_species_token(cfg, s) for s in cfg["species"]}
    unknown = [n for n in listed if n not in cfg["species"] and str(n).lower() not in tokens]
    if unknown:
        raise ValueError(f"evaluate.counterfactual_species: {unknown} are neither species ids nor species tokens of "
                         f"this config, the vocabulary of the LMs pretrained here (tokens: {sorted(tokens)})")


def conservation_jobs(cfg: dict) -> list[tuple[str, str]]:
    """(lm, species) of every conservation job."""
    return [(lm, s) for lm in cfg["conservation"]["models"] for s in conservation_species(cfg)]


def counterfactual_species(cfg: dict, task: str) -> list[str]:
    """Species tokens the species-token counterfactual of a task's LMs swaps in (`evaluate.counterfactual_species`).

    Listed names that are species ids under `species` become their tokens; other names are taken as tokens (checked
    against the model's vocabulary when it is loaded). null: the task's species, its extra train species and the
    reference species.
    """
    listed = cfg["evaluate"]["counterfactual_species"]
    if listed is None:
        spec = cfg["tasks"][task]
        reference = reference_species(cfg)
        listed = [spec["species"], *spec["extra_train_species"], *([reference] if reference else [])]
    tokens = [_species_token(cfg, s) if s in cfg["species"] else s for s in listed]
    return list(dict.fromkeys(tokens))
