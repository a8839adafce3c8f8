"""Genome QC: assembly statistics, annotation measures, Mash, BUSCO and tantan, and the pretraining gate."""
