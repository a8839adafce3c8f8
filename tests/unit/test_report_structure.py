"""Tests for tests/helpers.report_structure and the saved structure of the reduced demo's report."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import report_structure

SAVED = Path(__file__).resolve().parents[1] / "data" / "report_structure.json"

PAGE = """<!DOCTYPE html><html><body><main><header><h1>dnalm report</h1></header>
<nav><h2>Contents</h2><ol><li><a href="#a">A</a></li></ol></nav>
<section id="a"><h2>First  section</h2><p class="note">A note, 12 windows.</p>
<section id="a-t1"><h3>Task t1</h3>
<table><thead><tr><th>model</th><th>Pearson  median</th></tr></thead><tbody><tr><th>not a header</th>
<td>0.5</td></tr></tbody></table>
<figure><img src="data:image/png;base64,AAAA" alt="x"><figcaption>Window chrI:1,200-1300:+ of 3.5 bp.</figcaption>
</figure></section>
<section id="a-t2"><h3>Task t2</h3><h4>bpnet</h4><table><thead><tr><th>a &amp; b</th></tr></thead></table></section>
</section>
<section id="b"><h2>Second</h2><p>Nothing here.</p></section>
</main></body></html>"""


def test_report_structure_of_a_hand_made_page() -> None:
    first, second = report_structure(PAGE)["sections"]
    assert first == {
        "id": "a",
        "title": "First section",
        "h3": ["Task t1", "Task t2"],
        "h4": ["bpnet"],
        "tables": [["model", "Pearson median"], ["a & b"]],  # header rows only
        "figures": ["Window chrI:#-#:+ of # bp."],
    }
    assert second == {"id": "b", "title": "Second", "h3": [], "h4": [], "tables": [], "figures": []}


def test_saved_structure_holds_the_demo_sections() -> None:
    sections = json.loads(SAVED.read_text())["sections"]
    ids = [s["id"] for s in sections]
    assert ids == ["inputs", "qc", "splits", "homology", "pretrain", "conservation", "training", "metrics",
                   "classification", "seqerror", "folds",
                   "counterfactual", "examples", "sweeps", "interpretation", "positions", "ism", "variants", "tracks"]
    assert all(s["title"] for s in sections)
    by_id = {s["id"]: s for s in sections}
    assert by_id["inputs"]["tables"][0][:3] == ["species", "kind", "name"]
    assert by_id["training"]["figures"] and by_id["examples"]["figures"]
