"""What changes a label's numbers without being a fidelity field: the software that computed it.

A fidelity's hash keys its labels (method, basis, grid, convergence, ...). The
PySCF version, and for DFT the libxc version and the functional as PySCF
resolves the method name (``pyscf_conf.py`` can redefine B3LYP), or for an xtb
fidelity the tblite version, are recorded beside the labels instead: per
fidelity in the store, per frame in extxyz info (``pyscf_version``,
``libxc_version``, ``xc_definition``, ``tblite_version``). Labels of one hash
made by different software are not mixed silently (:func:`mix_problem`).

A provenance is a mapping key -> value; a value lists several versions
(``"2.6.2; 2.8.0"``) only where a mix was accepted explicitly. A missing key is
unknown and accepted.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloop.fidelity import Fidelity

#: provenance key -> extxyz info key
INFO_KEYS = {"pyscf": "pyscf_version", "libxc": "libxc_version", "xc": "xc_definition", "tblite": "tblite_version"}
_SEPARATOR = "; "


def current_provenance(fidelity: Fidelity) -> dict[str, str]:
    """The provenance of a label computed here and now at ``fidelity`` (with PySCF, or tblite for xtb)."""
    if fidelity.family == "xtb":
        return {"tblite": _tblite_version()}
    import pyscf

    out = {"pyscf": str(pyscf.__version__)}
    if fidelity.is_dft:
        out.update(_dft_provenance(fidelity.method))
    return out


@functools.lru_cache(maxsize=1)
def _tblite_version() -> str:
    return importlib.metadata.version("tblite")


@functools.cache
def _dft_provenance(method: str) -> dict[str, str]:
    from pyscf.dft import libxc

    (hyb, alpha, omega), terms = libxc.parse_xc(method)
    parts = [f"{xc_id}*{weight:g}" for xc_id, weight in terms]
    if hyb or alpha or omega:
        parts.insert(0, f"HF*{hyb:g}/{alpha:g}/{omega:g}")
    return {"libxc": str(libxc.libxc_version()), "xc": "+".join(parts)}


def to_info(provenance: Mapping[str, str]) -> dict[str, str]:
    """extxyz info entries of a provenance."""
    return {INFO_KEYS[k]: v for k, v in provenance.items() if k in INFO_KEYS}


def from_info(info: Mapping[str, Any]) -> dict[str, str]:
    """The provenance recorded in extxyz info ({} if none)."""
    return {k: str(info[key]) for k, key in INFO_KEYS.items() if key in info}


def versions(value: str) -> set[str]:
    """The versions a provenance value lists."""
    return {v.strip() for v in value.split(";") if v.strip()}


def mix_problem(stored: Mapping[str, str], incoming: Mapping[str, str]) -> str | None:
    """How ``incoming`` differs from ``stored`` ("PySCF 2.6.2 in the store, 2.8.0 new"), or None if it fits."""
    for key, value in incoming.items():
        if key in stored and not versions(value) <= versions(stored[key]):
            return f"{_LABELS.get(key, key)} {stored[key]} in the store, {value} new"
    return None


def merged(stored: Mapping[str, str], incoming: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """``stored`` with the versions of every ``incoming`` provenance added."""
    out = dict(stored)
    for prov in incoming:
        for key, value in prov.items():
            both = versions(out.get(key, "")) | versions(value)
            out[key] = _SEPARATOR.join(sorted(both, key=_version_key))
    return out


def combine(
    stored: Mapping[str, str], incoming: Iterable[Mapping[str, str]], allow_mix: bool = False
) -> tuple[dict[str, str], str | None]:
    """The provenance after adding labels of the ``incoming`` provenances (the first one known sets it), and
    the first mix with what came before (None if none). Without ``allow_mix`` the merge stops at that mix."""
    out, problem = dict(stored), None
    for item in {tuple(sorted(p.items())): p for p in incoming if p}.values():
        found = mix_problem(out, item)
        if found and not allow_mix:
            return out, found
        problem = problem or found
        out = merged(out, [item])
    return out, problem


def mix_error(fidelity_name: str, fidelity_hash: str, problem: str) -> str:
    """The one-line refusal to mix labels of one fidelity made by different software."""
    return (
        f"labels of fidelity {fidelity_name} ({fidelity_hash}) from different software ({problem}): label with "
        "the store's versions, or accept the mix (recording both) with --allow-version-mix"
    )


def describe(provenance: Mapping[str, str]) -> str:
    """One-line text, e.g. "PySCF 2.8.0, libxc 7.0.0" ("unknown versions" if empty)."""
    return ", ".join(f"{_LABELS.get(k, k)} {v}" for k, v in provenance.items()) or "unknown versions"


_LABELS = {"pyscf": "PySCF", "libxc": "libxc", "xc": "functional", "tblite": "tblite"}


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))
