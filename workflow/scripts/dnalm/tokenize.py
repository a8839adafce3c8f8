"""Tokenizers of the DNA language models: vocabularies, Hugging Face tokenizer files and fast numpy encoders.

Three layouts (`KINDS`; `LAYOUTS` says where each kind's tokens sit). The two BERT layouts start with the five BERT
special tokens `[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4`:

- `kmer6_species` (SpeciesLM's layout, exactly): the 4,096 6-mers at ids 5–4100 in DNABERT order — letters ordered
  A, T, C, G as the digits 0..3, first letter most significant (`AAAAAA` → 5, `ACGTGC` → 739, `GGGGGG` → 4100) —
  then one token per species (lower-case name) from id 4101 in the given order. A window of L bases becomes
  `[CLS] <species> kmer_1 … kmer_{L-5} [SEP]` with overlapping stride-1 6-mers; a 6-mer containing a base other than
  A, C, G, T becomes `[UNK]`.
- `nucleotide` (one token per base, ENBED's byte-level idea): `A=5 C=6 G=7 T=8`, species from id 9; a window of L
  bases becomes `[CLS] <species> b_1 … b_L [SEP]`; any other base becomes `[UNK]`.

and the Nucleotide Transformer's (InstaDeep; `nucleotide_transformer/tokenizers.py`, and the `vocab.txt` of its
Hugging Face checkpoints, e.g. InstaDeepAI/nucleotide-transformer-500m-human-ref):

- `nt6`: `<unk>=0 <pad>=1 <mask>=2 <cls>=3`, the 4,096 6-mers at ids 4–4099 in the same A, T, C, G order
  (`AAAAAA` → 4, `ACGTAC` → 726, `GGGGGG` → 4099), the single bases `A=4100 T=4101 C=4102 G=4103 N=4104`, then
  `<eos>=4105 <bos>=4106` (in the vocabulary file, never in an input: NT v1 models' embedding tables end at N,
  `vocab_size` 4105). A window becomes `<cls>` then its tokens, no end token: each stretch between Ns is cut into
  non-overlapping 6-mers from its left end, the 0–5 bases left at its right end are single-base tokens, and each N
  is the token `N`, as NT's `NucleotidesKmersTokenizer` does (`ACGTACGTA` → `<cls> ACGTAC G T A`). So windows with
  Ns in different places have different token counts: `encode` pads them with `<pad>` on the right. No species
  tokens: NT has none.

The code tokenizes with the numpy encoders (`encode`) from the uint8 base codes of `dnalm.store` (A0 C1 G2 T3, N 4).
The Hugging Face tokenizer saved with each model (`save_tokenizer`, loadable with `AutoTokenizer` alone) gives the
same ids for the text made by `to_text`: the species token, then for nucleotides the raw sequence
(`"candida_glabrata ACGTTGCA"`), for 6-mers the overlapping 6-mers separated by spaces, as DNABERT and SpeciesLM
take them (`"candida_glabrata ACGTGC CGTGCA …"`); for `nt6` the raw sequence, as NT's users give it. Species tokens
are added tokens, so names with `_` stay one token.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
#: The Nucleotide Transformer's special tokens (ids 0-3), and `<eos>`, `<bos>` after its bases.
NT_SPECIALS = ["<unk>", "<pad>", "<mask>", "<cls>"]
NT_TAIL = ["<eos>", "<bos>"]
K = 6
KINDS = ("kmer6_species", "nucleotide", "nt6")
#: DNABERT digit of each `dnalm.store` base code (A0 C1 G2 T3): A→0, C→2, G→3, T→1.
DIGIT_OF_CODE = np.array([0, 2, 3, 1], dtype=np.int64)
#: Place value of each of the six letters of a k-mer (first letter most significant).
PLACE = 4 ** np.arange(K - 1, -1, -1, dtype=np.int64)
#: Id of the first base token of the nucleotide vocabulary (A; then C, G, T).
BASE_START = len(SPECIALS)
_SPECIES_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def kmers() -> list[str]:
    """The 4,096 6-mers in DNABERT order (A, T, C, G as digits 0..3, first letter most significant); NT's order too."""
    return ["".join(p) for p in itertools.product("ATCG", repeat=K)]


@dataclass(frozen=True)
class Layout:
    """Where a tokenizer kind's tokens sit: what the encoders and the models' embedding of one-hot DNA read.

    Attributes:
        tokens: The fixed tokens in id order (species tokens follow them in species kinds).
        unk, pad, cls: Ids of the unknown, padding and first token.
        sep: Id of the token after the body (None: no end token).
        kmer: Id of `AAAAAA` (the 6-mers follow in DNABERT order), or None without 6-mer tokens.
        bases: Ids of the single-base tokens of A, C, G, T (the store's code order), or () without them.
        other: Id a base other than A, C, G, T becomes (a single-base token), `[UNK]` or NT's `N`.
        chunked: Non-overlapping 6-mers with single-base fallback (NT) rather than one token per 6-mer start.
        species: Whether the model input carries a species token after the first token.
    """

    tokens: tuple[str, ...]
    unk: int
    pad: int
    cls: int
    sep: int | None
    kmer: int | None
    bases: tuple[int, ...]
    other: int
    chunked: bool
    species: bool

    @property
    def required(self) -> int:
        """How many of `tokens` a vocabulary must hold at their ids (NT's `<eos>`, `<bos>` may be missing)."""
        return len(self.tokens) - (len(NT_TAIL) if self.chunked else 0)


#: The NT single-base tokens' letters in id order, and where they start.
_NT_BASES = "ATCGN"
_NT_BASE_START = len(NT_SPECIALS) + 4**K
_BERT = {"unk": UNK, "pad": PAD, "cls": CLS, "sep": SEP, "other": UNK, "chunked": False, "species": True}
LAYOUTS = {
    "kmer6_species": Layout(tokens=tuple(SPECIALS + kmers()), kmer=len(SPECIALS), bases=(), **_BERT),
    "nucleotide": Layout(tokens=tuple(SPECIALS + list("ACGT")), kmer=None, bases=tuple(range(BASE_START, BASE_START + 4)),
                         **_BERT),
    "nt6": Layout(tokens=tuple(NT_SPECIALS + kmers() + list(_NT_BASES) + NT_TAIL), unk=0, pad=1, cls=3, sep=None,
                  kmer=len(NT_SPECIALS), bases=tuple(_NT_BASE_START + _NT_BASES.index(b) for b in "ACGT"),
                  other=_NT_BASE_START + _NT_BASES.index("N"), chunked=True, species=False),
}


def species_token(name: str) -> str:
    """The token of a species: its name in lower case (SpeciesLM's convention, e.g. `candida_glabrata`)."""
    token = str(name).lower()
    if not _SPECIES_RE.match(token):
        raise ValueError(f"species name {name!r} cannot be a token: use letters, digits, '_', '.', '-' only")
    return token


def species_start(kind: str) -> int:
    """Id of the first species token of a vocabulary kind (its size without species for `nt6`, which has none)."""
    return len(layout(kind).tokens)


def check_kind(kind: str) -> str:
    """`kind` if it is a known tokenizer kind, else a ValueError listing them."""
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer {kind!r}; known: {', '.join(KINDS)}")
    return kind


def layout(kind: str) -> Layout:
    """The `Layout` of a tokenizer kind."""
    return LAYOUTS[check_kind(kind)]


def has_species(kind: str) -> bool:
    """Whether a tokenizer kind carries species tokens (`nt6`, the Nucleotide Transformer's, has none)."""
    return layout(kind).species


def vocabulary(kind: str, species: list[str]) -> dict[str, int]:
    """Token → id of a vocabulary kind with the given species (in order).

    Args:
        kind: `kmer6_species`, `nucleotide` or `nt6`.
        species: Species names; their tokens are the lower-case names (none for `nt6`).

    Returns:
        The vocabulary, ids 0..n-1 in insertion order.
    """
    tokens = [species_token(s) for s in species]
    if tokens and not has_species(kind):
        raise ValueError(f"{kind} vocabularies have no species tokens (the Nucleotide Transformer has none); "
                         f"got species {list(species)}")
    duplicated = sorted({t for t in tokens if tokens.count(t) > 1})
    if duplicated:
        raise ValueError(f"species tokens must be unique (names are lower-cased); repeated: {duplicated}")
    return {token: i for i, token in enumerate([*layout(kind).tokens, *tokens])}


def infer_kind(vocab: Mapping[str, int]) -> str:
    """The tokenizer kind of a vocabulary, after checking that its ids are the layout the encoders assume.

    Raises:
        ValueError: when the vocabulary is none of the layouts (e.g. another k or another k-mer order).
    """
    if "<cls>" in vocab:
        kind = "nt6"
    elif any(vocab.get(token) != i for i, token in enumerate(SPECIALS)):
        raise ValueError(f"vocabulary starts neither with BERT's {SPECIALS} at ids 0-4 nor with the Nucleotide "
                         f"Transformer's {NT_SPECIALS} at ids 0-3")
    elif "AAAAAA" in vocab:
        kind = "kmer6_species"
    elif "A" in vocab:
        kind = "nucleotide"
    else:
        raise ValueError("vocabulary holds neither 6-mers (AAAAAA) nor single bases (A)")
    tokens = layout(kind).tokens
    wrong = [t for i, t in enumerate(tokens) if vocab.get(t) != i and (i < layout(kind).required or t in vocab)]
    if wrong:
        raise ValueError(f"{kind} vocabulary is not in the expected order: {wrong[0]} has id {vocab.get(wrong[0])}, "
                         f"expected {tokens.index(wrong[0])}")
    return kind


def species_names(vocab: Mapping[str, int]) -> list[str]:
    """Species tokens of a vocabulary in id order (every token after the specials and the k-mers or bases); none
    for `nt6`."""
    kind = infer_kind(vocab)
    if not has_species(kind):
        return []
    return [t for t, i in sorted(vocab.items(), key=lambda item: item[1]) if i >= species_start(kind)]


def max_input_id(vocab: Mapping[str, int]) -> int:
    """The largest id an input can hold: the model's embedding table must be larger (NT's `<eos>`, `<bos>` are
    in its vocabulary file but never in an input)."""
    return max(i for t, i in vocab.items() if t not in NT_TAIL)


def _as_vocab(tokenizer_or_vocab) -> Mapping[str, int]:
    """A token → id mapping from a Hugging Face tokenizer or a mapping."""
    if hasattr(tokenizer_or_vocab, "get_vocab"):
        return tokenizer_or_vocab.get_vocab()
    return tokenizer_or_vocab


def species_id(tokenizer_or_vocab, name: str) -> int:
    """Id of a species token; unlike SpeciesLM (which maps it to `[UNK]`), an unknown species is an error.

    Args:
        tokenizer_or_vocab: A Hugging Face tokenizer or a token → id mapping.
        name: Species name (matched in lower case).

    Raises:
        ValueError: naming the species and listing the known ones (or saying that the layout has none).
    """
    vocab = _as_vocab(tokenizer_or_vocab)
    if not has_species(infer_kind(vocab)):
        raise ValueError(f"species {name!r}: this vocabulary ({infer_kind(vocab)}, the Nucleotide Transformer's) "
                         "has no species tokens")
    known = species_names(vocab)
    token = str(name).lower()
    if token not in known:
        raise ValueError(f"unknown species {name!r}: not a species token of this vocabulary; "
                         f"known ({len(known)}): {', '.join(known) or 'none'}")
    return int(vocab[token])


def encode_kmers(codes: np.ndarray) -> np.ndarray:
    """Ids of the overlapping 6-mers of base codes; a 6-mer with a base other than ACGT is `[UNK]`.

    Args:
        codes: (B, L) or (L,) uint8 codes (A0 C1 G2 T3, anything else N).

    Returns:
        (B, L-5) or (L-5,) int64 ids in the `kmer6_species` vocabulary.
    """
    codes = np.asarray(codes)
    if codes.shape[-1] < K:
        raise ValueError(f"sequences must have at least {K} bases, got {codes.shape[-1]}")
    valid = codes < 4
    digits = DIGIT_OF_CODE[np.where(valid, codes, 0)]
    windows = np.lib.stride_tricks.sliding_window_view(digits, K, axis=-1)
    ids = windows @ PLACE + len(SPECIALS)
    ok = np.lib.stride_tricks.sliding_window_view(valid, K, axis=-1).all(axis=-1)
    return np.where(ok, ids, UNK)


def encode_nucleotides(codes: np.ndarray) -> np.ndarray:
    """Ids of single bases (`A=5 C=6 G=7 T=8`, anything else `[UNK]`) of base codes (B, L) or (L,)."""
    codes = np.asarray(codes)
    return np.where(codes < 4, codes.astype(np.int64) + BASE_START, UNK)


def chunk_starts(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where NT's tokens start, from (B, L) masks of the bases that are A, C, G or T.

    Each stretch between Ns is cut into 6-mers from its left end; the bases left at its right end, and the Ns,
    are single-base tokens (the module docstring).

    Returns:
        (first base of every token, first base of the 6-mer tokens), both (B, L) bool.
    """
    length = valid.shape[-1]
    pos = np.arange(length)
    last_n = np.maximum.accumulate(np.where(valid, -1, pos), axis=-1)
    next_n = np.minimum.accumulate(np.where(valid, length, pos)[..., ::-1], axis=-1)[..., ::-1]
    offset, stretch = pos - last_n - 1, next_n - last_n - 1
    in_kmer = valid & (offset < stretch // K * K)
    kmer_starts = in_kmer & (offset % K == 0)
    return kmer_starts | ~in_kmer, kmer_starts


def encode_nt6(codes: np.ndarray) -> np.ndarray:
    """Ids of the Nucleotide Transformer's tokens of base codes (non-overlapping 6-mers, single-base fallback).

    Args:
        codes: (B, L) or (L,) uint8 codes (A0 C1 G2 T3, anything else N).

    Returns:
        (B, T) or (T,) int64 ids in the `nt6` vocabulary, T the most tokens of a row; shorter rows (with Ns) are
        padded with `<pad>` on the right.
    """
    codes = np.asarray(codes)
    rows = np.atleast_2d(codes)
    lay = LAYOUTS["nt6"]
    valid = rows < 4
    starts, kmer_starts = chunk_starts(valid)
    known = np.where(valid, rows, 0)
    digits = np.pad(DIGIT_OF_CODE[known], ((0, 0), (0, K - 1)))
    kmer_ids = np.lib.stride_tricks.sliding_window_view(digits, K, axis=-1) @ PLACE + lay.kmer
    ids = np.where(kmer_starts, kmer_ids, np.where(valid, np.asarray(lay.bases)[known], lay.other))
    n_tokens = starts.sum(-1)
    order = np.argsort(~starts, axis=-1, kind="stable")[:, : n_tokens.max(initial=0)]
    tokens = np.take_along_axis(ids, order, axis=-1)
    tokens = np.where(np.arange(tokens.shape[1]) < n_tokens[:, None], tokens, lay.pad)
    return tokens if codes.ndim > 1 else tokens[0]


#: Body encoder of each tokenizer kind.
ENCODERS = {"kmer6_species": encode_kmers, "nucleotide": encode_nucleotides, "nt6": encode_nt6}


def encode(codes: np.ndarray, kind: str, species: int | None = None) -> np.ndarray:
    """Token ids of base codes (B, L): the body tokens, or with `species` the model's full input (`model_input`)."""
    if species is not None:
        return model_input(codes, kind, species)
    return ENCODERS[check_kind(kind)](codes)


def model_input(codes: np.ndarray, kind: str, species: int | None = None) -> np.ndarray:
    """The model's input ids (B, T) of base codes (B, L): `[CLS] <species> body [SEP]` for the species kinds (the
    species token's id given), `<cls> body` for `nt6` (padded with `<pad>`, no species)."""
    lay = layout(kind)
    if lay.species == (species is None):
        raise ValueError(f"{kind} inputs {'need' if lay.species else 'have no'} species token")
    body = np.atleast_2d(ENCODERS[kind](codes))
    front = np.tile(np.array([lay.cls, species] if lay.species else [lay.cls], dtype=np.int64), (len(body), 1))
    back = np.tile(np.array([] if lay.sep is None else [lay.sep], dtype=np.int64), (len(body), 1))
    return np.concatenate([front, body, back], axis=1)


def to_text(seq: str, kind: str, species: str | None = None) -> str:
    """The text the Hugging Face tokenizer takes for a sequence: the species token, then the tokens separated by
    spaces (for nucleotides the raw sequence reads the same); for `nt6` the raw sequence (no species)."""
    seq = seq.upper()
    if not has_species(kind):
        if species is not None:
            raise ValueError(f"{kind} has no species tokens; got species {species!r}")
        return seq
    if kind == "kmer6_species":
        tokens = [seq[i : i + K] for i in range(len(seq) - K + 1)]
    else:
        tokens = list(seq)
    return " ".join([species_token(species), *tokens])


def _roles(kind: str) -> dict[str, str]:
    """Hugging Face special-token roles (`pad`, `unk`, `cls`, `sep`, `mask`) → tokens of a kind."""
    if layout(kind).chunked:
        return dict(zip(("unk", "pad", "mask", "cls"), NT_SPECIALS, strict=True))
    return dict(zip(("pad", "unk", "cls", "sep", "mask"), SPECIALS, strict=True))


#: How the pre-tokenizer cuts text after whitespace: 6-mer tokens are whole words (DNABERT's seq2kmer), NT's are
#: the leftmost 6 bases when all are A, C, G or T, else one character (equal to NT's N-splitting tokenizer).
_SPLIT = {"nucleotide": ".", "nt6": f"[ACGT]{{{K}}}|."}


def build_tokenizer(vocab: Mapping[str, int], max_length: int = 512):
    """A Hugging Face fast tokenizer over a vocabulary that reads text the way the model was trained.

    The text is the species token, then the sequence (`to_text`): for `nucleotide`, the raw sequence (split into
    bases; spaces allowed); for `kmer6_species`, the overlapping 6-mers separated by spaces, as DNABERT's and
    SpeciesLM's users give them (`seq2kmer`); for `nt6`, the raw sequence, cut into 6-mers as NT's tokenizer does.
    Lower-case bases read as upper case (soft-masked genome sequence is trained on as its bases), anything else as
    `[UNK]` (`<unk>`). `[CLS]` and `[SEP]` are added around (`<cls>` before, for `nt6`); species tokens are
    added tokens, matched on the raw text, so names with `_` stay one token. A WordLevel model (whole tokens, no
    word pieces) with these rules saved in tokenizer.json, so `AutoTokenizer` reloads it unchanged.

    Args:
        vocab: Token → id (checked with `infer_kind`).
        max_length: `model_max_length` of the tokenizer (the model's maximum input length in tokens).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    kind = infer_kind(vocab)
    roles = _roles(kind)
    backend = Tokenizer(WordLevel(dict(vocab), unk_token=roles["unk"]))
    backend.normalizer = normalizers.Sequence([normalizers.Replace(b, b.upper()) for b in "acgtn"])
    split = [pre_tokenizers.WhitespaceSplit()]
    if kind in _SPLIT:
        split.append(pre_tokenizers.Split(Regex(_SPLIT[kind]), behavior="isolated"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(split)
    cls, sep = roles["cls"], roles.get("sep")
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A" + (f" {sep}" if sep else ""), pair=f"{cls} $A" + (f" {sep} $B:1 {sep}:1" if sep else " $B:1"),
        special_tokens=[(t, vocab[t]) for t in (cls, sep) if t])
    backend.add_special_tokens([AddedToken(t, normalized=False) for t in (*SPECIALS, *NT_SPECIALS, *NT_TAIL)
                                if t in vocab])
    backend.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in species_names(vocab)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=max_length,
                                        **{f"{role}_token": token for role, token in roles.items()})
    if len(tokenizer) != len(vocab):  # added tokens reuse the vocabulary's ids; a new id would shift the layout
        raise RuntimeError(f"tokenizer has {len(tokenizer)} tokens, vocabulary {len(vocab)}")
    return tokenizer


def save_tokenizer(vocab: Mapping[str, int], out_dir: str | Path, max_length: int = 512) -> None:
    """Write tokenizer files loadable with `AutoTokenizer`: `tokenizer.json`, `tokenizer_config.json`, `vocab.txt`.

    `vocab.txt` (one token per line, in id order) is what older transformers versions and DNABERT/SpeciesLM code read.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(vocab, max_length).save_pretrained(str(out))
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    (out / "vocab.txt").write_text("\n".join(tokens) + "\n")


def load_vocab(directory: str | Path) -> dict[str, int] | None:
    """The vocabulary of a Hugging Face model directory (`tokenizer.json` or `vocab.txt`), or None if it has neither.

    A `tokenizer.json` with a token → id vocabulary (WordPiece, WordLevel, BPE) is read as JSON, without loading
    transformers (the config check reads it before any job runs); other tokenizers through `AutoTokenizer`.
    """
    directory = Path(directory)
    if (directory / "tokenizer.json").exists():
        data = json.loads((directory / "tokenizer.json").read_text())
        vocab = data.get("model", {}).get("vocab")
        if isinstance(vocab, dict):
            return {**vocab, **{t["content"]: t["id"] for t in data.get("added_tokens", [])}}
        from transformers import AutoTokenizer

        return dict(AutoTokenizer.from_pretrained(str(directory), local_files_only=True).get_vocab())
    if (directory / "vocab.txt").exists():
        tokens = (directory / "vocab.txt").read_text().splitlines()
        return {token: i for i, token in enumerate(tokens)}
    return None
