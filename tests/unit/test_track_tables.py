"""Track and target tables (dnalm.track_tables): TSV rows become tracks and targets before validation; bad rows are
errors naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnalm import config as dc
from dnalm.track_tables import expand_tables

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, tracks: str, targets: str) -> dict:
    (tmp_path / "tracks.tsv").write_text(tracks)
    (tmp_path / "targets.tsv").write_text(targets)
    return {"species": {"sc": {"genome": {"path": "g.fa"}, "tracks": {"own": {"path": "own.bw"}},
                               "track_table": str(tmp_path / "tracks.tsv")}},
            "tasks": {"cov": {"type": "tracks", "species": "sc", "targets": [{"name": "own", "track": "own"}],
                              "target_table": str(tmp_path / "targets.tsv"), "window": {"length": 3200, "flank": 32},
                              "split": {"chromosomes": {"val": ["II"], "test": ["III"]}}}}}


TRACKS = "name\tsource\tmd5\nrna_p\thttps://x.org/rna+.bw\t0123456789abcdef0123456789abcdef\nrna_m\tdata/rna-.bw\t\n\n"
TARGETS = "name\ttrack\tplus\tminus\nrna\t\trna_p\trna_m\nown2\town\t\t\n"


def test_table_rows_become_tracks_and_targets_and_pass_the_checks(tmp_path: Path) -> None:
    cfg = expand_tables(_config(tmp_path, TRACKS, TARGETS), REPO)
    assert cfg["species"]["sc"]["tracks"] == {
        "own": {"path": "own.bw"},
        "rna_p": {"url": "https://x.org/rna+.bw", "md5": "0123456789abcdef0123456789abcdef"},
        "rna_m": {"path": "data/rna-.bw"}}
    assert cfg["tasks"]["cov"]["targets"] == [{"name": "own", "track": "own"},
                                              {"name": "rna", "plus": "rna_p", "minus": "rna_m"},
                                              {"name": "own2", "track": "own"}]
    dc.validate(cfg)
    dc.check_tasks(cfg)  # every target's tracks are the species'
    assert expand_tables(cfg, REPO) == cfg  # merged once: the table keys are now null


@pytest.mark.parametrize(("tracks", "targets", "message"), [
    ("name\turl\nx\ta.bw\n", TARGETS, r"tracks.tsv, line 1: the header must name name, source .*missing source"),
    ("name\tsource\n1x\ta.bw\n", TARGETS, r"tracks.tsv, line 2: track name '1x' must start with a letter"),
    ("name\tsource\nown\ta.bw\n", TARGETS, r"tracks.tsv, line 2: track 'own' is listed twice"),
    ("name\tsource\nx\t\n", TARGETS, r"tracks.tsv, line 2: track 'x' has no source"),
    ("name\tsource\nx\ta.bw\tb\n", TARGETS, r"tracks.tsv, line 2: 3 cells, the header has 2"),
    (TRACKS, "name\ttrack\tplus\tminus\nrna\t\trna_p\t\n", r"targets.tsv, line 2: target 'rna' needs either track"),
    (TRACKS, "name\ttrack\tplus\tminus\nrna\trna_p\trna_p\trna_m\n", r"targets.tsv, line 2: target 'rna' needs"),
    (TRACKS, "name\ttrack\nown\town\n", r"targets.tsv, line 2: target 'own' is listed twice"),
])
def test_bad_tables_name_the_file_and_line(tmp_path: Path, tracks: str, targets: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_tables(_config(tmp_path, tracks, targets), REPO)


def test_a_missing_table_names_its_key(tmp_path: Path) -> None:
    cfg = _config(tmp_path, TRACKS, TARGETS)
    cfg["species"]["sc"]["track_table"] = "nowhere.tsv"
    with pytest.raises(ValueError, match="species.sc.track_table: table 'nowhere.tsv' not found"):
        expand_tables(cfg, REPO)
