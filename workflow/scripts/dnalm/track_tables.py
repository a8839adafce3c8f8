"""Track and target tables: thousands of tracks listed in a TSV instead of YAML by hand (study 2 has 2,488).

`species.<id>.track_table` names a tab-separated file with a header: `name`, `source` (a URL or a path) and optionally
`md5`; each row becomes `species.<id>.tracks.<name>`. `tasks.<id>.target_table` names one with `name` and either
`track` (an unstranded target) or `plus` and `minus` (a stranded one) per row; each row is appended to the task's
`targets`. `expand_tables` merges both into the config before it is validated, so every later check (track names,
md5s, a target's tracks under its species) applies to table rows as to YAML entries. Errors name the file and line.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from dnalm.config import resolve_path

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*$")


def read_table(name: str, repo: str | Path, key: str, required: tuple[str, ...],
               optional: tuple[str, ...] = ()) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of every non-empty row of a tab-separated table with a header, cells stripped.

    Raises:
        ValueError: The file is missing (naming `key`), a required column is missing, a row has more cells than
            the header or an unknown column is present.
    """
    path = resolve_path(name, repo)
    if path is None:
        raise ValueError(f"{key}: table {name!r} not found (relative paths are read from the working directory, "
                         "then the repository)")
    with open(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = [c.strip() for c in next(reader, [])]
        missing = [c for c in required if c not in header]
        unknown = [c for c in header if c not in (*required, *optional)]
        if missing or unknown:
            raise ValueError(f"{path}, line 1: the header must name {', '.join(required)}"
                             f"{' (and optionally ' + ', '.join(optional) + ')' if optional else ''}; "
                             f"{'missing ' + ', '.join(missing) if missing else 'unknown ' + ', '.join(unknown)}")
        rows = []
        for line, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise ValueError(f"{path}, line {line}: {len(cells)} cells, the header has {len(header)}")
            rows.append((line, {h: c.strip() for h, c in zip(header, cells, strict=False) if c.strip()}))
    return rows


def _checked_name(path: str, line: int, row: dict, what: str) -> str:
    name = row.get("name", "")
    if not NAME.match(name):
        raise ValueError(f"{path}, line {line}: {what} name {name!r} must start with a letter and hold only letters, "
                         "digits and _")
    return name


def _tracks(species: str, spec: dict, repo: str | Path) -> None:
    key = f"species.{species}.track_table"
    tracks = spec.setdefault("tracks", {})
    for line, row in read_table(spec["track_table"], repo, key, ("name", "source"), ("md5",)):
        name = _checked_name(spec["track_table"], line, row, "track")
        if name in tracks:
            raise ValueError(f"{spec['track_table']}, line {line}: track {name!r} is listed twice (in the table or "
                             f"under species.{species}.tracks); keep one")
        if "source" not in row:
            raise ValueError(f"{spec['track_table']}, line {line}: track {name!r} has no source (a URL or a path)")
        source = row["source"]
        tracks[name] = {"url" if "://" in source else "path": source, **({"md5": row["md5"]} if "md5" in row else {})}


def _targets(task: str, spec: dict, repo: str | Path) -> None:
    key = f"tasks.{task}.target_table"
    targets = spec.setdefault("targets", [])
    seen = {t.get("name") for t in targets}
    for line, row in read_table(spec["target_table"], repo, key, ("name",), ("track", "plus", "minus")):
        name = _checked_name(spec["target_table"], line, row, "target")
        stranded, single = "plus" in row and "minus" in row, "track" in row
        if stranded == single or ("plus" in row) != ("minus" in row):
            raise ValueError(f"{spec['target_table']}, line {line}: target {name!r} needs either track, or both plus "
                             "and minus")
        if name in seen:
            raise ValueError(f"{spec['target_table']}, line {line}: target {name!r} is listed twice; keep one")
        seen.add(name)
        targets.append({"name": name, **({"plus": row["plus"], "minus": row["minus"]} if stranded
                                         else {"track": row["track"]})})


def expand_tables(cfg: dict, repo: str | Path) -> dict:
    """Merge every `species.<id>.track_table` and `tasks.<id>.target_table` into the config, in place, before
    validation; each merged table's key is set to null, so a second call merges nothing."""
    for species, spec in (cfg.get("species") or {}).items():
        if isinstance(spec, dict) and spec.get("track_table"):
            _tracks(species, spec, repo)
            spec["track_table"] = None
    for task, spec in (cfg.get("tasks") or {}).items():
        if isinstance(spec, dict) and spec.get("target_table"):
            _targets(task, spec, repo)
            spec["target_table"] = None
    return cfg
