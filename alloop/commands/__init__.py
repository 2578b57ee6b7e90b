"""One module per ``alloop`` sub-command; each defines ``register(subparsers)`` and ``ORDER``."""
