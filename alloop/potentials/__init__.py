"""Potentials: energy per structure, forces by autograd, per-atom latent features."""

from alloop.potentials.base import AtomsBatch, Potential, PotentialOutput

__all__ = ["AtomsBatch", "Potential", "PotentialOutput"]
