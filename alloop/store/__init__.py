"""The Zarr campaign store: frames, labels, checkpoints, replica states; crash-safe commits.

See docs/store.md for the layout and the commit protocol.
"""

from alloop.store.campaign import CampaignStore
from alloop.store.labels import LabelTable
from alloop.store.resolve import STORE_DIRNAME, find_store, resolve_fidelity, store_path
from alloop.store.schema import ORIGIN_CODES, ORIGIN_NAMES, FrameFlag

__all__ = [
    "CampaignStore",
    "LabelTable",
    "FrameFlag",
    "ORIGIN_CODES",
    "ORIGIN_NAMES",
    "STORE_DIRNAME",
    "find_store",
    "resolve_fidelity",
    "store_path",
]
