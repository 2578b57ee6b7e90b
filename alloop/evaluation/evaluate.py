"""A model's energy and force errors on a labelled file: what ``alloop evaluate`` computes and prints.

The model is a checkpoint file (``alloop train -o``, ``alloop export
--model``) or a campaign run directory / store, whose newest model (or
checkpoint ``version``) is used; loading is :mod:`alloop.deploy.loading`,
as for ``alloop.calculator``. Errors are against the file's energies (eV) and
forces (eV/Angstrom): MAE and RMSE (the root mean square over all force
components), plus the per-atom energy MAE and the tails of the per-frame force
MAE (95th percentile, max); for frames of one molecule with rotatable bonds,
the same per conformer basin (trans / gauche+ / gauche- of each rotor,
:mod:`alloop.conformers`); for frames of several molecules, the
same per molecule (formula, :mod:`alloop.molecules`; ``per_molecule``).
Absolute energies are predicted at the data's fidelity when the frames record
one (``fidelity_hash``, as written by ``alloop label`` and ``alloop export``)
and the model has references for it, else at the campaign's expensive
fidelity, else as the checkpoint was saved; a remaining mismatch of fidelity
hashes is noted. A model trained by a campaign carries its error model
(:mod:`alloop.uncertainty.error_model`); then its predicted force error on the
frames is given next to the measured one (``predicted_force_mae_eV_per_A``,
``error_spearman`` between predicted and true per-frame force MAE,
``bound_coverage``); with a declared temperature of the frames
(``temperature_K``) also its bound weighted for that temperature
(``shifted_bound_coverage`` and the calibration frames' effective sample
size, :func:`alloop.training.error_fit.shifted_bound_metrics`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alloop.errors import AlloopError

if TYPE_CHECKING:
    from alloop.deploy.loading import TrainedModel


def load_model(source: str | Path, version: int | None = None, data_fidelity: str | None = None) -> TrainedModel:
    """The model to evaluate, its energies at ``data_fidelity`` if it has references for it, else at the expensive one.

    Without references for either (a checkpoint saved without them) the energies it was saved with are kept.
    """
    from alloop.deploy.loading import load_trained, use_fidelity

    trained = load_trained(source, version, None)
    for fidelity in (data_fidelity, "expensive"):
        if fidelity is None:
            continue
        try:
            return use_fidelity(trained, fidelity)
        except AlloopError:
            continue
    return trained


def evaluate_file(source: str | Path, data_path: str | Path, version: int | None = None, batch_size: int = 32,
                  threads: int = 1, temperature_K: float | None = None) -> dict[str, Any]:
    """The errors of the model ``source`` on the labelled file ``data_path``: ``model``, ``data``, ``method``,
    ``fidelity``, the :func:`~alloop.evaluation.metrics.error_metrics`, ``predicted`` (the model's own predicted
    error, {} without an error model; with ``temperature_K``, the frames' declared temperature, its weighted bound
    too), ``basins``, ``per_molecule`` and ``note`` (:func:`as_json` flattens it)."""
    import torch

    from alloop.evaluation.metrics import basin_metrics, evaluate_model, per_molecule_metrics
    from alloop.training.error_fit import predicted_error_metrics, shifted_bound_metrics
    from alloop.training.run import load_dataset

    if batch_size < 1:
        raise AlloopError("--batch-size must be at least 1")
    if temperature_K is not None and not temperature_K > 0:
        raise AlloopError(f"--temperature must be > 0 K, got {temperature_K:g}")
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        data = load_dataset(data_path, "data")
        trained = load_model(source, version, None if data.fidelity == "data" else data.fidelity)
        model = trained.model
        unknown = set(data.elements) - set(model.elements)
        if unknown:
            raise AlloopError(f"{data_path} has elements {sorted(unknown)} that the model does not know "
                              f"{list(model.elements)}")
        metrics = evaluate_model(model, data, batch_size)
        basins = basin_metrics(model, data, batch_size)
        molecules = per_molecule_metrics(model, data, batch_size)
        predicted = predicted_error_metrics(model, trained.metadata, data)
        if predicted is not None and temperature_K is not None:
            predicted.update(shifted_bound_metrics(model, trained.metadata, data, temperature_K) or {})
    finally:
        torch.set_num_threads(previous)
    active = trained.fidelity or {}
    note = None
    if data.fidelity != "data" and active.get("hash") and data.fidelity != active["hash"]:
        note = (f"the data's fidelity ({data.fidelity}) is not the one of the model's energy references "
                f"({active.get('name')}, {active['hash']}): absolute energy errors include the difference of the two "
                "levels of theory")
    return {"model": trained.description, "data": str(data_path), "method": trained.metadata.get("method"),
            "fidelity": active.get("name"), **metrics, "predicted": predicted or {}, "basins": basins,
            "per_molecule": molecules, "note": note}


def as_json(result: dict[str, Any]) -> dict[str, Any]:
    """``alloop evaluate --json``'s fields: :func:`evaluate_file`'s result with the predicted error's numbers among
    the others (undefined ones as None)."""
    fields = {k: v for k, v in result.items() if k not in ("predicted", "basins", "per_molecule", "note")}
    return {**fields, **finite_or_null(result["predicted"]), "basins": result["basins"],
            "per_molecule": result["per_molecule"], "note": result["note"]}


def text_lines(result: dict[str, Any]) -> list[str]:
    """:func:`evaluate_file`'s result as text (Markdown tables); its ``note`` apart (the caller prints it)."""
    method = f" (trained with {result['method']})" if result.get("method") else ""
    lines = [f"model {result['model']}{method}",
             f"data  {result['data']}: {result['n_frames']} frames, {result['n_atoms']} atoms",
             "| quantity | MAE | RMSE | unit |", "|---|---|---|---|",
             f"| energy | {result['energy_mae_eV']:.5f} | {result['energy_rmse_eV']:.5f} | eV |",
             f"| energy per atom | {result['energy_mae_per_atom_eV']:.5f} | | eV/atom |",
             f"| force components | {result['force_mae_eV_per_A']:.5f} | {result['force_rmse_eV_per_A']:.5f} "
             "| eV/Angstrom |",
             f"per-frame force MAE: 95th percentile {result['force_mae_p95_eV_per_A']:.5f}, max "
             f"{result['force_mae_max_eV_per_A']:.5f} eV/Angstrom (mean over atoms and components of each frame)"]
    predicted = result["predicted"]
    if predicted:
        lines += ["", f"the model's own predicted force error (its error model): mean "
                  f"{predicted['predicted_force_mae_eV_per_A']:.5f} eV/Angstrom against the measured "
                  f"{result['force_mae_eV_per_A']:.5f}; Spearman rho with the true per-frame error "
                  f"{rho_text(predicted['error_spearman'])}; {100 * predicted['bound_coverage']:.0f} % of frames below"
                  f" its {100 * predicted['bound_coverage_stated']:.0f} % bound"]
        if "shifted_bound_coverage" in predicted:
            lines += [f"for frames declared at {predicted['declared_temperature_K']:g} K (its calibration frames: "
                      f"{predicted['calibration_temperature_K']:g} K, Boltzmann-weighted, effective sample size "
                      f"{predicted['shifted_effective_sample_size']:.1f}): "
                      f"{100 * predicted['shifted_bound_coverage']:.0f} % of frames below the weighted bound, "
                      f"{100 * predicted['shifted_bound_infinite_share']:.0f} % of bounds infinite"]
    lines += _split_lines("molecule", "per molecule (formula, alloop.system.molecules)", result["per_molecule"])
    lines += _split_lines("basin", "per conformer basin (dihedrals of the rotatable bonds, alloop.system.conformers)",
                          result["basins"])
    return lines


def _split_lines(what: str, title: str, parts: dict[str, dict]) -> list[str]:
    """A Markdown table of the errors of each part (molecule, basin) of the data; nothing without parts."""
    if not parts:
        return []
    lines = ["", f"{title}:", f"| {what} | frames | share | force MAE (eV/A) | energy MAE (meV/atom) |",
             "|---|---:|---:|---:|---:|"]
    return lines + [f"| {name} | {m['n_frames']} | {m['share']:.0%} | {m['force_mae_eV_per_A']:.4f} | "
                    f"{1000 * m['energy_mae_per_atom_eV']:.2f} |" for name, m in parts.items()]


def finite_or_null(values: dict) -> dict:
    """JSON has no NaN: an undefined number (a rank correlation of a constant prediction) becomes null."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}


def rho_text(value: float) -> str:
    """A rank correlation as text; an undefined one (NaN) says why."""
    if math.isfinite(value):
        return f"{value:.2f}"
    return "undefined (the prediction is the same on every frame)"
