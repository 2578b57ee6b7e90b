"""Uncertainty: Q-residual / Hotelling T^2 on latent features, limits, bias, frame selection."""
