"""Tests for dnalm.examples (labelled examples of classification tasks), their splits and their window stores."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.examples import ExampleError, dinucleotide_shuffle, make_examples
from dnalm.splits import assign_splits
from dnalm.store import WindowStore, write_store
from dnalm.tasks.classification import ClassificationTask, class_weights

RNG = np.random.default_rng(7)


def random_dna(n: int) -> str:
    return "".join(RNG.choice(list("ACGT"), n))


def spec(**examples) -> dict:
    return {"intervals": None, "fasta": None, "table": None, "classes": None, "length": None, "resize": "none",
            **examples}


def write_genome(path: Path, chroms: dict[str, str]) -> dict[str, int]:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in chroms.items()))
    return {name: len(seq) for name, seq in chroms.items()}


def run(tmp_path: Path, examples: dict, **kw) -> pd.DataFrame:
    return make_examples(spec(**examples), str(tmp_path / "examples.tsv"), str(tmp_path / "examples.fa"),
                         species="sp", flank=kw.pop("flank", 0), search_dirs=[str(tmp_path)], **kw)


def records(path: Path) -> dict[str, str]:
    out, name = {}, None
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:]
            out[name] = ""
        else:
            out[name] += line
    return out


# ---------------------------------------------------------------------------------------------------- readers
def test_intervals_are_cut_from_the_genome_with_flanks_along_their_strand(tmp_path):
    chrom = random_dna(400)
    chroms = write_genome(tmp_path / "genome.fa", {"c1": chrom})
    (tmp_path / "ex.tsv").write_text("chrom\tstart\tend\tstrand\tid\tlabel\n"
                                     "c1\t100\t120\t+\tp1\tpos\nc1\t200\t220\t-\tn1\tneg\nc1\t2\t22\t+\tedge\tneg\n")
    table = run(tmp_path, {"intervals": {"path": "ex.tsv"}}, flank=5, fasta=str(tmp_path / "genome.fa"),
                chroms=chroms)
    seqs = records(tmp_path / "examples.fa")
    assert seqs["p1"] == chrom[95:125]
    complement = str.maketrans("ACGT", "TGCA")
    assert seqs["n1"] == chrom[195:225].translate(complement)[::-1]
    assert "edge" not in seqs  # its flank runs off the chromosome
    edge = table.set_index("id").loc["edge"]
    assert not edge["kept"] and edge["reason"] == "out_of_bounds"
    row = table.set_index("id").loc["p1"]
    assert (row["chrom"], row["start"], row["end"], row["source_start"], row["source_end"]) == ("p1", 5, 25, 100, 120)
    assert (tmp_path / "examples.fa.fai").exists()


def test_labelled_fasta_per_file_and_per_record_and_gzip(tmp_path):
    with gzip.open(tmp_path / "pos.fa.gz", "wt") as handle:
        handle.write(">a some text\nACGTAC\nGT\n>b\nTTTTACGT\n")
    (tmp_path / "mixed.fa").write_text(">c label=neg\nACGTACGT\n>d x=1 label=pos\nCCCCGGGG\n")
    table = run(tmp_path, {"fasta": [{"path": "pos.fa.gz", "label": "pos"}, {"path": "mixed.fa", "label": None}]})
    assert table.set_index("id")["label"].to_dict() == {"a": "pos", "b": "pos", "c": "neg", "d": "pos"}
    assert records(tmp_path / "examples.fa")["a"] == "ACGTACGT"


def test_table_with_given_files_keeps_their_split(tmp_path):
    for name, n in (("train", 6), ("dev", 2), ("test", 2)):
        rows = [f"{random_dna(10)},{i % 2}" for i in range(n)]
        (tmp_path / f"{name}.csv").write_text("sequence,label\n" + "\n".join(rows) + "\n")
    table = run(tmp_path, {"table": {"path": None, "train": "train.csv", "dev": "dev.csv", "test": "test.csv"}})
    assert table["given_split"].value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}
    assert table["id"].iloc[0] == "train_0" and table["label"].astype(str).tolist()[:2] == ["0", "1"]


# ------------------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("content, examples, match", [
    (">a\nACGT\n>b\nACGTT\n", {}, r"2 lengths \(4–5 bp\); set examples.length"),
    (">a\nACGT\n>b\nACXT\n", {}, r"pos.fa, record 'b' \(line 3\): letter 'X' at base 3"),
    (">a\nACGT\n>b\nACGT\n", {"classes": ["pos", "neg", "x"]}, r"examples.classes \['x'\] have no example"),
    (">a\nACGT\n>a\nACGT\n", {}, r"pos.fa, line 3: duplicate FASTA record 'a'"),
])
def test_bad_fasta_examples_name_the_file_and_record(tmp_path, content, examples, match):
    (tmp_path / "pos.fa").write_text(content)
    (tmp_path / "neg.fa").write_text(">n\nACGT\n")
    with pytest.raises(ExampleError, match=match):
        run(tmp_path, {"fasta": [{"path": "pos.fa", "label": "pos"}, {"path": "neg.fa", "label": "neg"}],
                       **examples})
    assert not (tmp_path / "examples.fa").exists() and not (tmp_path / "examples.tsv").exists()


def test_unknown_label_and_missing_header_label(tmp_path):
    (tmp_path / "ex.csv").write_text("sequence,label\nACGT,a\nACGT,b\nACGT,c\n")
    with pytest.raises(ExampleError, match=r"ex.csv, line 4: unknown label 'c'; examples.classes are \['a', 'b'\]"):
        run(tmp_path, {"table": {"path": "ex.csv"}, "classes": ["a", "b"]})
    (tmp_path / "ex.fa").write_text(">x label=a\nACGT\n>y\nACGT\n")
    with pytest.raises(ExampleError, match=r"ex.fa, line 3: record 'y' has no label=<class>"):
        run(tmp_path, {"fasta": [{"path": "ex.fa", "label": None}]})


def test_one_class_is_an_error_and_pad_and_crop_resize(tmp_path):
    (tmp_path / "ex.csv").write_text("sequence,label\nACGT,a\nACGTAC,a\n")
    with pytest.raises(ExampleError, match="needs two classes"):
        run(tmp_path, {"table": {"path": "ex.csv"}, "length": 4, "resize": "pad"})
    (tmp_path / "ex.csv").write_text("id,sequence,label\ns,ACGT,a\nl,ACGTACGT,b\n")
    with pytest.raises(ExampleError, match=r"ex.csv, line 2: 4 bp is shorter than 6 bp and examples.resize is crop"):
        run(tmp_path, {"table": {"path": "ex.csv"}, "length": 6, "resize": "crop"})
    run(tmp_path, {"table": {"path": "ex.csv"}, "length": 6, "resize": "pad"})
    assert records(tmp_path / "examples.fa") == {"s": "NACGTN", "l": "CGTACG"}


# ------------------------------------------------------------------------------------------- splits and store
def dinucleotides(seq: str) -> dict[str, int]:
    return pd.Series([seq[i : i + 2] for i in range(len(seq) - 1)]).value_counts().to_dict()


def test_dinucleotide_shuffle_keeps_every_dinucleotide_count_and_is_seeded():
    seq = random_dna(81) + "NNN" + random_dna(20)
    shuffles = {dinucleotide_shuffle(seq, seed) for seed in range(20)}
    assert len(shuffles) == 20 and seq not in shuffles
    assert all(dinucleotides(s) == dinucleotides(seq) and s[0] == seq[0] for s in shuffles)
    assert dinucleotide_shuffle(seq, 3) == dinucleotide_shuffle(seq, 3)


def test_shuffled_negatives_keep_flanks_coordinates_and_split(tmp_path):
    chrom = random_dna(600)
    chroms = write_genome(tmp_path / "genome.fa", {"c1": chrom})
    (tmp_path / "ex.tsv").write_text("chrom\tstart\tend\tstrand\tid\tlabel\n" + "".join(
        f"c1\t{100 + 60 * i}\t{140 + 60 * i}\t{'+-'[i % 2]}\tx{i}\t{'pos' if i < 3 else 'neg'}\n" for i in range(6)))
    shuffled = {"label": "neg", "of": None, "per_example": 2, "seed": 0}
    table = run(tmp_path, {"intervals": {"path": "ex.tsv"}, "shuffled_negatives": shuffled}, flank=5,
                fasta=str(tmp_path / "genome.fa"), chroms=chroms)
    seqs = records(tmp_path / "examples.fa")
    assert table["label"].value_counts().to_dict() == {"neg": 9, "pos": 3}
    for i in range(3):
        rows = table.set_index("id").loc[[f"x{i}", f"x{i}~shuffle1", f"x{i}~shuffle2"]]
        assert rows["source_start"].nunique() == 1 and rows["label"].tolist() == ["pos", "neg", "neg"]
        original, one, two = (seqs[k] for k in rows.index)
        assert one[:5] == original[:5] and one[-5:] == original[-5:] and len({original, one, two}) == 3
        assert dinucleotides(one[5:-5]) == dinucleotides(original[5:-5])
    with pytest.raises(ExampleError, match="also in `of`"):
        run(tmp_path, {"intervals": {"path": "ex.tsv"}, "shuffled_negatives": {**shuffled, "of": ["neg"]}},
            fasta=str(tmp_path / "genome.fa"), chroms=chroms)
    with pytest.raises(ExampleError, match="unknown label 'other'"):
        run(tmp_path, {"intervals": {"path": "ex.tsv"}, "classes": ["neg", "pos"],
                       "shuffled_negatives": {**shuffled, "label": "other"}},
            fasta=str(tmp_path / "genome.fa"), chroms=chroms)


def example_table(tmp_path: Path, n_per_class: dict[str, int]) -> Path:
    rows = [f"{random_dna(12)},{label}" for label, n in n_per_class.items() for _ in range(n)]
    (tmp_path / "ex.csv").write_text("sequence,label\n" + "\n".join(rows) + "\n")
    run(tmp_path, {"table": {"path": "ex.csv"}}, flank=2)
    return tmp_path / "examples.tsv"


def test_random_split_is_stratified_and_seeded(tmp_path):
    windows = example_table(tmp_path, {"a": 60, "b": 20})
    (tmp_path / "fai").write_text("")
    out = assign_splits(str(windows), str(tmp_path / "fai"), str(tmp_path / "assigned.tsv"),
                        str(tmp_path / "counts.tsv"), random={"val": 0.1, "test": 0.2},
                        max_windows={"train": None, "val": None, "test": None}, seed=3)
    counts = out.groupby(["split", "label"]).size().to_dict()
    assert counts == {("test", "a"): 12, ("test", "b"): 4, ("train", "a"): 42, ("train", "b"): 14,
                      ("val", "a"): 6, ("val", "b"): 2}
    again = assign_splits(str(windows), str(tmp_path / "fai"), str(tmp_path / "assigned2.tsv"),
                          str(tmp_path / "counts2.tsv"), random={"val": 0.1, "test": 0.2},
                          max_windows={"train": None, "val": None, "test": None}, seed=3)
    assert again["split"].tolist() == out["split"].tolist()


def test_store_holds_one_hot_classes_and_batches_keep_them_under_revcomp(tmp_path):
    windows = example_table(tmp_path, {"neg": 9, "pos": 9})
    (tmp_path / "fai").write_text("")
    assign_splits(str(windows), str(tmp_path / "fai"), str(tmp_path / "assigned.tsv"), str(tmp_path / "counts.tsv"),
                  random={"val": 0.2, "test": 0.2}, max_windows={"train": None, "val": None, "test": None}, seed=0)
    task = {"type": "classification", "window": {"flank": 2}, "targets": [],
            "examples": spec(classes=["neg", "pos"])}
    write_store(str(tmp_path / "assigned.tsv"), "train", str(tmp_path / "train"), task=task,
                genomes={"sp": str(tmp_path / "examples.fa")}, tracks={"sp": {}})
    store = WindowStore(tmp_path / "train")
    assert store.channels == ["neg", "pos"] and store.labels and store.length == 12
    table = pd.read_csv(tmp_path / "assigned.tsv", sep="\t", keep_default_na=False)
    train = table[table["split"] == "train"].sort_values("row")
    x, y = store.batch(np.arange(len(store)), shifts=np.full(len(store), 2), revcomp=np.ones(len(store), bool))
    assert y.shape == (len(store), 2)
    assert y.argmax(1).tolist() == [["neg", "pos"].index(v) for v in train["label"]]
    seqs = records(tmp_path / "examples.fa")
    first = seqs[train["id"].iloc[0]][4:16]  # shifted by 2 within the 2 bp flank: bases 4..16 of the record
    complement = str.maketrans("ACGT", "TGCA")
    decoded = "".join("ACGT"[i] if x[0, :, j].any() else "N" for j, i in enumerate(x[0].argmax(0)))
    assert decoded == first.translate(complement)[::-1] and decoded.startswith("NN")  # the N flank shifted in
    assert json.loads((tmp_path / "train.json").read_text())["labels"] is True


def test_class_weights_and_balanced_sampling():
    np.testing.assert_allclose(class_weights(np.array([30, 10])), [40 / 60, 40 / 20])

    class Store:
        channels = ("a", "b")
        targets = np.eye(2, dtype=np.float32)[[0] * 90 + [1] * 10][:, :, None]

        def __len__(self):
            return 100

        def target_chunks(self, size):
            yield self.targets

    order = ClassificationTask().epoch_order(Store(), np.random.default_rng(0), {"class_balance": "sampling"})
    share = (np.asarray(order) >= 90).mean()
    assert len(order) == 100 and 0.35 < share < 0.65
    weights = ClassificationTask().count_weight(Store(), {"class_balance": "weights"})
    np.testing.assert_allclose(weights, [100 / 180, 100 / 20])
