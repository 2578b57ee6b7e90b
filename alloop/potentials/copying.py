"""Deep copies of models that keep e3nn's generated code exact.

e3nn copies its code-generated modules (``CodeGenMixin``: ``o3.Linear``, tensor
products) by pickling them, and re-tracing the pickled fx code folds some
Wigner 3j buffers into float32 constants that ``.double()`` no longer reaches
(float64 forces then stop being exactly equivariant). :func:`exact_deepcopy`
copies those modules attribute by attribute instead, which copies their fx
graphs as they are (``torch.fx.GraphModule.__deepcopy__``). Models that hold
e3nn modules (SevenNet, a two-head model with a SevenNet representation) use it
as their ``__deepcopy__``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any, TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)


def exact_deepcopy(root: M, memo: dict[int, Any] | None = None) -> M:
    """A deep copy of ``root`` (``copy.deepcopy`` semantics, ``memo`` shared) with e3nn's modules copied exactly."""
    memo = {} if memo is None else memo
    if id(root) in memo:
        return memo[id(root)]
    codegen = sys.modules.get("e3nn.util.codegen")  # no e3nn module can exist before e3nn is imported
    if codegen is not None:
        for module in reversed(list(root.modules())):  # children before their parents
            if module is not root and isinstance(module, codegen.CodeGenMixin) and id(module) not in memo:
                copied = module.__class__.__new__(module.__class__)
                memo[id(module)] = copied
                copied.__dict__.update(copy.deepcopy(module.__dict__, memo))
    twin = root.__class__.__new__(root.__class__)
    memo[id(root)] = twin
    twin.__dict__.update(copy.deepcopy(root.__dict__, memo))
    return twin
