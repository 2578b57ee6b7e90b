"""alloop: active-learning molecular dynamics for machine-learned force fields."""

__version__ = "0.1.0"
