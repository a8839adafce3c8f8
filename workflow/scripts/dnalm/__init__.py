"""dnalm: genomes to trained, evaluated and interpreted DNA sequence models."""

__version__ = "0.1.0"
