"""Derived settings of variant scoring and genome-wide prediction tracks: their jobs from `variants.models` and
`prediction_tracks.models` (tasks of a type without them, `TaskType.interpretable`, are skipped)."""

from __future__ import annotations

from dnalm import tasks
from dnalm.config import model_runs, model_tasks, sweep_points


def _scored_tasks(cfg: dict, model: str) -> list[str]:
    """The tasks a model trains on whose type has variant effects and prediction tracks."""
    return [t for t in model_tasks(cfg, model) if tasks.get(cfg["tasks"][t]["type"]).interpretable]


def variant_jobs(cfg: dict) -> list[dict]:
    """One job per (task, model sweep point, VCF of the task's species) of `variants.models`: dicts of task,
    model (the point), vcf, species and runs (the point's run ids, one per seed)."""
    models = cfg["variants"]["models"]
    jobs = []
    for model in list(cfg["models"]) if models is None else models:
        for task in _scored_tasks(cfg, model):
            species = cfg["tasks"][task]["species"]
            for point, _ in sweep_points(cfg, model):
                runs = [r["run"] for r in model_runs(cfg, model) if r["point"] == point]
                jobs += [{"task": task, "model": point, "vcf": vcf, "species": species, "runs": runs}
                         for vcf in cfg["species"][species]["variants"]]
    return jobs


def track_runs(cfg: dict) -> list[tuple[str, str]]:
    """(task, run) of every run of `prediction_tracks.models` (null: every model) on every task it trains on."""
    models = cfg["prediction_tracks"]["models"]
    return [(t, r["run"]) for m in (list(cfg["models"]) if models is None else models)
            for t in _scored_tasks(cfg, m) for r in model_runs(cfg, m)]
