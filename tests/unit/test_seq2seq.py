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


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("", "", 0),
        ("ACGT", "", 4),
        ("", "AC", 2),
        ("ACGT", "ACGT", 0),
        ("ACGT", "AGGT", 1),  # substitution
        ("ACGT", "ACGGT", 1),  # insertion
        ("ACGT", "AGT", 1),  # deletion
        ("kitten", "sitting", 3),
        ("flaw", "lawn", 2),
        ("ACGTACGT", "TGCATGCA", 6),
        ("AAAA", "TTTTTTTT", 8),
    ],
)
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


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"strategy": "sample"}, r"generation.strategy: 'sample' is not one of greedy, beam"),
        ({"strategy": "beam", "num_beams": 1}, "beam search needs at least 2 beams"),
        ({"strategy": "greedy", "num_beams": 3}, "greedy decoding keeps 1 beam"),
        ({"num_beams": 0}, "num_beams: 0 is not a positive integer"),
        ({"max_length": -1}, "max_length: -1 is not a positive integer"),
        ({"temperature": 1.0}, r"unknown key\(s\) \['temperature'\]"),
    ],
)
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


TINY = {
    "d_model": 32,
    "d_ff": 64,
    "heads": 4,
    "encoder_layers": 2,
    "local_radius": 4,
    "global_block_size": 4,
    "dropout": 0.0,
}


def test_a_tiny_encoder_decoder_learns_to_correct_planted_substitutions():
    """Four true 8-base sequences, each read with fresh substitutions (15 % per base, the seqerror simulator): after
    400 teacher-forced steps the loss is below a tenth of its start and greedy decoding restores ≥ 85 % of new reads
    exactly (before: about a third are error-free) with under half the edit distance of the reads."""
    width, profile = 8, ErrorProfile(substitution=0.15)
    rng = np.random.default_rng(0)
    true_seqs = [rng.integers(0, 4, width).astype(np.uint8) for _ in range(4)]

    def pairs(rng, n):
        reads = [simulate(true_seqs[i % 4], width, profile, rng) for i in range(n)]
        return [r.noisy for r in reads], [r.true for r in reads]

    torch.manual_seed(0)
    model = build_enbed(TINY, 0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(400):
        x, y = map(torch.from_numpy, s2s.encode_pairs(*pairs(rng, 16), width))
        loss = s2s.teacher_forcing_loss(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    noisy, true = pairs(np.random.default_rng(1), 32)
    out = s2s.generate(model, torch.from_numpy(s2s.encode_pairs(noisy, true, width)[0]), {"strategy": "greedy"})
    assert model.training  # mode restored
    bases = ["".join("ACGTN"[b] for b in s) for s in noisy], ["".join("ACGTN"[b] for b in s) for s in true]
    m = s2s.correction_metrics(*bases, out)
    assert m["before"].sum() >= 20 and m["exact_before"] < 0.5  # the reads carry errors to fix
    assert m["exact_after"] >= 0.85 and m["after"].sum() < 0.5 * m["before"].sum()
    beam = s2s.generate(
        model, torch.from_numpy(s2s.encode_pairs(noisy, true, width)[0]), {"strategy": "beam", "num_beams": 3}
    )
    assert s2s.correction_metrics(*bases, beam)["exact_after"] >= 0.85
