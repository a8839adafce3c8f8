"""Tests for dnalm.report: the self-contained HTML report, built from a hand-made report manifest."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest

from dnalm.report import write_report
from dnalm.report.sections import SECTIONS, examples

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "wbr"}
HISTORY_HEADER = (
    "epoch\ttrain_loss\tval_loss\tval_profile_loss\tval_count_loss\tval_pearson_median\tlr\tseconds\tbest"
    "\ttrainable_params\ttotal_params\n"
)
COMPARISON_COLUMNS = "model arch n_seeds pearson_median pearson_median_sd pearson_mean auprc auroc test_loss"
COMPARISON = "\t".join(f"{COMPARISON_COLUMNS} count_pearson n_windows".split()) + """
bpnet\tbpnet\t3\t0.73\t0.02\t0.682\t0.605\t0.92\t939.2\t0.51\t120
lm_lora\tspecies_lm\t3\t0.809\t0.01\t0.739\t0.64\t0.931\t711.5\t0.62\t120
lm_lora_conv\tlm\t1\t0.77\t\t0.7\t0.61\t0.9\t800.0\t0.6\t120
baseline\tbpnet\t1\t0.1\t\t0.05\t0.2\t0.5\t2000.0\t0.0\t120
"""
WINDOW_TOTALS = [1.0, 50.0, 3.0, 90.0, 2.0, 10.0]
PRETRAIN_HISTORY = "step\ttrain_loss\tval_loss\tval_accuracy\tlr\tseconds\n" + "".join(
    f"{s}\t{8.3 - s / 100:.2f}\t{8.2 - s / 120:.3f}\t{0.01 * s / 100:.3f}\t0.001\t12.5\n" for s in (100, 200, 300)
)
PRETRAIN_SUMMARY = {
    "tokenizer": "kmer6_species", "species": ["scer", "skud"], "window": 300, "stride": 150, "layers": 2,
    "corpus": [{"genome": "scer", "species": "scer", "train_chroms": 14, "val_chroms": 1},
               {"genome": "skud_chrI", "species": "skud", "train_chroms": 1, "val_chroms": 0}],
    "hidden": 128, "heads": 4, "intermediate": None, "max_positions": 512, "steps": 300, "batch_size": 32,
    "parameters": 1234567, "train_windows": 81234, "dropped_train_windows": 17, "val_windows_available": 4000,
    "dropped_val_windows": 3, "val_windows_used": 128, "final_val_loss": 5.7, "final_val_accuracy": 0.0312,
    "steps_run": 300,
}
CF_IN_USE = "scer\tTrue\t0.00000\t0.00000\t1.00000\t120\n"
CF_HEADER = "species\ttoken_in_use\tmean_delta_log_count\tmean_abs_delta_log_count\tprofile_pearson_median\tn_windows\n"
COUNTERFACTUALS = {
    "bpnet": CF_HEADER,
    "lm_lora": CF_HEADER + CF_IN_USE + "skud\tFalse\t-0.23456\t0.31000\t0.91234\t120\n",
    "lm_lora_conv": CF_HEADER + CF_IN_USE + "skud\tFalse\t0.04321\t0.05000\t0.99012\t120\n",
}


class PageParser(HTMLParser):
    """Collect table rows, link targets and tag-balance errors of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.rows: list[list[tuple[str, bool]]] = []  # (cell text, bold)
        self._cell: list[str] | None = None
        self._bold = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._bold = [], False
        elif tag == "strong" and self._cell is not None:
            self._bold = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell).strip(), self._bold))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def row(self, first: str, containing: str = "") -> list[tuple[str, bool]]:
        """The first row whose first cell is `first` and that contains `containing`."""
        for row in self.rows:
            if row and row[0][0] == first and any(containing in text for text, _ in row):
                return row
        raise AssertionError(f"no row starting with {first!r} containing {containing!r}")


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _info(path: Path, **info: object) -> str:
    base = {
        "source": "https://example.org/x",
        "resolved": "x",
        "md5": "a" * 32,
        "md5_expected": None,
        "bytes": 1234567,
        "gzip": True,
        "renamed": {},
    }
    return _write(path, json.dumps({**base, **info}))


def _predictions(path: Path, order: list[int]) -> str:
    """Six windows, two channels, 50 bp; window i carries WINDOW_TOTALS[i] observed signal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    observed = np.zeros((6, 2, 50), dtype=np.float32)
    for i, total in enumerate(WINDOW_TOTALS):
        observed[i, 0, 20:30] = total / 10
    observed = observed[order]
    with h5py.File(path, "w") as fh:
        fh["observed"] = observed
        fh["predicted"] = observed + rng.random(observed.shape, dtype=np.float32)
        fh["window_id"] = np.array([f"chrVII:{i}000-{i}050:+".encode() for i in order])
        fh.attrs["channels"] = ["polya/+", "polya/-"]
    return str(path)


def _make_manifest(root: Path) -> list[dict]:
    """Records for task polya (three models, one a baseline) and task promoters (splits only), one pretrained LM."""
    res, out = root / "resources" / "yeast", root / "results"
    genome = _info(res / "genome.json", kind="genome", md5="b" * 32, md5_expected="B" * 32, sequences=17,
                   length=12157105, source="https://example.org/R64<b>.fa.gz")
    records = [
        {"kind": "input", "species": "yeast", "input": "genome", "path": genome},
        {"kind": "input", "species": "yeast", "input": "annotation",
         "path": _info(res / "annotation.json", kind="annotation", features=6600)},
        {"kind": "input", "species": "yeast", "input": "track", "track": "polya_plus",
         "path": _info(res / "tracks" / "polya_plus.json", kind="track", md5="c" * 32, md5_expected="d" * 32,
                       chroms=17)},
    ]
    lm = out / "pretrain" / "fungal_lm"
    records += [{"kind": "pretrain_summary", "lm": "fungal_lm",
                 "path": _write(lm / "pretrain.json", json.dumps(PRETRAIN_SUMMARY))},
                {"kind": "pretrain_history", "lm": "fungal_lm", "path": _write(lm / "history.tsv", PRETRAIN_HISTORY)}]
    counts = "species\tsplit\tsites\tdropped_n\tdropped_subsample\twindows\n"
    polya = {"task": "polya", "task_type": "profile"}
    records.append({"kind": "split_counts", **polya, "path": _write(
        out / "splits" / "polya" / "counts.tsv",
        counts + "yeast\ttrain\t900\t3\t0\t897\nyeast\tval\t60\t0\t0\t60\nyeast\ttest\t120\t0\t0\t120\n")})
    records.append({"kind": "comparison", **polya,
                    "path": _write(out / "eval" / "polya" / "comparison.tsv", COMPARISON)})
    curves = {"bpnet": [(1, 5.0, 4.0), (2, 3.0, 2.5), (3, 2.0, 2.7)], "lm_lora": [(1, 4.0, 3.5), (2, 3.0, 3.1)]}
    orders = {"bpnet": list(range(6)), "lm_lora": [5, 4, 3, 2, 1, 0], "baseline": list(range(6))}
    info = {"arch": "bpnet", "total_params": 90_000_000, "trainable_params": 2_400_000, "best_epoch": 2}
    for model, order in orders.items():
        rows = "".join(f"{e}\t{t}\t{v}\t0\t0\t0\t0.001\t1\t0\t\t\n" for e, t, v in curves.get(model, []))
        folder = out / "models" / "polya" / model
        records += [
            {"kind": "model_info", **polya, "model": model, "path": _write(folder / "model.json", json.dumps(info))},
            {"kind": "history", **polya, "model": model, "path": _write(folder / "history.tsv", HISTORY_HEADER + rows)},
            {"kind": "prediction", **polya, "model": model,
             "path": _predictions(out / "eval" / "polya" / model / "predictions.h5", order)},
        ]
    records += [{"kind": "counterfactual", **polya, "model": m,
                 "path": _write(out / "eval" / "polya" / m / "counterfactual.tsv", text)}
                for m, text in COUNTERFACTUALS.items()]
    promoters = _write(out / "splits" / "promoters" / "counts.tsv", counts + "ecoli\ttrain\t50\t0\t0\t50\n")
    records.append({"kind": "split_counts", "task": "promoters", "task_type": "tracks", "path": promoters})
    return records


@pytest.fixture
def manifest(tmp_path: Path) -> list[dict]:
    """Fresh records (and files) a test may change."""
    return _make_manifest(tmp_path)


def _render(out: Path, records: list[dict], n_examples: int = 0) -> str:
    """Write the report of `records` and return its text."""
    write_report(str(out), records, n_examples=n_examples, interpret_examples=3)
    return out.read_text(encoding="utf-8")


def _parse_html(text: str) -> PageParser:
    parser = PageParser()
    parser.feed(text)
    parser.close()
    return parser


def _section(text: str, section_id: str) -> str:
    """The HTML of one top-level section."""
    start = text.index(f'<section id="{section_id}"><h2>')
    end = text.find("<h2>", start + 30)
    return text[start : end if end != -1 else len(text)]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The report rendered once for the module (rendering takes seconds): its root directory and text."""
    root = tmp_path_factory.mktemp("report")
    out = root / "results" / "report.html"
    return root, _render(out, _make_manifest(root), n_examples=2)


@pytest.fixture
def page(rendered: tuple[Path, str]) -> tuple[str, PageParser]:
    """The rendered report and its parse."""
    return rendered[1], _parse_html(rendered[1])


def test_page_is_well_formed_and_self_contained(page: tuple[str, PageParser], rendered: tuple[Path, str]) -> None:
    text, parser = page
    assert parser.errors == [] and parser.stack == []
    # 2 split charts, 1 pretraining, 1 training, 2 example windows
    assert text.count('<img src="data:image/png;base64,') >= 6
    assert parser.urls and all(not u.startswith(("http:", "https:", "//")) for u in parser.urls)
    assert "dnalm report" in text and "dnalm 0.1.0" in text
    assert sorted(p.name for p in (rendered[0] / "results").iterdir()) == [
        "eval", "models", "pretrain", "report.html", "splits"
    ]
    positions = [text.index(f'<section id="{s}"><h2>') for s in SECTIONS]
    assert positions == sorted(positions) and SECTIONS[:3] == ("inputs", "qc", "splits")
    assert text.count("<h2>") == len(SECTIONS) + 1  # the contents, then one per registered section


def test_inputs_table_flags_md5_and_escapes(page: tuple[str, PageParser]) -> None:
    text, parser = page
    genome, track = parser.row("yeast", "genome"), parser.row("yeast", "polya_plus")
    assert genome[6][0] == "✓" and track[6][0] == "✗"
    assert parser.row("yeast", "annotation")[6][0] == "–"
    assert genome[7][0] == "1,234,567" and "17 sequences, 12,157,105 bp" == genome[8][0]
    assert "R64&lt;b&gt;.fa.gz" in text and "R64<b>" not in text


def test_comparison_formatting_and_best_is_bold(page: tuple[str, PageParser]) -> None:
    _, parser = page
    lora, bpnet = parser.row("lm_lora", "0.809"), parser.row("bpnet", "939.2")
    assert parser.row("lm_lora_conv", "800.0")[1:3] == [("0.770", False), ("0.700", False)]
    assert lora[1] == ("0.809 ± 0.010", True)
    assert bpnet[1] == ("0.730 ± 0.020", False)
    assert lora[5] == ("711.5", True) and bpnet[5] == ("939.2", False)  # lowest loss wins
    assert lora[8] == ("3", False) and parser.row("baseline", "2,000.0")[1] == ("0.100", False)


def test_training_section(page: tuple[str, PageParser]) -> None:
    text, parser = page
    assert parser.row("baseline", "not trained")[5][0] == "not trained (baseline)"
    bpnet = parser.row("bpnet", "90,000,000")
    assert bpnet[2:5] == [("90,000,000", False), ("2,400,000", False), ("2.7%", False)]
    assert bpnet[6:] == [("2", False), ("2.500", False)]  # row with the minimum val loss
    assert "No models were trained for task promoters." in text
    assert "No test metrics for task promoters." in text and "No predictions for task promoters." in text


def test_examples_pick_typical_windows(page: tuple[str, PageParser]) -> None:
    # Totals sorted: 1, 2, 3, 10, 50, 90; two examples sit at the 50th and 95th percentile ranks: 3 and 90.
    text, _ = page
    assert "Window chrVII:3000-3050:+" in text and "Window chrVII:2000-2050:+" in text
    assert "Window chrVII:1000-1050:+" not in text and "missing from some predictions" not in text
    assert text.index("Window chrVII:3000-3050:+") < text.index("Window chrVII:2000-2050:+")


def test_empty_report_says_so(tmp_path: Path) -> None:
    text = _render(tmp_path / "report.html", [])
    assert "No input files were downloaded." in text and text.count("No tasks were run") == 4
    assert "No language model was pretrained by this workflow" in text
    assert "No species-token counterfactual was computed." in text


def test_pretrain_section(page: tuple[str, PageParser]) -> None:
    text, _ = page
    section = _section(text, "pretrain")
    parser = _parse_html(section)
    row = [cell for cell, _ in parser.row("fungal_lm")]
    assert row[1:4] == ["kmer6_species", "scer (scer), skud_chrI (skud)", "300 / 150"]
    assert row[4:8] == ["81,234 (17)", "128 of 4,000 (3)", "2 / 128 / 4", "1,234,567"]
    assert row[8:] == ["300 of 300", "5.700", "3.1%"]
    assert section.count('<img src="data:image/png;base64,') == 1
    assert "Pretraining of fungal_lm" in section
    assert text.index('id="pretrain"') < text.index('<section id="training">')


def test_pretrain_section_without_history(tmp_path: Path, manifest: list[dict]) -> None:
    records = [r for r in manifest if r["kind"] != "pretrain_history"]
    section = _section(_render(tmp_path / "report.html", records), "pretrain")
    assert "No pretraining history for fungal_lm." in section and "<img" not in section
    assert _parse_html(section).row("fungal_lm")[7][0] == "1,234,567"


def test_counterfactual_section(page: tuple[str, PageParser]) -> None:
    text, _ = page
    section = _section(text, "counterfactual")
    parser = _parse_html(section)
    assert parser.errors == []
    assert [c for c, _ in parser.rows[0]] == ["model", "scer", "skud", "test windows"]
    lora, conv = parser.row("lm_lora"), parser.row("lm_lora_conv")
    assert lora[1] == ("● in useΔ +0.000 (|Δ| 0.000)r 1.000", True)  # token in use marked
    assert lora[2:] == [("Δ -0.235 (|Δ| 0.310)r 0.912", False), ("120", False)]
    assert conv[2][0] == "Δ +0.043 (|Δ| 0.050)r 0.990"
    assert not any(row and row[0][0] == "bpnet" for row in parser.rows)  # header-only file: no row
    assert "No species token, so no counterfactual: bpnet." in section
    assert "how much it relies on the token" in section
    assert "No counterfactual for task promoters." in section


def test_missing_input_is_named(tmp_path: Path, manifest: list[dict]) -> None:
    Path(next(r["path"] for r in manifest if r["kind"] == "history")).unlink()
    with pytest.raises(FileNotFoundError, match="polya/bpnet/history.tsv"):
        _render(tmp_path / "report.html", manifest)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "comparisons"}, "unknown kind 'comparisons'"),
    ({"task": None}, "comparison record .* lacks task"),
    ({"path": None}, "comparison record .* lacks path"),
])
def test_malformed_record_is_rejected(tmp_path: Path, manifest: list[dict], change: dict, message: str) -> None:
    index = next(i for i, r in enumerate(manifest) if r["kind"] == "comparison")
    manifest[index] = {k: v for k, v in {**manifest[index], **change}.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        _render(tmp_path / "report.html", manifest)


def test_duplicate_record_is_rejected(tmp_path: Path, manifest: list[dict]) -> None:
    comparison = next(r for r in manifest if r["kind"] == "comparison")
    copy = _write(tmp_path / "elsewhere.tsv", COMPARISON)
    with pytest.raises(ValueError, match="two comparison records for .*'task': 'polya'.*elsewhere.tsv"):
        _render(tmp_path / "report.html", [*manifest, {**comparison, "path": copy}])


def test_names_come_from_records_not_paths(tmp_path: Path, manifest: list[dict]) -> None:
    # a comparison table anywhere, named by its record: the report never parses a path
    flat = _write(tmp_path / "flat" / "any_name.tsv", COMPARISON)
    records = [{**r, "path": flat} if r["kind"] == "comparison" else r for r in manifest]
    metrics = _parse_html(_section(_render(tmp_path / "report.html", records), "metrics"))
    assert metrics.row("lm_lora", "0.809")[1] == ("0.809 ± 0.010", True)


def test_examples_dispatch_on_task_type(tmp_path: Path, manifest: list[dict], monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[int, int]] = []
    monkeypatch.setitem(examples.DRAWERS, "toy", lambda ax, obs, pred: drawn.append((len(obs), len(pred))))
    records = [{**r, "task_type": "toy"} if r["kind"] == "prediction" else r for r in manifest]
    section = _section(_render(tmp_path / "report.html", records, n_examples=1), "examples")
    assert drawn == [(50, 50)] * 6  # one window: 3 models x 2 channels, each through the toy type's function
    assert section.count("<img") == 1
    unknown = [{**r, "task_type": "seq2seq"} if r["kind"] == "prediction" else r for r in manifest]
    with pytest.raises(ValueError, match="task polya: the report cannot draw .* task type 'seq2seq'; known: profile"):
        _render(tmp_path / "report.html", unknown, n_examples=1)
    assert set(examples.DRAWERS) >= {"profile", "tracks"}


SWEEP = """model\tlm.lora.dropout\ttrain.lr\tn_seeds\tval_loss\tval_loss_sd\tpearson_median\tpearson_median_sd\tauroc\tauroc_sd\tbest
m~dropout0.1~lr0.001\t0.1\t0.001\t3\t2.5\t0.1\t0.61\t0.02\t0.90\t0.01\tFalse
m~dropout0.5~lr0.001\t0.5\t0.001\t3\t2.1\t0.05\t0.66\t0.01\t0.92\t0.01\tTrue
m~dropout0.1~lr0.01\t0.1\t0.01\t3\t2.9\t0.2\t0.55\t0.03\t0.88\t0.02\tFalse
m~dropout0.5~lr0.01\t0.5\t0.01\t3\t2.7\t0.1\t0.57\t0.02\t0.89\t0.01\tFalse
"""


def test_sweep_section(tmp_path: Path, manifest: list[dict]) -> None:
    out = tmp_path / "report.html"
    sweep = _write(tmp_path / "results" / "eval" / "polya" / "sweeps" / "m.tsv", SWEEP)
    record = {"kind": "sweep", "task": "polya", "task_type": "profile", "model": "m", "path": sweep}
    section = _section(_render(out, [*manifest, record]), "sweeps")
    assert "Best point (lowest mean validation loss): m~dropout0.5~lr0.001." in section
    assert section.count("<img") == 1  # metrics against each swept key, one figure
    row = _parse_html(section).row("m~dropout0.5~lr0.001")
    assert [cell for cell, _ in row][1:5] == ["0.5", "0.001", "3", "2.100 ± 0.050"]
    assert all(bold for _, bold in row)  # the best point is bold
    assert not any(bold for _, bold in _parse_html(section).row("m~dropout0.1~lr0.01"))

    assert "No model has a sweep" in _section(_render(out, manifest), "sweeps")


def test_sweep_section_of_a_classification_task_shows_its_metrics(tmp_path: Path, manifest: list[dict]) -> None:
    out = tmp_path / "report.html"
    table = ("model\tlm.lora.dropout\tn_seeds\tval_loss\tval_loss_sd\taccuracy\taccuracy_sd\tmcc\tmcc_sd\tauroc"
             "\tauroc_sd\tbest\nm~dropout0.1\t0.1\t1\t0.50\t\t0.75\t\t0.43\t\t0.82\t\tTrue\n"
             "m~dropout0.9\t0.9\t1\t0.56\t\t0.70\t\t0.35\t\t0.75\t\tFalse\n")
    sweep = _write(tmp_path / "results" / "eval" / "promoters" / "sweeps" / "m.tsv", table)
    record = {"kind": "sweep", "task": "promoters", "task_type": "classification", "model": "m", "path": sweep}
    section = _section(_render(out, [*manifest, record]), "sweeps")
    assert "test accuracy" in section and "test MCC" in section and "Pearson" not in section
    assert [cell for cell, _ in _parse_html(section).row("m~dropout0.9")][1:] == ["0.9", "1", "0.560", "0.700",
                                                                                   "0.350", "0.750"]


CROSS_FOLD = """predictor\tmodel\tmetric\tmean\tci95\tsd\tn_folds\tfold_0\tfold_1\tfold_2
single\tlm\tpearson_median\t0.6\t0.05\t0.02\t3\t0.58\t0.6\t0.62
single\tlm\ttrack_pearson/rna\t0.5\t0.1\t0.04\t3\t0.46\t0.5\t0.54
ensemble\tlm\tpearson_median\t0.65\t0.04\t0.016\t3\t0.63\t0.65\t0.67
"""
PRETRAINING = """pretrained\tscratch\tmetric\tpretrained_mean\tscratch_mean\tdifference\tci95\tn_pairs\tp_value\tpaired_by
lm\tlm_scratch\tpearson_median\t0.6\t0.4\t0.2\t0.03\t3\t0.004\tfold
"""


def test_folds_section(tmp_path: Path, manifest: list[dict]) -> None:
    out = tmp_path / "report.html"
    records = [{"kind": kind, "task": "cov", "task_type": "tracks",
                "path": _write(tmp_path / "results" / "eval" / "cov" / f"{kind}.tsv", text)}
               for kind, text in (("cross_fold", CROSS_FOLD), ("pretraining", PRETRAINING))]
    section = _section(_render(out, [*manifest, *records]), "folds")
    parsed = _parse_html(section)
    assert [cell for cell, _ in parsed.row("lm")][1:4] == ["single", "3", "0.600 ± 0.050"]
    assert "track_pearson/rna" in section and "0.500 ± 0.100" in section and "0.650 ± 0.040" in section
    assert "0.200 ± 0.030" in section and "Paired by fold" in section and section.count("<img") == 1
    assert "No cross-validated task" in _section(_render(out, manifest), "folds")
