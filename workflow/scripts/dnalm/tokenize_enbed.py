"""The nucleotide byte tokenizer of the encoder-decoder (ENBED, `dnalm.models.enbed`): one token per base, T5's specials.

Ids: `<pad>=0 </s>=1 <unk>=2` (T5's; `<pad>` is also the decoder's start token), the bases `A=3 C=4 G=5 T=6 N=7`,
then the span sentinels `<extra_id_0>`, `<extra_id_1>`, … from id 8 in increasing order (T5 numbers them down from
the end of its vocabulary; here they follow the bases, so the vocabulary of a model is 8 + its sentinel count).

- Text: lower-case bases read as upper case (a soft-masked genome is trained on as its bases); `encode` refuses any
  other letter with an error naming it and its position. The Hugging Face tokenizer (`build_tokenizer`, saved with
  every model and loadable offline with `AutoTokenizer.from_pretrained(dir)` alone) maps such letters to `<unk>`
  instead (a tokenizer cannot raise); it appends no `</s>`: the encoder reads the bases only, as in pretraining.
- Base codes of `dnalm.store` (A0 C1 G2 T3, N4) map to ids by adding `BASE_START` (`encode_codes`).
- Sentinels mark masked spans in pretraining (`dnalm.pretrain_enbed`): the encoder reads `… <extra_id_0> …` where
  a span was, the decoder writes `<extra_id_0> span_0 <extra_id_1> span_1 … </s>`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPECIALS = ["<pad>", "</s>", "<unk>"]
PAD, EOS, UNK = range(3)
BASES = "ACGTN"
#: Id of `A` (then C, G, T, N): a `dnalm.store` base code plus this is its id.
BASE_START = len(SPECIALS)
#: Id of the first sentinel `<extra_id_0>`.
SENTINEL_START = BASE_START + len(BASES)
_IDS = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate(BASES):
    _IDS[ord(_b)] = _IDS[ord(_b.lower())] = BASE_START + _i


def sentinel(i: int) -> str:
    """The i-th span sentinel token."""
    return f"<extra_id_{i}>"


def vocabulary(n_sentinels: int) -> dict[str, int]:
    """Token → id: the specials, the bases, then `n_sentinels` sentinels (see the module docstring)."""
    if n_sentinels < 0:
        raise ValueError(f"n_sentinels must be >= 0, got {n_sentinels}")
    tokens = [*SPECIALS, *BASES, *(sentinel(i) for i in range(n_sentinels))]
    return {t: i for i, t in enumerate(tokens)}


def n_sentinels(vocab: dict[str, int]) -> int:
    """How many sentinels a vocabulary holds, after checking that it is this layout."""
    expected = vocabulary(len(vocab) - SENTINEL_START) if len(vocab) >= SENTINEL_START else None
    if expected != dict(vocab):
        raise ValueError(
            "not an enbed vocabulary: expected <pad> </s> <unk> A C G T N then <extra_id_0>, … in "
            f"id order, got {sorted(vocab, key=vocab.get)[:10]} …"
        )
    return len(vocab) - SENTINEL_START


def encode(seq: str) -> np.ndarray:
    """Ids (L,) of a DNA string: A, C, G, T, N in either case.

    Raises:
        ValueError: naming the first other letter and its position (0-based).
    """
    raw = np.frombuffer(seq.encode("latin-1", errors="replace"), dtype=np.uint8)
    ids = _IDS[raw]
    bad = np.flatnonzero(ids < 0)
    if len(bad):
        pos = int(bad[0])
        raise ValueError(
            f"letter {seq[pos]!r} at position {pos} is not a base (A, C, G, T or N, either case); "
            f"{len(bad)} such letter(s) in the sequence"
        )
    return ids


def encode_codes(codes: np.ndarray) -> np.ndarray:
    """Ids of `dnalm.store` base codes (A0 C1 G2 T3, anything else N), any shape."""
    codes = np.asarray(codes)
    return np.where(codes < 4, codes, 4).astype(np.int64) + BASE_START


def decode(ids) -> str:
    """Text of ids: bases as letters, every other token as itself (`<extra_id_3>`, `</s>`), no separators."""
    tokens = [*SPECIALS, *BASES]
    return "".join(tokens[i] if i < SENTINEL_START else sentinel(i - SENTINEL_START) for i in map(int, ids))


def build_tokenizer(n_sentinels: int, max_length: int):
    """A Hugging Face fast tokenizer of the vocabulary: one token per character, bases upper-cased, sentinels and
    specials as whole tokens, other characters `<unk>`, no `</s>` appended.

    Args:
        n_sentinels: Sentinel tokens of the model.
        max_length: `model_max_length` (the pretraining window).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = vocabulary(n_sentinels)
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Sequence([normalizers.Replace(b.lower(), b) for b in BASES])
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
    )
    sentinels = [sentinel(i) for i in range(n_sentinels)]
    backend.add_special_tokens([AddedToken(t, normalized=False) for t in (*SPECIALS, *sentinels)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=max_length,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_special_tokens=sentinels,
    )
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"tokenizer has {len(tokenizer)} tokens, vocabulary {len(vocab)}")
    return tokenizer


def save_tokenizer(out_dir: str | Path, n_sentinels: int, max_length: int) -> None:
    """Write `tokenizer.json` and `tokenizer_config.json` (loadable with `AutoTokenizer.from_pretrained` offline)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(n_sentinels, max_length).save_pretrained(str(out))
