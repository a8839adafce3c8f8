"""The documentation: the schema documents every key, config/README.md's key table is generated from it and current,
the README is a short manual without lab-notebook entries, and every relative link in the docs resolves."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
GUIDE = REPO / "config" / "README.md"
#: Files the docs may link to before they exist: docs/results.md is written by docs/make_results.py from a finished
#: run; docs/architecture.md is written on the lead's branch of the layout change (drop it here once merged).
NOT_YET_WRITTEN = {REPO / "docs" / "results.md"}


def _load(name: str):
    """Import docs/<name>.py (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


make_config_table = _load("make_config_table")
SCHEMA = make_config_table.load_schema()


def schema_keys():
    return make_config_table.schema_keys(SCHEMA)


def test_every_key_has_a_description_and_default_or_is_required() -> None:
    for key, child, required in schema_keys():
        assert child.get("description"), f"{key} has no description"
        assert required or "default" in child, f"{key} is neither required nor has a default"


def test_config_guide_table_is_generated_and_documents_every_key() -> None:
    assert make_config_table.main(["--check"]) == 0, "run python docs/make_config_table.py"
    text = GUIDE.read_text()
    generated = text[text.index(make_config_table.START):text.index(make_config_table.END)]
    keys = [key for key, _, _ in schema_keys()]
    missing = [key for key in keys if f"| `{key}` |" not in generated]
    assert not missing, f"config/README.md lacks config keys: {missing}"
    assert len(keys) > 50


def test_config_table_check_notices_a_stale_table_and_the_script_mends_it(tmp_path: Path) -> None:
    guide = tmp_path / "README.md"
    stale = GUIDE.read_text().replace("| `qc.mash.k` |", "| `qc.mash.kmer` |")
    guide.write_text(stale)
    assert make_config_table.main(["--check", "--guide", str(guide)]) == 1
    assert make_config_table.main(["--guide", str(guide)]) == 0
    assert guide.read_text() == GUIDE.read_text()
    assert make_config_table.main(["--check", "--guide", str(guide)]) == 0


MINI_SCHEMA = {
    "definitions": {"source": {"type": "object", "properties": {
        "url": {"type": "string", "description": "A URL."},
        "md5": {"type": ["string", "null"], "default": None, "description": "Checksum | of the file."}},
        "oneOf": [{"required": ["url"]}, {"required": ["path"]}]}},
    "properties": {"species": {"type": "object", "default": {}, "description": "Genomes.", "additionalProperties": {
        "type": "object", "required": ["genome"], "properties": {
            "genome": {"$ref": "#/definitions/source", "description": "Genome."},
            "annotation": {"oneOf": [{"type": "null"}, {"$ref": "#/definitions/source"}], "default": None,
                           "description": "Annotation, named <id>.gff3 (see results/<task>/x.tsv)."},
            "tracks": {"type": "object", "default": {}, "description": "Tracks.",
                       "additionalProperties": {"$ref": "#/definitions/source"}},
            "preset": {"type": ["string", "null"], "enum": ["sr", "asm5", None], "default": None,
                       "description": "Preset."},
            "targets": {"type": "array", "default": [], "description": "Targets.", "items": {"type": "object", "properties": {
                "name": {"type": "string", "description": "Name."}}, "required": ["name"]}}}}}},
}


def test_config_table_rows() -> None:
    table = make_config_table.render_table(MINI_SCHEMA).splitlines()
    assert table[:2] == make_config_table.HEADER
    assert table[2:] == [
        "| `species` | object | `{}` | Genomes. |",
        "| `species.<id>.genome` | source | required | Genome. |",
        "| `species.<id>.genome.url` | string | one of `url`, `path` | A URL. |",
        "| `species.<id>.genome.md5` | string or null | `null` | Checksum \\| of the file. |",
        ("| `species.<id>.annotation` | source or null | `null` | Annotation, named `<id>.gff3` (see "
         "`results/<task>/x.tsv`). |"),
        "| `species.<id>.annotation.url` | string | one of `url`, `path` | A URL. |",
        "| `species.<id>.annotation.md5` | string or null | `null` | Checksum \\| of the file. |",
        "| `species.<id>.tracks` | object | `{}` | Tracks. |",
        "| `species.<id>.tracks.<name>.url` | string | one of `url`, `path` | A URL. |",
        "| `species.<id>.tracks.<name>.md5` | string or null | `null` | Checksum \\| of the file. |",
        "| `species.<id>.preset` | sr, asm5 or null | `null` | Preset. |",
        "| `species.<id>.targets` | array | `[]` | Targets. |",
        "| `species.<id>.targets[].name` | string | required | Name. |",
    ]


def test_readme_is_a_short_manual() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines (at most 300)"


def test_readme_has_no_dates_or_load_figures() -> None:
    text = README.read_text()
    assert not re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text), "dates belong in benchmarks/RESULTS.md or CHANGELOG.md"
    assert not re.search(r"load average|load ~", text, re.IGNORECASE)


def _doc_files() -> list[Path]:
    extra = [REPO / "CHANGELOG.md", REPO / "benchmarks" / "RESULTS.md", REPO / "benchmarks" / "README.md"]
    return [README, GUIDE, *sorted((REPO / "docs").glob("*.md")), *extra]


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a markdown file's headings."""
    anchors = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def _links(path: Path) -> list[str]:
    """Targets of the markdown links of a file, outside code blocks and code spans."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in _links(doc):
        if re.match(r"[a-z]+:", target):  # http(s)://, mailto: ...
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if path in NOT_YET_WRITTEN and not path.exists():
            continue
        missing_anchor = bool(anchor) and path.suffix == ".md" and path.exists() and anchor not in _anchors(path)
        if not path.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{doc.relative_to(REPO)}: links to nothing: {broken}"


def test_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# A title\n[ok](#a-title) [bad](missing.md) `[code](skipped.md)` [web](https://example.org)\n")
    assert _links(doc) == ["#a-title", "missing.md", "https://example.org"]
    assert _anchors(doc) == {"a-title"}
