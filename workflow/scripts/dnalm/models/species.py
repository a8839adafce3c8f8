"""The species a trunk reads, switchable: what the species-token counterfactual (`dnalm.evaluate`) swaps."""

from __future__ import annotations

import contextlib

from dnalm import tokenize


class SpeciesSwitch:
    """For trunks with a vocabulary (`vocab`: token → id) and the id of the species in use (`species_id`): the
    species by name, and `use_species` to run with another one within a block. Mixed into `nn.Module` trunks."""

    vocab: dict[str, int]
    species_id: int | None

    @property
    def species(self) -> str | None:
        """Name of the species in use (None without species)."""
        return next((t for t, i in self.vocab.items() if i == self.species_id), None)

    @species.setter
    def species(self, name: str) -> None:
        self.species_id = tokenize.species_id(self.vocab, name)

    @contextlib.contextmanager
    def use_species(self, name: str):
        """Run the model with another species within the block (species counterfactual)."""
        previous = self.species_id
        self.species = name
        try:
            yield self
        finally:
            self.species_id = previous
