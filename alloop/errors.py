"""Exceptions for user mistakes. The CLI prints these as one line and exits non-zero.

Programming errors are ordinary Python exceptions and keep their tracebacks.
"""


class AlloopError(Exception):
    """A user-facing error: bad input, missing file, impossible request."""


class ConfigError(AlloopError):
    """An invalid campaign configuration. The message starts with the key path."""


class FidelityError(AlloopError):
    """A fidelity that cannot label the given structure (basis, spin, method)."""


class StoreError(AlloopError):
    """A campaign store that is missing, locked, or inconsistent."""
