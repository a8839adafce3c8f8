"""Labelled examples of classification tasks: read from intervals, FASTA or tables, checked, and written as windows.

Every example becomes one record of `examples.fa`, named by its id: its sequence with `window.flank` bases on each
side (genome sequence for intervals, N for sequences given without context), oriented along its strand. The window
table (`dnalm.windows.WINDOW_COLUMNS`, then `label`, `given_split` and the interval's `source_*` coordinates) places
each window at bases flank … flank + length of its record, so the homology filter and the window store read every
kind of example the same way, and chromosome or fold splits read the `source_*` coordinates of intervals.

`examples.shuffled_negatives` adds, for every example of its classes, dinucleotide-preserving shuffles of the
example's sequence (its flanks kept) labelled as a negative class: negatives of the positives' own composition, so a
classifier cannot tell the classes apart by composition alone. A shuffle keeps its example's coordinates and given
split, so it lands in the same split.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.io import write_tsv
from dnalm.io.errors import InputError
from dnalm.io.fasta import FastaCache, index_fasta, parse_fasta
from dnalm.io.fetch import fetch, read_lines, staged
from dnalm.windows import WINDOW_COLUMNS

log = logging.getLogger(__name__)

EXAMPLE_COLUMNS = [*WINDOW_COLUMNS, "label", "given_split", "source_chrom", "source_start", "source_end",
                   "source_strand"]
#: Splits of a table's given files (dev is the validation split).
GIVEN = {"train": "train", "dev": "val", "test": "test"}
_LABEL = re.compile(r"(?:^|\s)label=(\S+)")
_BASES = re.compile(r"[^ACGTNacgtn]")
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


class ExampleError(InputError):
    """A labelled example that cannot be used, named by file and record."""


@dataclass
class Example:
    """One labelled example: its id, class, where it comes from, and its sequence or genome interval."""

    id: str
    label: str
    source: str
    record: str
    sequence: str = ""
    split: str = ""
    chrom: str = ""
    start: int = 0
    end: int = 0
    strand: str = "+"
    shuffle: int | None = None  # seed of a dinucleotide shuffle of the sequence (shuffled negatives)


# -------------------------------------------------------------------------------------------------------- readers
def _lines(source: str, stage, search_dirs: Sequence[str], md5: str | None = None) -> Iterator[tuple[int, str]]:
    raw = fetch(source, "results/.downloads", stage, search_dirs, md5)
    yield from read_lines(raw)


def fasta_examples(entry: dict, stage, search_dirs: Sequence[str]) -> list[Example]:
    """Examples of one labelled FASTA (`label`: every record's class; None: each header's `label=<class>`)."""
    source = entry.get("url") or entry["path"]
    lines = list(_lines(source, stage, search_dirs, entry.get("md5")))
    headers = {number: line for number, line in lines if line.startswith(">")}
    records: list[Example] = []
    for number, name, bases in parse_fasta(lines, source, ExampleError):
        if name is None:
            records[-1].sequence += bases
            continue
        label = entry.get("label")
        if label is None:
            found = _LABEL.search(headers[number])
            if not found:
                raise ExampleError(f"{source}, line {number}: record {name!r} has no label=<class> in its header "
                                   f"({headers[number]!r}); add one, or give the file's label in the config")
            label = found.group(1)
        records.append(Example(id=name, label=label, source=source, record=f"record {name!r} (line {number})"))
    return records


def table_examples(path: str, split: str, stage, search_dirs: Sequence[str]) -> list[Example]:
    """Examples of a sequence,label table (CSV; TSV by a .tsv name), optionally with id and split columns."""
    text = "\n".join(line for _, line in _lines(path, stage, search_dirs))
    delimiter = "\t" if re.search(r"\.tsv(\.gz)?$", path) else ","
    rows = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    missing = {"sequence", "label"} - set(rows.fieldnames or [])
    if missing:
        raise ExampleError(f"{path}, line 1: no column {', '.join(sorted(missing))} (the header has "
                           f"{', '.join(rows.fieldnames or [])}); a table needs sequence and label columns")
    stem = re.sub(r"\W+", "_", Path(path).name.split(".")[0])
    return [Example(id=row.get("id") or f"{stem}_{i}", label=row["label"], source=path,
                    record=f"line {i + 2}", sequence=row["sequence"], split=split or row.get("split", ""))
            for i, row in enumerate(rows)]


def interval_examples(source: str, stage, search_dirs: Sequence[str], md5: str | None = None) -> list[Example]:
    """Examples of labelled intervals: a TSV with a header naming chrom, start, end, label (and optionally strand,
    id), or BED6 with a seventh label column."""
    lines = [(n, line) for n, line in _lines(source, stage, search_dirs, md5) if line and not line.startswith("#")]
    if not lines:
        raise ExampleError(f"{source}: no interval; check its source in the config")
    first = lines[0][1].split("\t")
    header = first if {"chrom", "start", "end", "label"} <= set(first) else None
    columns = header or ["chrom", "start", "end", "id", "score", "strand", "label"]
    out = []
    for number, line in lines[1:] if header else lines:
        fields = dict(zip(columns, line.split("\t"), strict=False))
        try:
            start, end = int(fields["start"]), int(fields["end"])
            label = fields["label"]
        except (KeyError, ValueError) as err:
            raise ExampleError(f"{source}, line {number}: not an interval with chrom, start, end and label "
                               f"({err}); columns: {', '.join(columns)}") from err
        out.append(Example(id=fields.get("id") or f"{fields['chrom']}:{start}-{end}", label=label, source=source,
                           record=f"line {number}", chrom=fields["chrom"], start=start, end=end,
                           strand=fields.get("strand", "+") if fields.get("strand") in ("+", "-") else "+"))
    return out


def read_examples(spec: dict, search_dirs: Sequence[str]) -> list[Example]:
    """Every example of a task's `examples` block (intervals, fasta or table)."""
    with staged() as stage:
        if spec.get("intervals"):
            source = spec["intervals"]
            return interval_examples(source.get("url") or source["path"], stage, search_dirs, source.get("md5"))
        if spec.get("fasta"):
            return [e for entry in spec["fasta"] for e in fasta_examples(entry, stage, search_dirs)]
        table = spec["table"]
        files = [(table[k], GIVEN[k]) for k in GIVEN if table.get(k)] or [(table["path"], "")]
        return [e for path, split in files for e in table_examples(path, split, stage, search_dirs)]


def shuffled_negatives(examples: list[Example], spec: dict | None) -> list[Example]:
    """`spec["per_example"]` shuffles of every example of `spec["of"]` (default: every class but `spec["label"]`),
    labelled `spec["label"]`, ids `<id>~shuffle<n>`, seeded by `spec["seed"]` and their place in the input."""
    if not spec or not spec.get("label"):
        return []
    label, per_example, seed = spec["label"], spec.get("per_example", 1), spec.get("seed", 0)
    of = set(spec.get("of") or {e.label for e in examples} - {label})
    if label in of:
        raise ExampleError(f"examples.shuffled_negatives: label {label!r} is also in `of`; shuffles of a class "
                           "are negatives of another class")
    sources = [e for e in examples if e.label in of]
    if not sources:
        raise ExampleError(f"examples.shuffled_negatives: no example has a label in {sorted(of)}")
    return [Example(id=f"{e.id}~shuffle{n + 1}", label=label, source=e.source, record=f"{e.record} (shuffle {n + 1})",
                    sequence=e.sequence, split=e.split, chrom=e.chrom, start=e.start, end=e.end, strand=e.strand,
                    shuffle=seed * 1_000_003 + i * per_example + n)
            for i, e in enumerate(sources) for n in range(per_example)]


def dinucleotide_shuffle(seq: str, seed: int) -> str:
    """A shuffle of `seq` with every dinucleotide count kept (DeepLIFT's `dinuc_shuffle`: each letter's successors
    permuted, the successor of its last occurrence kept, which keeps the walk an Eulerian path); first letter kept."""
    if len(seq) < 3:
        return seq
    rng = np.random.default_rng(seed)
    arr = np.frombuffer(seq.encode(), dtype=np.uint8)
    letters, tokens = np.unique(arr, return_inverse=True)
    successors = []
    for t in range(len(letters)):
        nxt = np.flatnonzero(tokens[:-1] == t) + 1
        if len(nxt) > 1:
            nxt[:-1] = nxt[:-1][rng.permutation(len(nxt) - 1)]
        successors.append(nxt)
    counters, out, at = [0] * len(letters), [tokens[0]], 0
    for _ in range(1, len(tokens)):
        t = tokens[at]
        at = successors[t][counters[t]]
        counters[t] += 1
        out.append(tokens[at])
    return letters[np.asarray(out)].tobytes().decode()


# --------------------------------------------------------------------------------------------------------- checks
def check_examples(examples: list[Example], classes: list[str] | None, every_class: bool = True) -> list[str]:
    """Unique ids, known labels, sequences of A, C, G, T and N only, and (`every_class`) no empty class and at least
    two; returns the class names."""
    if not examples:
        raise ExampleError("the task has no example; check examples in the config")
    seen: dict[str, Example] = {}
    for example in examples:
        if example.id in seen:
            raise ExampleError(f"{example.source}, {example.record}: id {example.id!r} was used before "
                               f"({seen[example.id].source}, {seen[example.id].record}); give every example its own id")
        seen[example.id] = example
        if classes is not None and example.label not in classes:
            raise ExampleError(f"{example.source}, {example.record}: unknown label {example.label!r}; "
                               f"examples.classes are {classes}")
        bad = _BASES.search(example.sequence)
        if bad:
            raise ExampleError(f"{example.source}, {example.record}: letter {bad.group()!r} at base {bad.start() + 1} "
                               "is not A, C, G, T or N")
    names = list(classes) if classes is not None else sorted({e.label for e in examples})
    if not every_class:
        return names
    empty = [c for c in names if not any(e.label == c for e in examples)]
    if empty:
        raise ExampleError(f"examples.classes {empty} have no example; remove them or add examples")
    if len(names) < 2:
        raise ExampleError(f"every example has the label {names[0]!r}; a classification task needs two classes")
    return names


def resize(example: Example, length: int, mode: str) -> Example:
    """The example at `length` bp: as it is, or centred and padded with N / cropped (an interval on the genome)."""
    size = example.end - example.start if example.chrom else len(example.sequence)
    if size == length:
        return example
    if mode == "none":
        raise ExampleError(f"{example.source}, {example.record}: {size} bp, not {length} bp; set examples.resize "
                           "to pad or crop, or examples.length to the examples' length")
    if example.chrom:
        centre = (example.start + example.end) // 2
        example.start, example.end = centre - length // 2, centre - length // 2 + length
        return example
    if size < length and mode == "pad":
        left = (length - size) // 2
        example.sequence = "N" * left + example.sequence + "N" * (length - size - left)
    elif size > length:
        left = (size - length) // 2
        example.sequence = example.sequence[left : left + length]
    else:
        raise ExampleError(f"{example.source}, {example.record}: {size} bp is shorter than {length} bp and "
                           "examples.resize is crop; use pad")
    return example


# ---------------------------------------------------------------------------------------------------------- write
def _record(example: Example, flank: int, genome: FastaCache | None, fasta: str | None) -> str:
    """The record of one example: its sequence with `flank` bases each side, along its strand (the sequence
    shuffled for a shuffled negative)."""
    if not example.chrom:
        record = "N" * flank + example.sequence.upper() + "N" * flank
    else:
        record = genome.seq(fasta, example.chrom, example.start - flank, example.end + flank)
        record = record.translate(_COMPLEMENT)[::-1] if example.strand == "-" else record
    if example.shuffle is None:
        return record
    end = len(record) - flank
    return record[:flank] + dinucleotide_shuffle(record[flank:end], example.shuffle) + record[end:]


def make_examples(spec: dict, out_tsv: str, out_fasta: str, *, species: str, flank: int,
                  search_dirs: Sequence[str], fasta: str | None = None,
                  chroms: dict[str, int] | None = None) -> pd.DataFrame:
    """Read, check and write a classification task's examples (see the module docstring).

    Args:
        spec: The task's `examples` block.
        out_tsv: Window table.
        out_fasta: Records of the examples (indexed).
        species: The task's species id, written in the table.
        flank: Bases of context each side.
        search_dirs: Directories relative sources are looked up in.
        fasta: The species' genome, for intervals.
        chroms: Its chromosome lengths, for intervals (an interval off its chromosome is dropped and counted).

    Returns:
        The window table written.
    """
    examples = read_examples(spec, search_dirs)
    examples += shuffled_negatives(examples, spec.get("shuffled_negatives"))
    classes = check_examples(examples, spec["classes"])
    sizes = {e.end - e.start if e.chrom else len(e.sequence) for e in examples}
    length = spec["length"] or (sizes.pop() if len(sizes) == 1 else None)
    if length is None:
        raise ExampleError(f"examples of {len(sizes)} lengths ({min(sizes)}–{max(sizes)} bp); set examples.length "
                           "and examples.resize (pad or crop)")
    examples = [resize(e, length, spec["resize"]) for e in examples]
    table = write_examples(examples, out_fasta, species=species, flank=flank, length=length, fasta=fasta,
                           chroms=chroms)
    log.info("%d examples of %d bp, classes %s; %d dropped: %s", len(table), length,
             table["label"].value_counts().reindex(classes).to_dict(), int((~table["kept"]).sum()),
             table.loc[~table["kept"], "reason"].value_counts().to_dict())
    write_tsv(table, out_tsv)
    return table


def write_examples(examples: list[Example], out_fasta: str, *, species: str, flank: int, length: int,
                   fasta: str | None = None, chroms: dict[str, int] | None = None,
                   copied: Sequence[tuple[dict, str]] = ()) -> pd.DataFrame:
    """Write the records of examples (and of `copied` (window row, record) pairs first) to an indexed FASTA and
    return their window table (`EXAMPLE_COLUMNS`); an interval whose flanks leave its chromosome gets no record and
    is marked out_of_bounds."""
    rows, genome = [dict(row) for row, _ in copied], FastaCache()
    tmp = Path(out_fasta).with_name(f".{Path(out_fasta).name}.tmp")
    try:
        with open(tmp, "w") as handle:
            handle.writelines(f">{row['id']}\n{record}\n" for row, record in copied)
            for e in examples:
                inside = not e.chrom or (e.start - flank >= 0 and e.end + flank <= (chroms or {}).get(e.chrom, -1))
                if inside:
                    handle.write(f">{e.id}\n{_record(e, flank, genome, fasta)}\n")
                rows.append(_row(e, species, flank, length, inside))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        genome.close()
    tmp.replace(out_fasta)
    index_fasta(out_fasta)
    return pd.DataFrame(rows, columns=EXAMPLE_COLUMNS)


def make_test_set(task: dict, test_set: dict, windows_tsv: str, examples_fasta: str, out_tsv: str, out_fasta: str,
                  *, name: str, search_dirs: Sequence[str], fasta: str | None = None,
                  chroms: dict[str, int] | None = None) -> pd.DataFrame:
    """An extra test set of a classification task: its own examples plus the task's test examples of
    `test_classes` (e.g. study 3's validated promoters against random negatives), all in split test.

    Args:
        task: The task's config block (its examples' classes, length and resize, its flank).
        test_set: The `test_sets.<name>` block: intervals, fasta or table (as examples), and test_classes.
        windows_tsv: The task's filtered window table (its test split).
        examples_fasta: The task's example records.
        out_tsv: Window table of the test set (split test, store rows numbered).
        out_fasta: Its records (indexed).
        name: The test set's name, in errors.
        search_dirs: Directories relative sources are looked up in.
        fasta: The species' genome, for intervals.
        chroms: Its chromosome lengths.

    Returns:
        The window table written.
    """
    from dnalm.splits import renumber_rows
    from dnalm.tasks.classification import class_names
    from dnalm.windows import read_windows

    windows = read_windows(windows_tsv)
    classes = class_names(task, windows["label"].astype(str))
    examples = read_examples({k: test_set.get(k) for k in ("intervals", "fasta", "table")}, search_dirs)
    check_examples(examples, classes, every_class=False)  # a test set may hold some of the classes only
    length = int((windows["end"] - windows["start"]).iloc[0])
    examples = [resize(e, length, task["examples"]["resize"]) for e in examples]
    test = windows[(windows["split"] == "test") & windows["kept"]
                   & windows["label"].astype(str).isin(test_set["test_classes"])]
    taken = {e.id for e in examples} & set(test["id"])
    if taken:
        raise ExampleError(f"test_sets.{name}: ids {sorted(taken)[:3]} are also ids of the task's examples; give the "
                           "test set's examples their own ids")
    records = FastaCache()
    try:
        copied = [(row, records.seq(examples_fasta, row["id"], 0, int(row["end"]) + task["window"]["flank"]))
                  for row in test[EXAMPLE_COLUMNS].to_dict("records")]
    finally:
        records.close()
    table = write_examples(examples, out_fasta, species=task["species"], flank=task["window"]["flank"],
                           length=length, fasta=fasta, chroms=chroms, copied=copied)
    table["split"] = "test"
    renumber_rows(table)
    log.info("test set %s: %d examples, classes %s", name, int(table["kept"].sum()),
             table.loc[table["kept"], "label"].value_counts().to_dict())
    write_tsv(table, out_tsv)
    return table


def _row(e: Example, species: str, flank: int, length: int, inside: bool) -> dict:
    return {"id": e.id, "species": species, "chrom": e.id, "start": flank, "end": flank + length, "strand": "+",
            "site": flank + length // 2, "offset": 0, "reads": 0.0, "merged": 0, "kept": inside,
            "reason": "" if inside else "out_of_bounds", "label": e.label, "given_split": e.split,
            "source_chrom": e.chrom, "source_start": e.start if e.chrom else "",
            "source_end": e.end if e.chrom else "", "source_strand": e.strand if e.chrom else ""}
