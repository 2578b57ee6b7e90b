"""The package version, importable by any layer without importing the package's top (alloop/__init__)."""

__version__ = "0.1.0"  # keep equal to pyproject.toml's version
