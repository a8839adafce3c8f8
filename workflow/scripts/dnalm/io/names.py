"""Chromosome names: the aliases of the config applied to an input, refusing two names that meet."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from dnalm.io.errors import DownloadError

log = logging.getLogger(__name__)


class Renamer:
    """Map chromosome names through aliases, refusing two names that land on one target.

    Attributes:
        renamed: Source names that changed, mapped to their new names.
    """

    def __init__(self, aliases: Mapping[str, str] | None, source: str) -> None:
        """Check the aliases and set up an empty mapping.

        Args:
            aliases: Source chromosome name to normalised name.
            source: The input's source, named in errors.

        Raises:
            DownloadError: If an alias is empty or contains whitespace.
        """
        self.aliases = dict(aliases or {})
        self.source = source
        self.renamed: dict[str, str] = {}
        self._origin: dict[str, str] = {}
        for old, new in self.aliases.items():
            if not all(isinstance(n, str) and n and not re.search(r"\s", n) for n in (old, new)):
                raise DownloadError(
                    f"{source}: alias {old!r} -> {new!r} is not a pair of non-empty names "
                    "without whitespace; fix `aliases` in the config"
                )

    def __call__(self, name: str) -> str:
        """Return the normalised name of ``name``.

        Args:
            name: A chromosome name as found in the input.

        Returns:
            Its alias, or the name itself.

        Raises:
            DownloadError: If another name in the input already maps to the same target.
        """
        new = self.aliases.get(name, name)
        first = self._origin.setdefault(new, name)
        if first != name:
            raise DownloadError(
                f"{self.source}: chromosome names {first!r} and {name!r} both become {new!r}; "
                "fix `aliases` in the config so that each name in this input has its own target"
            )
        if new != name:
            self.renamed[name] = new
        return new

    def log(self) -> None:
        """Log the chromosome names that changed."""
        if self.renamed:
            pairs = ", ".join(f"{old}->{new}" for old, new in self.renamed.items())
            log.info("%s: renamed %d chromosomes: %s", self.source, len(self.renamed), pairs)
