"""The README documents every config key of the schema, and the schema documents every key it has."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def schema_keys(node: dict, path: str = ""):
    """(dotted key, schema, required) of every key; `<id>`/`<name>` stand for user-chosen keys, `[]` for list items."""
    if "$ref" in node:
        node = {**SCHEMA["definitions"][node["$ref"].split("/")[-1]], **node}
    for alternative in node.get("oneOf", []):
        if "$ref" in alternative:
            yield from schema_keys(alternative, path)
    required = set(node.get("required", [])) | {r for alt in node.get("oneOf", []) for r in alt.get("required", [])}
    for key, child in node.get("properties", {}).items():
        dotted = f"{path}.{key}" if path else key
        yield dotted, child, key in required
        yield from schema_keys(child, dotted)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and ("properties" in extra or "$ref" in extra):
        yield from schema_keys(extra, path + (".<name>" if path.endswith("tracks") else ".<id>"))
    items = node.get("items")
    if isinstance(items, dict) and "properties" in items:
        yield from schema_keys(items, path + "[]")


def test_every_key_has_a_description_and_default_or_is_required() -> None:
    for key, child, required in schema_keys(SCHEMA):
        assert child.get("description"), f"{key} has no description"
        assert required or "default" in child, f"{key} is neither required nor has a default"


def test_readme_documents_every_key() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [key for key, _, _ in schema_keys(SCHEMA) if f"`{key}`" not in readme]
    assert not missing, f"README lacks config keys: {missing}"
    assert len(list(schema_keys(SCHEMA))) > 50
