"""Write the key table of config/README.md from workflow/schemas/config.schema.yaml.

Run from the repository root:

    python docs/make_config_table.py           # rewrite the table between the markers
    python docs/make_config_table.py --check   # exit 1 when config/README.md is out of date

The table sits between the lines `<!-- keys:start -->` and `<!-- keys:end -->`; the rest of the file is left alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
GUIDE_PATH = REPO / "config" / "README.md"
START = "<!-- keys:start -->"
END = "<!-- keys:end -->"
HEADER = [
    "| key | type | default | meaning |",
    "|---|---|---|---|",
]
#: A placeholder such as `<id>`, which markdown would read as an HTML tag unless it is in backticks.
_PLACEHOLDER = re.compile(r"<\w+>")


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The config schema as a dict.

    Args:
        path: The schema file.

    Returns:
        The parsed schema.
    """
    return yaml.safe_load(path.read_text())


def _resolve(schema: dict, node: dict) -> dict:
    """`node` with a `$ref` to the schema's definitions merged in (the node's own keys win)."""
    if "$ref" in node:
        return {**schema["definitions"][node["$ref"].split("/")[-1]], **node}
    return node


def _walk(schema: dict, node: dict, path: str) -> Iterator[tuple[str, dict, bool, list[list[str]]]]:
    """(dotted key, schema of the key, required, alternatives) for `node`'s keys and every key below them."""
    node = _resolve(schema, node)
    for alternative in node.get("oneOf", []):
        if "$ref" in alternative:
            yield from _walk(schema, alternative, path)
    alternatives = [alt["required"] for alt in node.get("oneOf", []) if "required" in alt]
    # a key required under a condition (`if`/`then`/`else`: a task type's own keys) counts as required
    conditional = {key for branch in ("then", "else") for key in node.get(branch, {}).get("required", [])}
    required = set(node.get("required", [])) | {key for alt in alternatives for key in alt} | conditional
    for key, child in node.get("properties", {}).items():
        dotted = f"{path}.{key}" if path else key
        choice = alternatives if any(key in alt for alt in alternatives) else []
        yield dotted, child, key in required, choice
        yield from _walk(schema, child, dotted)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and ("properties" in extra or "$ref" in extra):
        yield from _walk(schema, extra, path + (".<name>" if path.endswith("tracks") else ".<id>"))
    items = node.get("items")
    if isinstance(items, dict) and "properties" in items:
        yield from _walk(schema, items, path + "[]")


def schema_keys(schema: dict, node: dict | None = None, path: str = "") -> Iterator[tuple[str, dict, bool]]:
    """(dotted key, schema, required) of every key of the config.

    `<id>`/`<name>` stand for user-chosen keys, `[]` for list items. A key that one of several alternatives
    requires (a source's `url` or `path`) counts as required.

    Args:
        schema: The whole schema (its `definitions` resolve `$ref`s).
        node: The part to walk; None walks the whole schema.
        path: Dotted path of `node`.

    Yields:
        One tuple per key, parents before their children.
    """
    for dotted, child, required, _ in _walk(schema, schema if node is None else node, path):
        yield dotted, child, required


def type_text(schema: dict, node: dict) -> str:
    """The type column: JSON types, enum values, `source` for an input file, `or null` where null is allowed.

    Args:
        schema: The whole schema.
        node: The key's schema.

    Returns:
        Plain text such as `integer or null`, `sr, asm5 or null`, `source or null`.
    """
    options = node.get("oneOf", [])
    if options and all("$ref" in o or "type" in o for o in options) and "properties" not in node:
        parts = [type_text(schema, o) for o in options if o.get("type") != "null"]
        nullable = any(o.get("type") == "null" for o in options)
        return " or ".join(parts + (["null"] if nullable else []))
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        target = schema["definitions"][name]
        if "oneOf" in target:  # a composite the guide explains by name (a source is a url or a path, and an md5)
            return name
        node = {**target, **node}
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if "enum" in node:
        values = [str(v) for v in node["enum"] if v is not None]
        nullable = None in node["enum"] or "null" in types
        return ", ".join(values) + (" or null" if nullable else "")
    return " or ".join(types) if types else "any"


def default_text(node: dict, required: bool, alternatives: list[list[str]]) -> str:
    """The default column: the schema default as JSON, `required`, or which alternative keys are required."""
    if "default" in node:
        return f"`{json.dumps(node['default'], ensure_ascii=False)}`"
    if alternatives:
        return "one of " + ", ".join(" + ".join(f"`{key}`" for key in alt) for alt in alternatives)
    return "required" if required else ""


def description_text(node: dict) -> str:
    """The description on one line, with `|` escaped and placeholders such as `<id>` in backticks."""
    words = [_code_placeholder(word) for word in str(node.get("description", "")).split()]
    return " ".join(words).replace("|", "\\|")


def _code_placeholder(word: str) -> str:
    """A word such as `(results/<task>/x.tsv),` with its core in backticks when it holds a placeholder."""
    if "`" in word or not _PLACEHOLDER.search(word):
        return word
    core = word.lstrip("(")
    lead = word[: len(word) - len(core)]
    stripped = core.rstrip(".,;:)")
    return f"{lead}`{stripped}`{core[len(stripped):]}"


def render_table(schema: dict) -> str:
    """The markdown key table of the whole schema, one row per key.

    Args:
        schema: The whole schema.

    Returns:
        The table's lines joined by newlines (no trailing newline).
    """
    rows = list(HEADER)
    for dotted, node, required, alternatives in _walk(schema, schema, ""):
        cells = [f"`{dotted}`", type_text(schema, node), default_text(node, required, alternatives),
                 description_text(node)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def update(text: str, table: str) -> str:
    """`text` with everything between the START and END marker lines replaced by `table`.

    Raises:
        ValueError: When the markers are missing or out of order.
    """
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{GUIDE_PATH.relative_to(REPO)} needs the lines {START} and {END}, in that order")
    head = text[: start + len(START)]
    return f"{head}\n{table}\n{text[end:]}"


def is_current(guide: Path = GUIDE_PATH, schema_path: Path = SCHEMA_PATH) -> bool:
    """Whether the guide's table equals the one generated from the schema now."""
    text = guide.read_text()
    return update(text, render_table(load_schema(schema_path))) == text


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, verify) the key table of config/README.md.

    Args:
        argv: Command-line arguments (default: sys.argv[1:]).

    Returns:
        0 when the file is (now) current; 1 with --check when it is out of date.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if config/README.md is out of date")
    parser.add_argument("--guide", type=Path, default=GUIDE_PATH, help="the file holding the table")
    parser.add_argument("--schema", type=Path, default=SCHEMA_PATH, help="the config schema")
    args = parser.parse_args(argv)
    text = args.guide.read_text()
    new = update(text, render_table(load_schema(args.schema)))
    if args.check:
        if new != text:
            print(f"{args.guide} is out of date: run python docs/make_config_table.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.guide.write_text(new)
        print(f"wrote the key table of {args.guide}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
