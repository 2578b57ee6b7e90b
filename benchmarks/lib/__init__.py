"""What the benchmark scripts share, in one place: the scripts import ``lib.<module>``, never each other.

The scripts run as ``python benchmarks/<script>.py``, so ``benchmarks/`` is on ``sys.path`` and ``from lib.common
import ...`` works without installing anything. A function two scripts need lives here, not in either script.
"""
