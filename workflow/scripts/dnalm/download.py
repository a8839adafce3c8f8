"""Prepare the inputs: fetch, verify, decompress and rename genome FASTA, annotation GFF3/GTF, bigWig tracks and
VCF variants."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from dnalm.io import read_fai, write_json
from dnalm.io.bigwig import check_bigwig, length_mismatches, write_bigwig
from dnalm.io.errors import DownloadError
from dnalm.io.fasta import index_fasta, write_fasta
from dnalm.io.fetch import Raw, Staging, decompress, fetch, read_lines, staged
from dnalm.io.gff import ReversedFeatures, copy_gff3, gtf_to_gff3, is_gtf
from dnalm.io.names import Renamer
from dnalm.io.vcf import read_vcf

log = logging.getLogger(__name__)

#: The shortest genome accepted (bp). A shorter FASTA is a truncated download or the wrong file (one gene, headers
#: only), not an assembly: the smallest known genomes, of circoviruses, are about 1.7 kb, free-living cells' over
#: 100 kb. It is no schema key because no real genome comes near it; it also keeps the later steps off inputs they
#: cannot use (Mash sketches no sequence shorter than its k-mer, and windows are a few hundred bp).
MIN_GENOME_LENGTH = 1_000
#: What a track chromosome whose length differs from the genome's is (`species.<id>.track_lengths`).
TRACK_LENGTHS = ("error", "clip")


class Options(TypedDict, total=False):
    """How an input is fetched and renamed; every key is optional.

    Attributes:
        md5: Expected md5 of the raw bytes, or None to skip the check.
        aliases: Source chromosome name to normalised name.
        search_dirs: Directories in which relative paths are looked up, in order (default: ".").
        retries: Further download attempts after a network error, 5xx or 429 (default 4).
        backoff: Seconds before the first retry, doubled each time (default 1).
        timeout: Network timeout in seconds (default 60).
    """

    md5: str | None
    aliases: Mapping[str, str] | None
    search_dirs: Sequence[str]
    retries: int
    backoff: float
    timeout: float


@dataclass
class Job:
    """One input being prepared: its staged files, raw bytes, name mapping and info.

    Attributes:
        stage: Owner of the temporary files.
        raw: The fetched bytes.
        renamer: Chromosome name mapping.
        directory: The output directory.
        info: Fields added to the info JSON.
    """

    stage: Staging
    raw: Raw
    renamer: Renamer
    directory: str
    info: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def preparing(kind: str, source: str, output: str, info: str, options: Options) -> Iterator[Job]:
    """Fetch an input and, if the block succeeds, write its info JSON and move every staged file into place.

    Args:
        kind: "genome", "annotation", "track" or "variants".
        source: An http(s) URL, a ``file://`` URL or a plain path.
        output: The main output file (its directory holds the temporary files).
        info: Output info JSON.
        options: Fetch and rename options.

    Yields:
        The job; the block writes the outputs and adds its fields to ``job.info``, which then holds the whole info.

    Raises:
        TypeError: If an option is not one of `Options`.
    """
    unknown = sorted(set(options) - set(Options.__annotations__))
    if unknown:
        raise TypeError(f"{source}: unknown options {unknown}; expected some of {sorted(Options.__annotations__)}")
    md5 = options.get("md5")
    directory = os.path.dirname(os.path.abspath(output))
    fetch_options = {k: v for k, v in options.items() if k in ("search_dirs", "retries", "backoff", "timeout")}
    with staged() as stage:
        raw = fetch(source, directory, stage, md5=md5, **fetch_options)
        job = Job(stage, raw, Renamer(options.get("aliases"), source), directory)
        yield job
        job.info = {**base_info(kind, raw, md5, job.renamer.renamed), **job.info}
        write_json(job.info, stage.temp(info))
    job.renamer.log()


def base_info(kind: str, raw: Raw, md5: str | None, renamed: Mapping[str, str]) -> dict[str, Any]:
    """Build the fields every info JSON has.

    Args:
        kind: "genome", "annotation", "track" or "variants".
        raw: The fetched input.
        md5: The configured md5, or None.
        renamed: Chromosome names that changed.

    Returns:
        The info dictionary.
    """
    return {
        "kind": kind,
        "source": raw.source,
        "resolved": raw.resolved,
        "md5": raw.md5,
        "md5_expected": md5.strip().lower() if md5 else None,
        "bytes": raw.size,
        "gzip": raw.gzip,
        "renamed": dict(renamed),
    }


def prepare_genome(source: str, fasta: str, fai: str, info: str, **options: Unpack[Options]) -> dict[str, Any]:
    """Fetch a genome FASTA, rename its records and write it with its .fai and info JSON.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path, gzip or plain.
        fasta: Output FASTA (decompressed, 60 bases a line).
        fai: Output samtools index of ``fasta``.
        info: Output info JSON.
        **options: Fetch and rename options (`Options`).

    Returns:
        The info dictionary, with "sequences" and "length".

    Raises:
        DownloadError: If the source cannot be fetched, verified or parsed, has a record without sequence, or is
            shorter than `MIN_GENOME_LENGTH`.
    """
    with preparing("genome", source, fasta, info, options) as job:
        temp_fasta = job.stage.temp(fasta)
        with open(temp_fasta, "w") as out:
            sequences, length = write_fasta(read_lines(job.raw), out, job.renamer, source, DownloadError)
        if length < MIN_GENOME_LENGTH:
            raise DownloadError(
                f"{source}: the genome has {length} bp in {sequences} record(s), fewer than the {MIN_GENOME_LENGTH} bp "
                "of the smallest genome accepted; is this the assembly? fetch it again or fix the source in the config"
            )
        job.stage.pending.append((temp_fasta + ".fai", fai))
        index_fasta(temp_fasta)
        job.info.update(sequences=sequences, length=length)
    log.info("%s: %d sequences, %d bp -> %s", source, sequences, length, fasta)
    return job.info


def prepare_annotation(source: str, gff3: str, info: str, **options: Unpack[Options]) -> dict[str, Any]:
    """Fetch a GFF3 or GTF annotation, rename its seqids and write it as GFF3 with an info JSON.

    A GTF is converted by gffread (see docs/gtf.md for what changes on the way).

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path, gzip or plain.
        gff3: Output GFF3.
        info: Output info JSON.
        **options: Fetch and rename options (`Options`).

    Returns:
        The info dictionary, with "features", "format" ("gff3" or "gtf"), "reversed_features" (the count and first
        line numbers of the features whose start is after their end, which are left out) and, for a GTF, "gffread"
        (its version).

    Raises:
        DownloadError: If the source cannot be fetched or verified, a line is malformed, gffread fails, or every
            feature has its start after its end.
    """
    with preparing("annotation", source, gff3, info, options) as job:
        gtf = is_gtf(read_lines(job.raw))
        job.info.update(format="gtf" if gtf else "gff3")
        skipped = ReversedFeatures(source)
        with open(job.stage.temp(gff3), "w") as out:
            out.write("##gff-version 3\n")
            if gtf:
                lines, rename = read_lines(job.raw), job.renamer
                features, job.info["gffread"] = gtf_to_gff3(lines, out, rename, skipped, job.directory, DownloadError)
            else:
                features = copy_gff3(read_lines(job.raw), out, job.renamer, skipped, DownloadError)
        skipped.check(features, DownloadError)
        job.info.update(features=features, reversed_features=skipped.info())
    log.info("%s: %d features (%s) -> %s", source, features, job.info["format"], gff3)
    return job.info


def prepare_track(
    source: str,
    bigwig: str,
    info: str,
    genome: str | None = None,
    track_lengths: str = "error",
    species: str | None = None,
    **options: Unpack[Options],
) -> dict[str, Any]:
    """Fetch a bigWig track, read it whole, rename its chromosomes, compare them with the genome and write it.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path (gzip is undone).
        bigwig: Output bigWig.
        info: Output info JSON.
        genome: The genome's ``.fai``; None skips the comparison of chromosome lengths.
        track_lengths: What a chromosome whose length differs from the genome's is: "error", or "clip" (it gets
            the genome's length, values past the genome's end are dropped).
        species: Species id, named in the config key of errors.
        **options: Fetch and rename options (`Options`).

    Returns:
        The info dictionary, with "chroms" and "clipped" (chromosome → its length in the track and in the genome,
        and the bases with a value dropped).

    Raises:
        DownloadError: If the source cannot be fetched or verified, is not an intact bigWig, or a chromosome's length
            differs from the genome's with ``track_lengths`` "error".
    """
    if track_lengths not in TRACK_LENGTHS:
        raise ValueError(f"track_lengths must be one of {TRACK_LENGTHS}, not {track_lengths!r}")
    with preparing("track", source, bigwig, info, options) as job:
        plain = job.raw.path
        if job.raw.gzip:
            plain = job.stage.scratch_file(job.directory, "bigwig")
            decompress(job.raw, plain)
        chroms = check_bigwig(plain, source, DownloadError)
        names = {name: job.renamer(name) for name in chroms}
        sizes = {names[name]: size for name, size in chroms.items()}
        fitted = fit_to_genome(sizes, genome, source, track_lengths, species)
        dropped = write_bigwig(plain, job.stage.temp(bigwig), names, {**sizes, **fitted})
        clipped = {
            name: {"track": sizes[name], "genome": length, "bases_dropped": dropped.get(name, 0)}
            for name, length in fitted.items()
        }
        job.info.update(chroms=len(chroms), clipped=clipped)
    log.info("%s: %d chromosomes -> %s", source, len(chroms), bigwig)
    return job.info


def fit_to_genome(
    sizes: Mapping[str, int], fai: str | None, source: str, track_lengths: str, species: str | None
) -> dict[str, int]:
    """Compare a track's chromosome lengths with the genome's: stop, or say which to clip.

    Chromosomes of the track that the genome lacks are left alone here: the rules that read the track check its
    names against the genome and the task.

    Args:
        sizes: The track's chromosome sizes (names after `chrom_aliases`).
        fai: The genome's ``.fai``, or None to compare nothing.
        source: The track's source, named in errors.
        track_lengths: "error" or "clip".
        species: Species id, named in the config key of errors.

    Returns:
        Chromosome → the genome's length, for each chromosome whose length differs (to be clipped).

    Raises:
        DownloadError: If a length differs and ``track_lengths`` is "error".
    """
    mismatched = length_mismatches(sizes, read_fai(fai)) if fai is not None else {}
    listing = ", ".join(
        f"{name!r} is {track} bp in the track, {length} bp in the genome" for name, (track, length) in mismatched.items()
    )
    if mismatched and track_lengths == "error":
        raise DownloadError(
            f"{source}: chromosome lengths differ from the genome's ({fai}): {listing}. Use the track made on this "
            f"assembly, or set species.{species or '<id>'}.track_lengths: clip to give the track the genome's "
            "lengths (values past the genome's end are dropped)"
        )
    if mismatched:
        log.warning("%s: clipped to the genome's lengths (track_lengths: clip): %s", source, listing)
    return {name: length for name, (_, length) in mismatched.items()}


def prepare_variants(source: str, table: str, info: str, genome: str, **options: Unpack[Options]) -> dict[str, Any]:
    """Fetch a VCF, check it against the genome and write its variants as a table, one row per ALT allele.

    Args:
        source: An http(s) URL, a ``file://`` URL or a plain path; plain, gzip or bgzip.
        table: Output TSV (`dnalm.io.vcf.read_vcf`'s columns: chrom, pos, id, ref, alt, INFO/<key>...).
        info: Output info JSON.
        genome: The species' genome FASTA (indexed), whose chromosome names the VCF's must match after the aliases.
        **options: Fetch and rename options (`Options`).

    Returns:
        The info dictionary, with the counts of `read_vcf` (records, alleles, kept, each reason to skip, mismatch
        examples).

    Raises:
        DownloadError: If the source cannot be fetched or verified, is not a VCF, names a chromosome the genome
            lacks, or has a REF past a chromosome's end.
    """
    from dnalm.io.fasta import open_fasta

    with preparing("variants", source, table, info, options) as job, open_fasta(genome) as fasta:
        plain = job.raw.path
        if job.raw.gzip:  # htslib reads bgzip only; a plain gzip is undone first
            plain = job.stage.scratch_file(job.directory, "vcf")
            decompress(job.raw, plain)
        sizes = read_fai(genome + ".fai")
        variants, counts = read_vcf(plain, source, lambda c, s, e: fasta[c][s:e], sizes, job.renamer,
                                    DownloadError)
        variants.to_csv(job.stage.temp(table), sep="\t", index=False)
        job.info.update(counts)
    skipped = {k: counts[k] for k in ("ref_mismatch", "symbolic", "non_acgt") if counts[k]}
    log.info("%s: %d records, %d alleles kept -> %s%s", source, counts["records"], counts["kept"], table,
             f"; skipped {skipped}" if skipped else "")
    for example in counts["mismatches"]:
        log.warning("%s: REF differs from the genome, not scored: %s", source, example)
    return job.info
