"""VCF input: variants read with pysam, split into one row per ALT allele and checked against the genome."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from dnalm.io.errors import InputError

#: Columns of a normalised variant table before the VCF's INFO fields (`INFO/<key>`).
COLUMNS = ["chrom", "pos", "id", "ref", "alt"]
#: Why a VCF allele is not scored, in the order the info JSON lists them.
SKIPS = ("ref_mismatch", "symbolic", "non_acgt")
#: Mismatching records named per VCF in the info JSON (and the log).
MISMATCH_EXAMPLES = 10

_ACGT = re.compile(r"[ACGT]+")


def read_vcf(path: str, source: str, fetch: Callable[[str, int, int], str], chrom_sizes: Mapping[str, int],
             rename: Callable[[str], str] = str, error: type[InputError] = InputError) -> tuple[pd.DataFrame, dict]:
    """Read a VCF (plain, gzip or bgzip) into one row per ALT allele, checked against the genome.

    A record whose chromosome (after `rename`) is not in the genome stops the read: every such name is listed with
    the genome's, so the config's `chrom_aliases` can be fixed before anything runs. Alleles that cannot be scored are
    skipped and counted, never silently scored: REF differs from the genome (`ref_mismatch`, the first
    `MISMATCH_EXAMPLES` named), a symbolic or missing ALT (`<DEL>`, `*`, `.`, breakends: `symbolic`), or a base other
    than A, C, G, T in REF or ALT (`non_acgt`). Letter case is ignored.

    Args:
        path: The VCF file.
        source: Its name in errors (the config's URL or path).
        fetch: Genome sequence of (chrom, 0-based start, end).
        chrom_sizes: The genome's chromosome lengths.
        rename: Chromosome name in the VCF → name in the genome (the species' `chrom_aliases`).
        error: The error class to raise.

    Returns:
        (table, counts): columns `COLUMNS` (pos 1-based as in the VCF; a missing ID becomes
        `<chrom>:<pos>:<ref>>:<alt>`) then `INFO/<key>` per INFO field of the header (a Number=A field gets the
        allele's value, Number=R the reference's and the allele's; flags are true/false), in file order; and the
        counts `records`, `alleles`, `kept`, one per `SKIPS`, and `mismatches` (examples).

    Raises:
        InputError: An instance of `error` if the file is not a readable VCF, names a chromosome the genome lacks,
            or places a REF past its chromosome's end.
    """
    import pysam

    try:
        vcf = pysam.VariantFile(path)
    except (OSError, ValueError) as exc:
        raise error(f"{source}: not a readable VCF ({exc}); give a VCF file, plain or (b)gzipped") from exc
    with vcf:
        info_keys = list(vcf.header.info)
        numbers = {key: vcf.header.info[key].number for key in info_keys}
        rows, counts, mismatches, unknown = [], dict.fromkeys(("records", "alleles", "kept", *SKIPS), 0), [], {}
        try:
            for number, record in enumerate(vcf, start=1):
                counts["records"] += 1
                chrom = rename(record.chrom)
                if chrom not in chrom_sizes:
                    unknown.setdefault(record.chrom, number)
                    continue
                ref = record.ref.upper()
                start = record.pos - 1
                if start + len(ref) > chrom_sizes[chrom]:
                    raise error(f"{source}: record {number} ({record.chrom}:{record.pos}) has REF {record.ref} "
                                f"past the end of {chrom} ({chrom_sizes[chrom]} bp); is this VCF of another "
                                "assembly?")
                genome_ref = fetch(chrom, start, start + len(ref)).upper()
                for allele, alt in enumerate(record.alts or (None,)):
                    counts["alleles"] += 1
                    skip = _skip(ref, genome_ref, alt)
                    if skip:
                        counts[skip] += 1
                        if skip == "ref_mismatch" and len(mismatches) < MISMATCH_EXAMPLES:
                            mismatches.append(f"record {number} ({record.chrom}:{record.pos}): REF {record.ref}, "
                                              f"genome {genome_ref}")
                        continue
                    alt = alt.upper()
                    name = record.id or f"{chrom}:{record.pos}:{ref}>{alt}"
                    info = {f"INFO/{key}": _info_value(record.info, key, numbers[key], allele)
                            for key in info_keys}
                    rows.append({"chrom": chrom, "pos": record.pos, "id": name, "ref": ref, "alt": alt, **info})
                    counts["kept"] += 1
        except (OSError, ValueError) as exc:
            raise error(f"{source}: unreadable VCF record after record {counts['records']} ({exc}); fix or "
                        "remove it") from exc
    if unknown:
        listed = ", ".join(f"{name!r} (first at record {n})" for name, n in list(unknown.items())[:10])
        raise error(f"{source}: chromosome names not in the genome: {listed}; the genome has "
                    f"{', '.join(list(chrom_sizes)[:30])}. Map the VCF's names with the species' chrom_aliases "
                    "in the config")
    table = pd.DataFrame(rows, columns=[*COLUMNS, *(f"INFO/{key}" for key in info_keys)])
    return table, {**counts, "mismatches": mismatches}


def _skip(ref: str, genome_ref: str, alt: str | None) -> str | None:
    """Why an allele is not scored (a key of `SKIPS`), or None."""
    if alt is None or alt.startswith("<") or alt in ("*", ".") or "[" in alt or "]" in alt:
        return "symbolic"
    if not _ACGT.fullmatch(ref) or not _ACGT.fullmatch(alt.upper()):
        return "non_acgt"
    if ref != genome_ref:
        return "ref_mismatch"
    return None


def _info_value(info: Any, key: str, number: Any, allele: int) -> Any:
    """One INFO field's value for ALT number `allele` (0-based): the allele's own for Number=A, the reference's and
    the allele's for Number=R, else the whole value; lists joined with ','."""
    if number == 0:  # a Flag
        return key in info
    if key not in info:
        return None
    value = info[key]
    if isinstance(value, float) or isinstance(value, tuple) and value and isinstance(value[0], float):
        value = tuple(_float(v) for v in value) if isinstance(value, tuple) else _float(value)
    if isinstance(value, tuple):
        if number == "A" and allele < len(value):
            value = value[allele]
        elif number == "R" and allele + 1 < len(value):
            value = (value[0], value[allele + 1])
        if isinstance(value, tuple):
            return ",".join(str(v) for v in value)
    return value


def _float(value: float | None) -> float | None:
    """A VCF Float (single precision) as the number written in the file (7 significant digits)."""
    return None if value is None else float(f"{value:.7g}")
