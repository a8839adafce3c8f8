"""The report's inputs as data: the manifest's records (`dnalm.outputs.report_manifest`) grouped by kind."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Every record kind the report reads and the names its records must carry besides `kind` and `path`.
KINDS: dict[str, tuple[str, ...]] = {
    "input": ("species", "input"),
    "qc_genome": ("species",),
    "qc_summary": (),
    "qc_thresholds": (),
    "qc_mash_distances": (),
    "pretrain_summary": ("lm",),
    "pretrain_history": ("lm",),
    "pretrain_homology": ("lm",),
    "conservation": ("lm", "species"),
    "conservation_scores": ("lm", "species"),
    "split_counts": ("task",),
    "homology_summary": ("task",),
    "comparison": ("task",),
    "model_info": ("task", "model"),
    "history": ("task", "model"),
    "prediction": ("task", "task_type", "model"),
    "counterfactual": ("task", "model"),
    "sweep": ("task", "model"),
    "attributions": ("task", "model"),
    "motifs": ("task", "model"),
    "modisco": ("task", "model", "output"),
    "positional_elements": ("task", "model"),
    "positional_profile": ("task", "model"),
    "class_metrics": ("task", "model"),
    "class_predictions": ("task", "model"),
    "class_projection": ("task", "model"),
    "seqerror_metrics": ("task", "model"),
    "test_set_comparison": ("task", "test_set"),
    "variants": ("task", "model", "vcf"),
    "variants_summary": ("task", "model", "vcf"),
    "variants_top": ("task", "model", "vcf"),
    "prediction_tracks": ("task", "model"),
    "ism": ("task", "model"),
    "ism_regions": ("task", "model"),
    "attribution_track": ("task", "model", "output"),
    "cross_fold": ("task",),
    "pretraining": ("task",),
}
#: Kinds whose tasks are the report's tasks (sweeps and interpretations list only their own).
TASK_KINDS = ("split_counts", "homology_summary", "model_info", "history", "comparison", "prediction",
              "counterfactual")


@dataclass(frozen=True)
class Manifest:
    """Checked manifest records by kind (each kind's records in manifest order) and the report's settings.

    Attributes:
        records: Kind -> its records (dicts with `kind`, `path` and the names of `KINDS`).
        n_examples: Example windows per task (0 turns the example figures off).
        interpret_examples: Example windows drawn as attribution logos per task.
    """

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    n_examples: int = 4
    interpret_examples: int = 3

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], *, n_examples: int = 4,
                     interpret_examples: int = 3) -> Manifest:
        """Group records by kind after checking them (see `check_records`).

        Args:
            records: The manifest, in config order.
            n_examples: Example windows per task (>= 0).
            interpret_examples: Attribution-logo windows per task.

        Returns:
            The manifest.
        """
        if n_examples < 0:
            raise ValueError(f"n_examples must be >= 0, got {n_examples}")
        records = [dict(r) for r in records]
        check_records(records)
        grouped: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            grouped.setdefault(record["kind"], []).append(record)
        return cls(grouped, n_examples, interpret_examples)

    def find(self, kind: str, **names: str) -> list[dict[str, Any]]:
        """The records of a kind whose names have the given values, in manifest order."""
        return [r for r in self.records.get(kind, []) if all(r.get(k) == v for k, v in names.items())]

    def path(self, kind: str, **names: str) -> str | None:
        """The path of the one record of a kind with these names, or None when there is none."""
        found = self.find(kind, **names)
        return found[0]["path"] if found else None

    def paths(self, kind: str, key: str, **names: str) -> dict[str, str]:
        """Paths of a kind's records (with these names) by their `key` name, in manifest order."""
        return {r[key]: r["path"] for r in self.find(kind, **names)}

    def names(self, key: str, kinds: Sequence[str], **names: str) -> list[str]:
        """The distinct values of name `key` in the records of `kinds` (with these names), in order."""
        return list(dict.fromkeys(r[key] for kind in kinds for r in self.find(kind, **names)))

    @property
    def tasks(self) -> list[str]:
        """The tasks, in config order."""
        return self.names("task", TASK_KINDS)

    def models(self, task: str) -> list[str]:
        """The models of a task, in config order."""
        return self.names("model", ("model_info", "history"), task=task)

    def lms(self) -> list[str]:
        """The pretrained language models, in config order."""
        return self.names("lm", ("pretrain_summary", "pretrain_history"))


def check_records(records: Sequence[dict[str, Any]]) -> None:
    """Check every record's kind and names, that no file is listed twice under the same names, and that all exist.

    Raises:
        ValueError: For an unknown kind, a missing name or two records with the same kind and names.
        FileNotFoundError: Naming every listed file that does not exist.
    """
    seen: dict[tuple, str] = {}
    for record in records:
        kind = record.get("kind")
        if kind not in KINDS:
            raise ValueError(f"report manifest: unknown kind {kind!r} in {record}; known: {', '.join(KINDS)}")
        missing = [k for k in ("path", *KINDS[kind]) if not record.get(k)]
        if missing:
            raise ValueError(f"report manifest: {kind} record {record} lacks {', '.join(missing)}")
        key = (kind, *sorted((k, str(v)) for k, v in record.items() if k not in ("kind", "path")))
        if key in seen:
            raise ValueError(f"report manifest: two {kind} records for {dict(key[1:])}: {seen[key]} and "
                             f"{record['path']}")
        seen[key] = record["path"]
    absent = [str(r["path"]) for r in records if not os.path.isfile(r["path"])]
    if absent:
        raise FileNotFoundError(f"report input(s) not found: {', '.join(absent)}")
