"""Tests for dnalm.seq2seq: the edit distance on hand-made cases, noisy/true pairs, generation settings, the arch
check, and a tiny encoder-decoder that learns to correct planted substitutions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnalm import seq2seq as s2s
from dnalm import tokenize_enbed as te
from dnalm.models.enbed import build_enbed
from dnalm.seqerrors import ErrorProfile, simulate

torch.use_deterministic_algorithms(True)


@pytest.mark.parametrize(("a", "b", "d"), [
    ("", "", 0), ("ACGT", "", 4), ("", "AC", 2), ("ACGT", "ACGT", 0),
    ("ACGT", "AGGT", 1),  # substitution
    ("ACGT", "ACGGT", 1),  # insertion
    ("ACGT", "AGT", 1),  # deletion
    ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("ACGTACGT", "TGCATGCA", 6), ("AAAA", "TTTTTTTT", 8),
])
def test_levenshtein_on_hand_made_cases(a, b, d):
    assert s2s.levenshtein(a, b) == s2s.levenshtein(b, a) == d
    assert s2s.levenshtein(np.frombuffer(a.encode(), np.uint8), np.frombuffer(b.encode(), np.uint8)) == d


def test_levenshtein_matches_a_plain_loop_on_random_pairs():
    def plain(a, b):
        row = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            prev, row[0] = row[0], i
            for j, y in enumerate(b, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
        return row[-1]

    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = ("".join(rng.choice(list("ACG"), rng.integers(0, 15))) for _ in range(2))
        assert s2s.levenshtein(a, b) == plain(a, b)


def test_pairs_trim_and_pad_the_true_sequence_to_the_width():
    noisy = [np.array([0, 1, 2, 3], np.uint8)] * 3
    true = [np.array([0, 1, 2, 3, 0, 1], np.uint8), np.array([0, 1, 2], np.uint8), np.array([4, 1, 2, 3], np.uint8)]
    ids, labels = s2s.encode_pairs(noisy, true, 4)
    assert ids.tolist() == [[3, 4, 5, 6]] * 3
    assert labels.tolist() == [[3, 4, 5, 6, te.EOS], [3, 4, 5, te.EOS, -100], [7, 4, 5, 6, te.EOS]]
    with pytest.raises(ValueError, match="noisy read 0 has 3 bases, not the width 4"):
        s2s.encode_pairs([np.zeros(3, np.uint8)], [np.zeros(3, np.uint8)], 4)


def test_decode_bases_stops_at_eos():
    assert s2s.decode_bases([3, 4, 5, 6, 7, te.EOS, 3]) == "ACGTN"
    assert s2s.decode_bases([3, te.PAD, 9]) == "ANN"


def test_correction_metrics():
    m = s2s.correction_metrics(["ACGA", "ACGT"], ["ACGT", "ACGT"], ["ACGT", "ACG"])
    assert m["before"].tolist() == [1, 0] and m["after"].tolist() == [0, 1]
    assert (m["mean_before"], m["mean_after"], m["exact_before"], m["exact_after"]) == (0.5, 0.5, 0.5, 0.5)


@pytest.mark.parametrize(("setting", "message"), [
    ({"strategy": "sample"}, r"generation.strategy: 'sample' is not one of greedy, beam"),
    ({"strategy": "beam", "num_beams": 1}, "beam search needs at least 2 beams"),
    ({"strategy": "greedy", "num_beams": 3}, "greedy decoding keeps 1 beam"),
    ({"num_beams": 0}, "num_beams: 0 is not a positive integer"),
    ({"max_length": -1}, "max_length: -1 is not a positive integer"),
    ({"temperature": 1.0}, r"unknown key\(s\) \['temperature'\]"),
])
def test_bad_generation_settings_name_the_key(setting, message):
    with pytest.raises(ValueError, match=message):
        s2s.check_generation(setting)


def test_generation_defaults():
    assert s2s.check_generation({}) == {"strategy": "greedy", "num_beams": 1, "max_length": None}
    assert s2s.check_generation({"strategy": "beam"})["num_beams"] == 4


@pytest.mark.parametrize("arch", ["bpnet", "lm", "unet"])
def test_only_the_encoder_decoder_is_accepted(arch):
    with pytest.raises(ValueError, match=f"models.m.arch: '{arch}' cannot train on sequence-to-sequence task t"):
        s2s.check_arch("t", "m", arch)
    s2s.check_arch("t", "m", "enbed")
