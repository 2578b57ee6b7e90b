"""Training: the loss of ASTEROID Eq. 1, energy references, ASTEROID stages, score matching."""
