"""Task types, one module each: how examples and targets are made, which head, loss and metrics fit them.

A new task type is one module (a `TaskType` subclass, `dnalm.tasks.base`) and one line in `TASK_TYPES`; see
docs/architecture.md for the other files a contributor touches (the schema's `tasks.<id>.type` enum, a window rule).
"""

from __future__ import annotations

from dnalm.tasks.base import TaskType
from dnalm.tasks.classification import ClassificationTask
from dnalm.tasks.profile import ProfileTask
from dnalm.tasks.seqerror import SeqErrorTask
from dnalm.tasks.tracks import TracksTask

#: Task types by the config's `tasks.<id>.type`.
TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (ProfileTask(), TracksTask(), ClassificationTask(), SeqErrorTask())}


def get(name: str) -> TaskType:
    """The task type of a config `type` (or a window store's `task_type`)."""
    if name not in TASK_TYPES:
        raise ValueError(f"unknown task type {name!r}; known: {', '.join(TASK_TYPES)}")
    return TASK_TYPES[name]
