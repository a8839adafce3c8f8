"""Tests for dnalm.tokenize: SpeciesLM's and the Nucleotide Transformer's pinned ids, encoders equal to the Hugging
Face tokenizer, unknown species."""

from __future__ import annotations

import numpy as np
import pytest

from dnalm import tokenize
from dnalm.store import encode

SPECIES = ["candida_glabrata", "Saccharomyces_cerevisiae", "kluyveromyces_lactis"]
#: The layouts with species tokens (all but the Nucleotide Transformer's `nt6`).
SPECIES_KINDS = [kind for kind in tokenize.KINDS if tokenize.has_species(kind)]


@pytest.fixture(scope="module")
def vocab() -> dict:
    return tokenize.vocabulary("kmer6_species", SPECIES)


def test_kmer6_species_ids_are_specieslm_s(vocab):
    assert [vocab[t] for t in tokenize.SPECIALS] == [0, 1, 2, 3, 4]
    assert (vocab["AAAAAA"], vocab["ACGTGC"], vocab["GGGGGG"]) == (5, 739, 4100)
    assert vocab["AAAAAT"] == 6 and vocab["TAAAAA"] == 5 + 1024  # T is digit 1, first letter most significant
    assert vocab["candida_glabrata"] == 4101 and vocab["saccharomyces_cerevisiae"] == 4102  # lower-cased, in order
    assert len(vocab) == 4101 + len(SPECIES) and sorted(vocab.values()) == list(range(len(vocab)))
    assert tokenize.species_names(vocab) == [s.lower() for s in SPECIES]


def test_nucleotide_ids():
    vocab = tokenize.vocabulary("nucleotide", SPECIES)
    assert [vocab[b] for b in "ACGT"] == [5, 6, 7, 8] and vocab["candida_glabrata"] == 9
    assert tokenize.infer_kind(vocab) == "nucleotide"
    codes = encode("ACGTN")
    assert tokenize.encode_nucleotides(codes).tolist() == [5, 6, 7, 8, tokenize.UNK]


def test_encode_kmers_overlapping_and_unk():
    codes = encode("ACGTGCA")
    assert tokenize.encode_kmers(codes).tolist() == [739, tokenize.vocabulary("kmer6_species", [])["CGTGCA"]]
    batch = np.stack([encode("AAAAAAAN"), encode("GGGGGGGG")])
    ids = tokenize.encode_kmers(batch)
    assert ids.shape == (2, 3)
    assert ids[0].tolist() == [5, 5, tokenize.UNK]  # the 6-mer with N is [UNK]
    assert ids[1].tolist() == [4100] * 3
    full = tokenize.encode(batch, "kmer6_species", species=4101)
    assert full[0].tolist() == [tokenize.CLS, 4101, 5, 5, tokenize.UNK, tokenize.SEP]


@pytest.mark.parametrize("kind", SPECIES_KINDS)
def test_hf_tokenizer_equals_encoders_and_round_trips_offline(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    vocab = tokenize.vocabulary(kind, SPECIES)
    seq = "".join(np.random.default_rng(0).choice(list("ACGT"), 40)) + "NACGTGCA"
    expected = tokenize.encode(encode(seq)[None], kind, species=vocab["saccharomyces_cerevisiae"])[0].tolist()
    text = tokenize.to_text(seq, kind, "Saccharomyces_cerevisiae")
    assert tokenize.build_tokenizer(vocab)(text)["input_ids"] == expected

    tokenize.save_tokenizer(vocab, tmp_path)
    assert {"tokenizer.json", "tokenizer_config.json", "vocab.txt"} <= {p.name for p in tmp_path.iterdir()}
    loaded = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert loaded(text)["input_ids"] == expected
    assert loaded.get_vocab() == vocab
    assert tokenize.load_vocab(tmp_path) == vocab
    (tmp_path / "tokenizer.json").unlink()  # vocab.txt alone (SpeciesLM's layout) gives the same vocabulary
    assert tokenize.load_vocab(tmp_path) == vocab


def test_unknown_species_is_an_error_listing_the_known(vocab):
    assert tokenize.species_id(vocab, "Candida_Glabrata") == 4101
    with pytest.raises(ValueError, match="unknown species 'homo_sapiens'.*candida_glabrata, saccharomyces_cerevisiae"):
        tokenize.species_id(vocab, "homo_sapiens")
    with pytest.raises(ValueError, match="unknown species"):
        tokenize.species_id(tokenize.build_tokenizer(vocab), "AAAAAA")  # a k-mer is not a species
    with pytest.raises(ValueError, match="unique"):
        tokenize.vocabulary("kmer6_species", ["yeast", "YEAST"])
    with pytest.raises(ValueError, match="cannot be a token"):
        tokenize.vocabulary("kmer6_species", ["s cerevisiae"])


def test_infer_kind_rejects_other_layouts(vocab):
    shuffled = dict(vocab)
    shuffled["ACGTGC"], shuffled["AAAAAA"] = vocab["AAAAAA"], vocab["ACGTGC"]
    with pytest.raises(ValueError, match="not in the expected order"):
        tokenize.infer_kind(shuffled)
    with pytest.raises(ValueError, match="unknown tokenizer"):
        tokenize.vocabulary("bpe", [])


@pytest.mark.parametrize("kind", SPECIES_KINDS)
def test_saved_tokenizer_reads_sequences_as_a_transformers_user_gives_them(kind, tmp_path, monkeypatch):
    """Nucleotides: the raw sequence after the species token, lower case and N included. 6-mers: the overlapping
    6-mers separated by spaces (DNABERT's seq2kmer), in either case. A raw sequence is not a 6-mer: `[UNK]`."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    vocab = tokenize.vocabulary(kind, SPECIES)
    tokenize.save_tokenizer(vocab, tmp_path)
    loaded = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    seq = "ACGTacgtTTGCANgca"
    expected = tokenize.encode(encode(seq)[None], kind, species=vocab["candida_glabrata"])[0].tolist()
    if kind == "nucleotide":
        text = f"candida_glabrata {seq}"
    else:
        text = "candida_glabrata " + " ".join(seq[i : i + 6] for i in range(len(seq) - 5))
        assert loaded(f"candida_glabrata {seq}")["input_ids"] == [tokenize.CLS, 4101, tokenize.UNK, tokenize.SEP]
    assert loaded(text)["input_ids"] == expected
    upper = seq.upper()
    if kind == "nucleotide":  # A=5, C=6, G=7, T=8
        assert expected[2:6] == [5, 6, 7, 8]
    else:  # DNABERT order: the 6-mer read as a base-4 number with A, T, C, G as the digits 0..3, plus 5
        assert expected[2:6] == [5 + int("".join(str("ATCG".index(b)) for b in upper[i : i + 6]), 4) for i in range(4)]


# ------------------------------------------------------------------------------------- the Nucleotide Transformer
def nt_reference(seq: str) -> list[str]:
    """NT's own tokenization (`NucleotidesKmersTokenizer.tokenize` with k=6, InstaDeep's nucleotide_transformer
    package, written out): split at N, each piece into 6-mers from its left, the leftover bases one by one."""
    tokens: list[str] = []
    pieces = seq.split("N")
    for i, piece in enumerate(pieces):
        whole = len(piece) // 6 * 6
        tokens += [piece[j : j + 6] for j in range(0, whole, 6)] + list(piece[whole:])
        if i < len(pieces) - 1:
            tokens.append("N")
    return ["<cls>", *tokens]


def test_nt6_ids_are_the_nucleotide_transformer_s():
    vocab = tokenize.vocabulary("nt6", [])
    assert [vocab[t] for t in ["<unk>", "<pad>", "<mask>", "<cls>"]] == [0, 1, 2, 3]
    assert (vocab["AAAAAA"], vocab["AAAAAT"], vocab["ACGTAC"], vocab["GGGGGG"]) == (4, 5, 726, 4099)
    assert [vocab[b] for b in "ATCGN"] == [4100, 4101, 4102, 4103, 4104]
    assert (vocab["<eos>"], vocab["<bos>"]) == (4105, 4106) and len(vocab) == 4107
    assert tokenize.infer_kind(vocab) == "nt6" and tokenize.species_names(vocab) == []
    assert tokenize.max_input_id(vocab) == 4104  # NT v1's embedding tables have 4,105 rows
    without_tail = {t: i for t, i in vocab.items() if t not in ("<eos>", "<bos>")}
    assert tokenize.infer_kind(without_tail) == "nt6"
    swapped = {**vocab, "A": 4101, "T": 4100}
    with pytest.raises(ValueError, match="nt6 vocabulary is not in the expected order: A has id 4101, expected 4100"):
        tokenize.infer_kind(swapped)
    with pytest.raises(ValueError, match="no species tokens"):
        tokenize.vocabulary("nt6", ["yeast"])
    with pytest.raises(ValueError, match="species 'yeast'.*has no species tokens"):
        tokenize.species_id(vocab, "yeast")
    with pytest.raises(ValueError, match="nt6 inputs have no species token"):
        tokenize.encode(encode("ACGTAC")[None], "nt6", species=4101)


def test_encode_nt6_cuts_non_overlapping_kmers_as_nt_does():
    vocab = tokenize.vocabulary("nt6", [])

    def ids(tokens: list[str]) -> list[int]:
        return [vocab[t] for t in tokens]

    assert tokenize.encode(encode("ACGTACGTA"), "nt6").tolist() == ids(["ACGTAC", "G", "T", "A"])
    assert tokenize.encode(encode("AAAANAAAAAAA"), "nt6").tolist() == ids([*"AAAA", "N", "AAAAAA", "A"])
    assert tokenize.model_input(encode("NNACGTACN")[None], "nt6")[0].tolist() == ids(["<cls>", "N", "N", "ACGTAC", "N"])
    batch = tokenize.encode(np.stack([encode("ACGTACGTAAAA"), encode("ACGNACGTAAAA")]), "nt6")
    assert batch[0].tolist() == ids(["ACGTAC", "GTAAAA"]) + [vocab["<pad>"]] * 5  # padded to the longer row
    assert batch[1].tolist() == ids([*"ACG", "N", "ACGTAA", "A", "A"])
    rng = np.random.default_rng(0)
    for _ in range(200):  # random lengths and N runs against NT's own algorithm
        seq = "".join(rng.choice(list("ACGTN"), p=[0.23, 0.23, 0.23, 0.23, 0.08], size=rng.integers(1, 40)))
        assert tokenize.model_input(encode(seq)[None], "nt6")[0].tolist() == ids(nt_reference(seq)), seq


def test_nt6_hf_tokenizer_equals_the_encoder_and_nt_s_own_files(tmp_path, monkeypatch):
    """Saved by dnalm and reloaded with `AutoTokenizer` alone: the encoder's ids for raw sequence text, lower case,
    N and NT's `<mask>` included; and transformers' EsmTokenizer over NT's downloaded files reads them the same."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from helpers import nt_tokenizer_files

    vocab = tokenize.vocabulary("nt6", [])
    tokenize.save_tokenizer(vocab, tmp_path / "ours")
    ours = AutoTokenizer.from_pretrained(str(tmp_path / "ours"), local_files_only=True)
    nt_tokenizer_files(tmp_path / "nt")
    theirs = AutoTokenizer.from_pretrained(str(tmp_path / "nt"), local_files_only=True)
    assert type(theirs).__name__ == "EsmTokenizer" and tokenize.load_vocab(tmp_path / "nt") == vocab
    assert ours.get_vocab() == vocab and tokenize.load_vocab(tmp_path / "ours") == vocab
    rng = np.random.default_rng(1)
    for _ in range(50):
        seq = "".join(rng.choice(list("ACGTN"), p=[0.23, 0.23, 0.23, 0.23, 0.08], size=rng.integers(1, 60)))
        expected = tokenize.model_input(encode(seq)[None], "nt6")[0].tolist()
        assert ours(tokenize.to_text(seq, "nt6"))["input_ids"] == expected
        assert ours(seq.lower())["input_ids"] == expected
        assert theirs(seq)["input_ids"] == expected, seq
    assert ours("ACGTAC<mask>TTTTTT")["input_ids"] == [3, 726, 2, vocab["TTTTTT"]]
    assert ours("ACGTRA")["input_ids"] == [3, vocab["A"], vocab["C"], vocab["G"], vocab["T"], 0, vocab["A"]]
    with pytest.raises(ValueError, match="no species tokens"):
        tokenize.to_text("ACGT", "nt6", "yeast")
