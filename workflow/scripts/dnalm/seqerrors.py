"""Sequencing errors simulated on true sequences: substitutions, insertions and deletions, their per-base tags.

The simulator walks along a true sequence (uint8 codes A0 C1 G2 T3 N4). Each true base is deleted with probability
`deletion`; a kept base is substituted with probability `substitution` (N is never substituted; the new base is
drawn from the row of `substitution_matrix`); after each true base (kept or deleted) insertions follow, each with
probability `insertion` (a geometric run). Inside a homopolymer of at least `homopolymer.min_length` equal bases the
insertion and deletion probabilities are multiplied by `homopolymer.factor` and an inserted base repeats the run's
base (the indel profile of nanopore and PacBio reads). The noisy sequence is cut to a fixed width; the true
sequence is read long enough for that (`true_length`), and padded with N (all tags 0) in the rare case it runs out.

Tags (channels of every noisy base, 0/1, not exclusive: a substituted base may also sit next to a deletion):
`substitution`, `insertion`, `deletion_after` (true bases were deleted between this noisy base and the next) and
`deletion_before` (... between the previous noisy base and this one). The two deletion channels mark the same gap
from its two sides, so reverse-complementing a window swaps them (`RC_PERM`) and crops of a window keep every gap
they contain. Tags follow the simulated edits, not a minimal alignment: an indel inside a homopolymer is tagged where
it was made, although an aligner could place it anywhere in the run.

A window's errors depend only on (seed, window id, copy) (`window_rng`), so the same config gives the same data
whatever other windows are kept. `simulate` returns the true sequence the noisy one covers and the edits, so a
sequence-to-sequence task (restore the true sequence) reuses it unchanged.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

#: Error kinds and their config keys (`tasks.<id>.errors.rates`).
KINDS = ("substitution", "insertion", "deletion")
#: Tag channels of a noisy base, in store order.
CHANNELS = ("substitution", "insertion", "deletion_after", "deletion_before")
#: The channel permutation of reverse-complementing a window (the two sides of a deletion swap).
RC_PERM = [0, 1, 3, 2]
#: Highest per-base indel probability after the homopolymer factor.
MAX_INDEL = 0.9
#: The code of N; padding and unknown bases.
N_CODE = 4


@dataclass(frozen=True)
class ErrorProfile:
    """Error rates per kind, the substitution matrix (rows: true A, C, G, T; the new base's probabilities, diagonal
    0, rows summing to 1) and the homopolymer indel factor."""

    substitution: float = 0.0
    insertion: float = 0.0
    deletion: float = 0.0
    matrix: np.ndarray = field(default_factory=lambda: uniform_matrix())
    homopolymer_length: int = 4
    homopolymer_factor: float = 1.0

    @classmethod
    def from_config(cls, block: dict, where: str = "errors") -> ErrorProfile:
        """A profile from a config block (`rates`, `substitution_matrix`, `homopolymer`); errors name the key.

        Raises:
            ValueError: An unknown error kind, a rate outside [0, 0.5], a matrix that is not 4 × 4 with
                non-negative entries and an off-diagonal sum > 0 per row, or a homopolymer setting out of range.
        """
        rates = dict(block.get("rates") or {})
        unknown = sorted(set(rates) - set(KINDS))
        if unknown:
            raise ValueError(f"{where}.rates: unknown error kind(s) {unknown}; known: {', '.join(KINDS)}")
        for kind, rate in rates.items():
            if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 0.5:
                raise ValueError(f"{where}.rates.{kind}: {rate!r} is not a probability per base in [0, 0.5]")
        hp = dict(block.get("homopolymer") or {})
        length, factor = int(hp.get("min_length", 4)), float(hp.get("factor", 1.0))
        if length < 2 or factor < 0:
            raise ValueError(f"{where}.homopolymer: min_length must be ≥ 2 and factor ≥ 0 (got {length}, {factor})")
        matrix = block.get("substitution_matrix")
        return cls(**{k: float(rates.get(k, 0.0)) for k in KINDS},
                   matrix=uniform_matrix() if matrix is None else check_matrix(matrix, f"{where}.substitution_matrix"),
                   homopolymer_length=length, homopolymer_factor=factor)


def uniform_matrix() -> np.ndarray:
    """Every other base equally likely (1/3 each)."""
    return (np.ones((4, 4)) - np.eye(4)) / 3


def check_matrix(matrix, where: str) -> np.ndarray:
    """A 4 × 4 substitution matrix (rows true A, C, G, T; columns the new base), the diagonal ignored and each row
    normalised to sum to 1.

    Raises:
        ValueError: Not 4 × 4 numbers, a negative entry, or a row whose off-diagonal entries sum to 0.
    """
    try:
        m = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: not a 4 × 4 table of numbers ({err})") from err
    if m.shape != (4, 4) or not np.isfinite(m).all() or (m < 0).any():
        raise ValueError(f"{where}: must be 4 rows (true A, C, G, T) of 4 non-negative numbers (new A, C, G, T)")
    m[np.eye(4, dtype=bool)] = 0
    sums = m.sum(axis=1)
    if (sums <= 0).any():
        row = "ACGT"[int(np.argmin(sums))]
        raise ValueError(f"{where}: row {row} has no substitution (its entries off the diagonal sum to 0)")
    return m / sums[:, None]


@dataclass
class NoisyRead:
    """One simulated read of a fixed width.

    Attributes:
        noisy: (width,) uint8 codes of the noisy sequence.
        tags: (4, width) uint8, the `CHANNELS` of every noisy base.
        true: uint8 codes of the true bases the noisy sequence covers (those whose place is inside the width).
        source: (width,) index in `true` of each noisy base; -1 for an inserted base, -2 for padding.
        edits: Structured array of the edits (fields `pos`: index in `true`, `kind`: 0 substitution, 1 insertion
            after `pos`, 2 deletion of `pos`; `base`: the new or inserted base, N_CODE for deletions), in order.
        padded: Bases of N padding at the end (the true sequence ran out).
    """

    noisy: np.ndarray
    tags: np.ndarray
    true: np.ndarray
    source: np.ndarray
    edits: np.ndarray
    padded: int = 0


EDIT_DTYPE = np.dtype([("pos", np.int64), ("kind", np.int8), ("base", np.uint8)])


def window_rng(seed: int, window: str, copy: int = 0) -> np.random.Generator:
    """The generator of one window's errors: from the seed, the window id (CRC-32) and the copy number."""
    return np.random.default_rng([int(seed), zlib.crc32(window.encode()), int(copy)])


def true_length(width: int, profile: ErrorProfile) -> int:
    """True bases to read for a noisy sequence of `width` bases: enough unless deletions exceed their expected
    count by far (expected noisy bases per true base, at the highest indel rates, with 8 sd of margin)."""
    factor = max(1.0, profile.homopolymer_factor)
    d = min(MAX_INDEL, profile.deletion * factor)
    i = min(MAX_INDEL, profile.insertion * factor)
    per_base = max(0.05, 1 - d + i / (1 - i))
    need = width / min(per_base, 1.0)
    return math.ceil(need + 8 * math.sqrt(width) + 16)


def homopolymer_mask(true: np.ndarray, min_length: int) -> np.ndarray:
    """Whether each base lies in a run of at least `min_length` equal bases (N never counts)."""
    if len(true) == 0:
        return np.zeros(0, dtype=bool)
    starts = np.flatnonzero(np.r_[True, true[1:] != true[:-1]])
    lengths = np.diff(np.r_[starts, len(true)])
    return np.repeat(lengths >= min_length, lengths) & (true < N_CODE)


def simulate(true: np.ndarray, width: int, profile: ErrorProfile, rng: np.random.Generator) -> NoisyRead:
    """Errors of `profile` on the true codes `true`; the noisy sequence cut (or N-padded) to `width` bases.

    Args:
        true: uint8 codes of the true sequence (at least `true_length(width, profile)` to avoid padding).
        width: Bases of the noisy sequence.
        profile: The error rates.
        rng: The window's generator (`window_rng`).

    Returns:
        The `NoisyRead`.
    """
    true = np.asarray(true, dtype=np.uint8)
    n = len(true)
    hp = homopolymer_mask(true, profile.homopolymer_length)
    scale = np.where(hp, profile.homopolymer_factor, 1.0)
    p_del = np.minimum(profile.deletion * scale, MAX_INDEL)
    p_ins = np.minimum(profile.insertion * scale, MAX_INDEL)
    deleted = rng.random(n) < p_del
    substituted = ~deleted & (rng.random(n) < profile.substitution) & (true < N_CODE)
    cumulative = np.cumsum(profile.matrix, axis=1)[np.minimum(true, 3)]
    new_base = (rng.random(n)[:, None] > cumulative[:, :3]).sum(axis=1).astype(np.uint8)
    n_ins = rng.geometric(1 - p_ins) - 1
    random_ins = rng.integers(0, 4, int(n_ins.sum())).astype(np.uint8)
    return _assemble(true, width, deleted, substituted, new_base, n_ins, hp, random_ins)


def _assemble(true, width, deleted, substituted, new_base, n_ins, hp, random_ins) -> NoisyRead:
    """The noisy sequence, tags, covered true bases and edits of drawn events (see `simulate`)."""
    keep = (~deleted).astype(np.int64)
    block = keep + n_ins  # noisy bases each true base's place contributes: itself (if kept), then its insertions
    start = np.cumsum(block) - block  # noisy index where each true base's place starts
    total = int(block.sum())
    covered = int(np.searchsorted(start, width, side="left"))  # true bases whose place starts inside the width
    owner = np.repeat(np.arange(len(true)), block)
    offset = np.arange(total) - start[owner]
    is_ins = offset >= keep[owner]
    base = np.where(substituted, new_base, true)[owner]
    ins_owner = owner[is_ins]  # an insertion in a homopolymer repeats its base, elsewhere it is random
    base[is_ins] = np.where(hp[ins_owner], true[ins_owner], random_ins[: len(ins_owner)])
    noisy = np.full(width, N_CODE, dtype=np.uint8)
    source = np.full(width, -2, dtype=np.int64)
    tags = np.zeros((len(CHANNELS), width), dtype=np.uint8)
    m = min(width, total)
    noisy[:m] = base[:m]
    source[:m] = np.where(is_ins, -1, owner)[:m]
    tags[0, :m] = (substituted[owner] & ~is_ins)[:m]
    tags[1, :m] = is_ins[:m]
    gaps = np.unique(start[:covered][deleted[:covered]])  # the noisy index right after each deletion
    tags[2, gaps[(gaps >= 1) & (gaps <= m)] - 1] = 1
    tags[3, gaps[gaps < m]] = 1
    edits = _edits(covered, deleted, substituted, new_base, owner, is_ins, base, m)
    return NoisyRead(noisy, tags, true[:covered].copy(), source, edits, padded=width - m)


def _edits(covered, deleted, substituted, new_base, owner, is_ins, base, m) -> np.ndarray:
    """The edits inside the noisy sequence's width, in true-sequence order (an insertion after its base)."""
    subs = np.flatnonzero(substituted[:covered])
    dels = np.flatnonzero(deleted[:covered])
    ins = np.flatnonzero(is_ins[:m])
    pos = np.concatenate([subs, dels, owner[ins]])
    kind = np.concatenate([np.zeros(len(subs)), np.full(len(dels), 2), np.ones(len(ins))]).astype(np.int8)
    bases = np.concatenate([new_base[subs], np.full(len(dels), N_CODE), base[ins]]).astype(np.uint8)
    order = np.lexsort((np.concatenate([np.zeros(len(subs) + len(dels)), ins]), kind == 1, pos))
    out = np.empty(len(pos), dtype=EDIT_DTYPE)
    out["pos"], out["kind"], out["base"] = pos[order], kind[order], bases[order]
    return out


def apply_edits(true: np.ndarray, edits: np.ndarray) -> np.ndarray:
    """The sequence the edits make of `true`: a plain loop, the reference `simulate` is checked against.

    Each true base is dropped if deleted, replaced if substituted, then followed by its insertions in order.
    """
    by_pos: dict[int, list] = {}
    for e in edits:
        by_pos.setdefault(int(e["pos"]), []).append((int(e["kind"]), int(e["base"])))
    out = []
    for i, b in enumerate(np.asarray(true, dtype=np.uint8)):
        ops = by_pos.get(i, [])
        if not any(k == 2 for k, _ in ops):
            subs = [x for k, x in ops if k == 0]
            out.append(subs[0] if subs else int(b))
        out.extend(x for k, x in ops if k == 1)
    return np.array(out, dtype=np.uint8)


def observed_rates(reads: list[NoisyRead]) -> dict[str, tuple[int, int]]:
    """(events, trials) per kind over reads, as the simulator draws them: substitutions per kept ACGT base,
    deletions per true base, insertions per insertion trial (a run after each true base ends at its first failure:
    trials = true bases + insertions)."""
    subs = dels = ins = kept_acgt = n_true = 0
    for r in reads:
        kinds = r.edits["kind"]
        subs += int((kinds == 0).sum())
        dels += int((kinds == 2).sum())
        ins += int((kinds == 1).sum())
        deleted = np.zeros(len(r.true), dtype=bool)
        deleted[r.edits["pos"][kinds == 2]] = True
        kept_acgt += int(((r.true < N_CODE) & ~deleted).sum())
        n_true += len(r.true)
    return {"substitution": (subs, kept_acgt), "deletion": (dels, n_true), "insertion": (ins, n_true + ins)}
