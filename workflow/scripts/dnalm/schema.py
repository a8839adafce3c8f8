"""The config schema (`workflow/schemas/config.schema.yaml`): the one source of defaults for every config block."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


@functools.cache
def _schema(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def load_schema(path: str | Path = SCHEMA) -> dict:
    """The config schema (a fresh copy)."""
    return copy.deepcopy(_schema(str(path)))


def defaults(node: dict) -> dict:
    """The defaults of an object schema, nested objects with a default filled in recursively (as validation does)."""
    out = {}
    for key, child in node.get("properties", {}).items():
        if "default" in child:
            value = copy.deepcopy(child["default"])
            if isinstance(value, dict) and "properties" in child:
                value = {**defaults(child), **value}
            out[key] = value
    return out


def block_defaults(*path: str) -> dict:
    """Defaults of one config block, e.g. `block_defaults("models", "lm")` for `models.<id>.lm`.

    Each step enters a property of that name; a step into a block keyed by user ids (models, tasks, …) also enters
    its `additionalProperties`.
    """
    node = _schema(str(SCHEMA))
    for key in path:
        node = node["properties"][key]
        if "additionalProperties" in node and isinstance(node["additionalProperties"], dict) \
                and "properties" in node["additionalProperties"]:
            node = node["additionalProperties"]
    return defaults(node)


#: Pretraining window (bp) of each `pretrain.<id>.arch` when `window` is null (the schema's description says so).
PRETRAIN_WINDOWS = {"bert": 300, "unet": 300, "enbed": 16384}


def pretrain_block(spec: dict) -> dict:
    """A `pretrain.<id>` block with its missing keys from the schema and a null `window` (by arch) and `stride`
    (half the window) resolved."""
    p = {**block_defaults("pretrain"), **spec}
    window = p["window"] or PRETRAIN_WINDOWS[p["arch"]]
    return {**p, "window": window, "stride": p["stride"] or window // 2}
