"""Tokenizers of the DNA language models: vocabularies, Hugging Face tokenizer files and fast numpy encoders.

Two vocabularies, both starting with the five BERT special tokens `[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4`:

- `kmer6_species` (SpeciesLM's layout, exactly): the 4,096 6-mers at ids 5–4100 in DNABERT order — letters ordered
  A, T, C, G as the digits 0..3, first letter most significant (`AAAAAA` → 5, `ACGTGC` → 739, `GGGGGG` → 4100) —
  then one token per species (lower-case name) from id 4101 in the given order. A window of L bases becomes
  `[CLS] <species> kmer_1 … kmer_{L-5} [SEP]` with overlapping stride-1 6-mers; a 6-mer containing a base other than
  A, C, G, T becomes `[UNK]`.
- `nucleotide` (one token per base, ENBED's byte-level idea): `A=5 C=6 G=7 T=8`, species from id 9; a window of L
  bases becomes `[CLS] <species> b_1 … b_L [SEP]`; any other base becomes `[UNK]`.

The code tokenizes with the numpy encoders (`encode_kmers`, `encode_nucleotides`) from the uint8 base codes of
`dnalm.store` (A0 C1 G2 T3, N 4). The Hugging Face tokenizer saved with each model (`save_tokenizer`, loadable with
`AutoTokenizer` alone) gives the same ids for the text made by `to_text`: the species token, then for nucleotides the
raw sequence (`"candida_glabrata ACGTTGCA"`), for 6-mers the overlapping 6-mers separated by spaces, as DNABERT and
SpeciesLM take them (`"candida_glabrata ACGTGC CGTGCA …"`). Species tokens are added tokens, so names with `_` stay
one token.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP, MASK = range(5)
K = 6
KINDS = ("kmer6_species", "nucleotide")
#: DNABERT digit of each `dnalm.store` base code (A0 C1 G2 T3): A→0, C→2, G→3, T→1.
DIGIT_OF_CODE = np.array([0, 2, 3, 1], dtype=np.int64)
#: Place value of each of the six letters of a k-mer (first letter most significant).
PLACE = 4 ** np.arange(K - 1, -1, -1, dtype=np.int64)
#: Id of the first base token of the nucleotide vocabulary (A; then C, G, T).
BASE_START = len(SPECIALS)
_SPECIES_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


def kmers() -> list[str]:
    """The 4,096 6-mers in DNABERT order (A, T, C, G as digits 0..3, first letter most significant)."""
    return ["".join(p) for p in itertools.product("ATCG", repeat=K)]


def species_token(name: str) -> str:
    """The token of a species: its name in lower case (SpeciesLM's convention, e.g. `candida_glabrata`)."""
    token = str(name).lower()
    if not _SPECIES_RE.match(token):
        raise ValueError(f"species name {name!r} cannot be a token: use letters, digits, '_', '.', '-' only")
    return token


def species_start(kind: str) -> int:
    """Id of the first species token of a vocabulary kind."""
    return {"kmer6_species": len(SPECIALS) + 4 ** K, "nucleotide": len(SPECIALS) + 4}[check_kind(kind)]


def check_kind(kind: str) -> str:
    """`kind` if it is a known tokenizer kind, else a ValueError listing them."""
    if kind not in KINDS:
        raise ValueError(f"unknown tokenizer {kind!r}; known: {', '.join(KINDS)}")
    return kind


def vocabulary(kind: str, species: list[str]) -> dict[str, int]:
    """Token → id of a vocabulary kind with the given species (in order).

    Args:
        kind: `kmer6_species` or `nucleotide`.
        species: Species names; their tokens are the lower-case names.

    Returns:
        The vocabulary, ids 0..n-1 in insertion order.
    """
    body = kmers() if check_kind(kind) == "kmer6_species" else list("ACGT")
    tokens = [species_token(s) for s in species]
    duplicated = sorted({t for t in tokens if tokens.count(t) > 1})
    if duplicated:
        raise ValueError(f"species tokens must be unique (names are lower-cased); repeated: {duplicated}")
    return {token: i for i, token in enumerate(SPECIALS + body + tokens)}


def infer_kind(vocab: Mapping[str, int]) -> str:
    """The tokenizer kind of a vocabulary, after checking that its ids are the layout the encoders assume.

    Raises:
        ValueError: when the vocabulary is neither layout (e.g. another k or another k-mer order).
    """
    for i, token in enumerate(SPECIALS):
        if vocab.get(token) != i:
            raise ValueError(f"vocabulary does not start with {SPECIALS} at ids 0-4 ({token} is {vocab.get(token)})")
    if "AAAAAA" in vocab:
        kind, body = "kmer6_species", kmers()
    elif "A" in vocab:
        kind, body = "nucleotide", list("ACGT")
    else:
        raise ValueError("vocabulary holds neither 6-mers (AAAAAA) nor single bases (A)")
    wrong = [t for i, t in enumerate(body, start=len(SPECIALS)) if vocab.get(t) != i]
    if wrong:
        raise ValueError(f"{kind} vocabulary is not in the expected order: {wrong[0]} has id {vocab.get(wrong[0])}, "
                         f"expected {len(SPECIALS) + body.index(wrong[0])}")
    return kind


def species_names(vocab: Mapping[str, int]) -> list[str]:
    """Species tokens of a vocabulary in id order (every token after the specials and the k-mers or bases)."""
    start = species_start(infer_kind(vocab))
    return [t for t, i in sorted(vocab.items(), key=lambda item: item[1]) if i >= start]


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
        ValueError: naming the species and listing the known ones.
    """
    vocab = _as_vocab(tokenizer_or_vocab)
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


def encode(codes: np.ndarray, kind: str, species: int | None = None) -> np.ndarray:
    """Token ids of base codes (B, L): the body tokens, or with `species` the full `[CLS] <species> … [SEP]` input."""
    body = encode_kmers(codes) if check_kind(kind) == "kmer6_species" else encode_nucleotides(codes)
    if species is None:
        return body
    body = np.atleast_2d(body)
    n = body.shape[0]
    return np.concatenate([np.full((n, 1), CLS), np.full((n, 1), species), body, np.full((n, 1), SEP)], axis=1)


def to_text(seq: str, kind: str, species: str) -> str:
    """The text the Hugging Face tokenizer takes for a sequence: the species token, then the tokens separated by
    spaces (for nucleotides the raw sequence reads the same)."""
    seq = seq.upper()
    if check_kind(kind) == "kmer6_species":
        tokens = [seq[i : i + K] for i in range(len(seq) - K + 1)]
    else:
        tokens = list(seq)
    return " ".join([species_token(species), *tokens])


def build_tokenizer(vocab: Mapping[str, int], max_length: int = 512):
    """A Hugging Face fast tokenizer over a vocabulary that reads text the way the model was trained.

    The text is the species token, then the sequence (`to_text`): for `nucleotide`, the raw sequence (split into
    bases; spaces allowed); for `kmer6_species`, the overlapping 6-mers separated by spaces, as DNABERT's and
    SpeciesLM's users give them (`seq2kmer`). Lower-case bases read as upper case (soft-masked genome sequence is
    trained on as its bases), anything else as `[UNK]`. `[CLS]` and `[SEP]` are added around; species tokens are
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
    backend = Tokenizer(WordLevel(dict(vocab), unk_token=SPECIALS[UNK]))
    backend.normalizer = normalizers.Sequence([normalizers.Replace(b, b.upper()) for b in "acgtn"])
    split = [pre_tokenizers.WhitespaceSplit()]
    if kind == "nucleotide":
        split.append(pre_tokenizers.Split(Regex("."), behavior="isolated"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(split)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(SPECIALS[CLS], CLS), (SPECIALS[SEP], SEP)])
    backend.add_special_tokens([AddedToken(t, normalized=False) for t in SPECIALS])
    backend.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in species_names(vocab)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=max_length,
                                        **{f"{name}_token": SPECIALS[i] for name, i in
                                           (("pad", PAD), ("unk", UNK), ("cls", CLS), ("sep", SEP), ("mask", MASK))})
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
