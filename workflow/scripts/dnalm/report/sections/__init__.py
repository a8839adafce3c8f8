"""The report's sections in page order: one module each, registered by one line of `SECTIONS`.

A section module (named after the section's HTML id) holds `TITLE` and `build(manifest) -> HTML`; it reads its files
through `dnalm.report.manifest.Manifest` and writes HTML with `dnalm.report.html`. To add a section, write the module
and add its name to `SECTIONS` where it belongs on the page.
"""

from __future__ import annotations

from importlib import import_module
from typing import NamedTuple

from markupsafe import Markup

from dnalm.report.manifest import Manifest

#: Section modules of this package, in page order.
SECTIONS = (
    "inputs",
    "qc",
    "splits",
    "homology",
    "pretrain",
    "conservation",
    "training",
    "metrics",
    "classification",
    "seqerror",
    "folds",
    "counterfactual",
    "examples",
    "sweeps",
    "interpretation",
    "positions",
    "ism",
    "variants",
    "tracks",
)


class Section(NamedTuple):
    """One built section: anchor id, title and HTML body."""

    id: str
    title: str
    html: Markup


def build_sections(manifest: Manifest) -> list[Section]:
    """Build every registered section.

    Args:
        manifest: The report's inputs.

    Returns:
        The sections in page order.
    """
    modules = [import_module(f"{__name__}.{name}") for name in SECTIONS]
    return [Section(name, module.TITLE, module.build(manifest)) for name, module in zip(SECTIONS, modules, strict=True)]
