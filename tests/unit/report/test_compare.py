"""``alloop report RUN_A RUN_B --compare``: one figure of learning curves and a side-by-side summary.

Two small real stores are written the way the campaign driver writes them (frames, labels at both
fidelities, model checkpoints with their validation metrics, ``cycles`` rows, ``progress`` phases):
a periodic run with an evaluation set, scored by :mod:`alloop.evaluation.campaign`, and a naive run
without one (its curve falls back to the validation errors).
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from alloop.cli import main
from alloop.config import load_campaign
from alloop.config.campaign import ROLES
from alloop.evaluation import campaign as evaluation
from alloop.io import attach_label, write_extxyz
from alloop.labeling.result import STATUS_CODES, LabelResult, LabelStatus
from alloop.potentials.checkpoint import checkpoint_to_bytes
from alloop.potentials.registry import build_model
from alloop.store import ledger
from alloop.store.campaign import CampaignStore
from alloop.store.resolve import store_path

CAMPAIGN = """
name: {name}
system: {{structures: H2O}}
fidelities: {{cheap: hf-sto3g, expensive: {{name: hf-631g, method: hf, basis: 6-31g}}}}
model: pair
schedule: {{strategy: {strategy}, n_cycles: 2}}
"""
REFERENCES = {1: -13.0, 8: -2040.0}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _water_frames(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.05, size=(3, 3))
        frames.append(atoms)
    return frames


def _label(k: int, cpu_s: float, ok: bool = True) -> LabelResult:
    if not ok:
        return LabelResult.failure(3, LabelStatus.SCF_NOT_CONVERGED, "no convergence", cpu_seconds=cpu_s)
    rng = np.random.default_rng(k)
    return LabelResult(energy_eV=-2066.0 + 0.01 * k, forces_eV_per_A=rng.normal(scale=0.5, size=(3, 3)),
                       status=LabelStatus.OK, cpu_seconds=cpu_s, wall_seconds=cpu_s)


def _model_blob(seed: int, expensive_hash: str) -> bytes:
    import torch

    torch.manual_seed(seed)
    model = build_model("pair", [1, 8], cutoff_A=4.0, n_rbf=8, dtype="float64")
    with torch.no_grad():  # large enough weights that each model scores differently on the evaluation set
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    return checkpoint_to_bytes(model, {"energy_references": {expensive_hash: REFERENCES}})


def _make_run(tmp_path, name: str, strategy: str, seed: int, with_evaluation: bool):
    """A finished store: bootstrap + 2 cycles; periodic trains every cycle, naive only at the end."""
    folder = tmp_path / name
    folder.mkdir()
    text = CAMPAIGN.format(name=name, strategy=strategy)
    if with_evaluation:
        rng = np.random.default_rng(seed)
        write_extxyz(folder / "eval.extxyz", [attach_label(a, -2066.0, rng.normal(scale=0.5, size=(3, 3)))
                                              for a in _water_frames(4, seed + 100)])
        text += "evaluation: {structures: eval.extxyz}\n"
    (folder / "c.yaml").write_text(text)
    cfg = load_campaign(folder / "c.yaml")
    fids = {role: cfg.fidelity(role) for role in ROLES}
    run_dir = folder / "run"
    rng = np.random.default_rng(seed)
    with CampaignStore.create(store_path(run_dir), cfg.to_dict()) as store:
        evaluation.prepare(store, cfg, log=lambda s: None)
        for k, cycle in enumerate((-1, 0, 1)):
            ids = store.add_frames(_water_frames(4, seed + k), origin="bootstrap" if cycle < 0 else "md", cycle=cycle)
            store.add_labels(fids["cheap"], ids, [_label(int(i), 1.5 + k + seed, ok=(strategy != "naive" or i != 5))
                                                  for i in ids])
            store.add_labels(fids["expensive"], ids[:2], [_label(int(i), 20.0 + 3 * k + 7 * seed) for i in ids[:2]])
            trains = strategy == "periodic" or cycle in (-1, 1)
            metrics = {"force_mae_eV_per_A": float(rng.uniform(0.05, 0.2)), "energy_mae_eV": 0.01,
                       "energy_mae_per_atom_eV": float(rng.uniform(0.001, 0.01))}
            version = (store.add_checkpoint(_model_blob(seed + k, fids["expensive"].hash()),
                                            {"cycle": cycle, "metrics": metrics}, role="model") if trains else -1)
            _cycles_row(store, fids, cycle, version, metrics if trains else {})
            ledger.mark_phase(store, cycle, "trained")
        ledger.mark_phase(store, 1, "finished", note={"reason": "2 cycles done"})
    return run_dir


def _cycles_row(store: CampaignStore, fids: dict, cycle: int, version: int, metrics: dict) -> None:
    """The row the driver writes (alloop.campaign.phases.cycle_record.record_cycle), with the spend read from the store."""
    sp = ledger.spend(store, fids)
    store.append_rows(
        "cycles", cycle=np.array([cycle], np.int32), model_version=np.array([version], np.int32),
        md_frames=np.array([0], np.int64), flag_rate=np.array([0.0]),
        labels_cheap=np.array([sp.labels["cheap"]], np.int64),
        labels_expensive=np.array([sp.labels["expensive"]], np.int64),
        cpu_cheap_s=np.array([sp.cpu_seconds["cheap"]]), cpu_expensive_s=np.array([sp.cpu_seconds["expensive"]]),
        val_force_mae_eV_per_A=np.array([metrics.get("force_mae_eV_per_A", np.nan)]),
        val_energy_mae_eV=np.array([metrics.get("energy_mae_eV", np.nan)]),
        train_seconds=np.array([1.0]), time=np.array([0.0]),
        **evaluation.cycle_columns(store, version, cycle),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    return (_make_run(tmp, "per", "periodic", seed=1, with_evaluation=True),
            _make_run(tmp, "nai", "naive", seed=2, with_evaluation=False))


def _expected(run_dir) -> dict:
    """The numbers compare.md must show, read from the store without alloop.report."""
    with CampaignStore.open(store_path(run_dir)) as store:
        labels = {info["name"]: store.labels(h) for h, info in store.fidelities().items()}
        rows = store.table("cycles")
        models = rows["model_version"] >= 0
        if "evaluation" in store.table_names():
            scores = store.table("evaluation")
            order = [int(np.flatnonzero(scores["model_version"] == v)[0]) for v in rows["model_version"][models]]
            force = scores["eval_force_mae_eV_per_A"][order]
            energy = 1000 * scores["eval_energy_mae_per_atom_eV"][order]
        else:
            force = rows["val_force_mae_eV_per_A"][models]
            energy = [1000 * store.checkpoint(int(v))[1]["metrics"]["energy_mae_per_atom_eV"]
                      for v in rows["model_version"][models]]
        cost = (rows["cpu_cheap_s"] + rows["cpu_expensive_s"])[models]
        best = int(np.argmin(force))
        times = store.table("progress")["time"]
        return {
            "labels": {n: len(t) for n, t in labels.items()},
            "failed": {n: int(np.sum(t.status != STATUS_CODES[LabelStatus.OK])) for n, t in labels.items()},
            "cpu": {n: float(t.cpu_seconds.sum()) for n, t in labels.items()},
            "final": (float(force[-1]), float(energy[-1])),
            "best": (float(force[best]), float(cost[best]), float(energy[best])),
            "best_version": int(rows["model_version"][models][best]), "wall": float(times.max() - times.min()),
            "n_models": sum(c["role"] == "model" for c in store.checkpoints()),
        }


def _row(markdown: str, title: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {title} |"))
    return [cell.strip() for cell in line.strip("|").split("|")[1:]]


def test_compare_writes_the_curves_and_both_runs_numbers(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["report", *map(str, runs), "--compare", "-o", str(out)]) == 0
    assert capsys.readouterr().out.split() == [str(out / "compare_cost.png"), str(out / "compare.md")]
    png = (out / "compare_cost.png").read_bytes()
    assert png[:8] == PNG_MAGIC
    import matplotlib.image

    height, width = matplotlib.image.imread(out / "compare_cost.png").shape[:2]
    assert width > 1.8 * height  # two panels: force and energy (both runs know their energy MAE)

    md = (out / "compare.md").read_text()
    assert _row(md, "campaign name") == ["per", "nai"]
    assert _row(md, "strategy") == ["periodic", "naive"]
    assert _row(md, "model") == ["pair", "pair"]
    assert _row(md, "errors on")[0].startswith("evaluation set (4 frames") and _row(md, "errors on")[1] == "validation"
    for column, run_dir in enumerate(runs):
        e = _expected(run_dir)
        failed = e["failed"]["hf-sto3g"]
        cheap = f"{e['labels']['hf-sto3g']}" + (f" ({failed} failed)" if failed else "")
        assert _row(md, "labels, cheap")[column] == cheap
        assert _row(md, "labels, expensive")[column] == str(e["labels"]["hf-631g"])
        assert _row(md, "CPU s, cheap")[column] == f"{e['cpu']['hf-sto3g']:.0f}"
        assert _row(md, "CPU s, expensive")[column] == f"{e['cpu']['hf-631g']:.0f}"
        assert _row(md, "wall time (s)")[column] == f"{e['wall']:.0f}"
        assert _row(md, "models")[column] == str(e["n_models"])
        assert _row(md, "final force MAE (eV/Å)")[column].startswith(f"{e['final'][0]:.4f} (v")
        assert _row(md, "final energy MAE (meV/atom)")[column] == f"{e['final'][1]:.2f}"
        force, cost, energy = e["best"]
        assert _row(md, "best force MAE (eV/Å), at cost")[column].startswith(f"{force:.4f} (v{e['best_version']},")
        assert _row(md, "best force MAE (eV/Å), at cost")[column].endswith(f", {cost:.0f} CPU s)")
        assert _row(md, "energy MAE of the best (meV/atom)")[column] == f"{energy:.2f}"
        assert _row(md, "CPU s, total")[column] == f"{sum(e['cpu'].values()):.0f}"
    # the naive run failed one cheap label; the periodic run trained every cycle, the naive one twice
    assert _expected(runs[1])["failed"]["hf-sto3g"] == 1
    assert _row(md, "models") == ["3", "2"]


def test_default_output_folder_and_repeated_names(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--compare", str(runs[0]), str(runs[0])]) == 0
    md = (tmp_path / "compare-report" / "compare.md").read_text()
    assert md.count(f"per ({runs[0]})") == 2  # the same campaign name twice: the columns name the directory


def test_single_run_report_is_unchanged(runs, tmp_path, capsys):
    assert main(["report", str(runs[0]), "-o", str(tmp_path / "one")]) == 0
    written = capsys.readouterr().out.split()
    assert (tmp_path / "one" / "summary.md").is_file() and str(tmp_path / "one" / "cost.png") in written
    assert not (tmp_path / "one" / "compare.md").exists()


@pytest.mark.parametrize("case, message", [
    ("two without --compare", "2 run directories given: add --compare"),
    ("one with --compare", "--compare needs at least two run directories (got 1)"),
    ("not a store", "holds no campaign store"),
    ("no campaign config", "no campaign config"),
])
def test_errors_are_one_line(runs, tmp_path, capsys, case, message):
    other = tmp_path / "other"
    other.mkdir()
    if case == "no campaign config":
        with CampaignStore.create(store_path(other)):  # what `alloop import` makes
            pass
    argv = {"two without --compare": [str(runs[0]), str(runs[1])],
            "one with --compare": ["--compare", str(runs[0])]}.get(case, ["--compare", str(runs[0]), str(other)])
    assert main(["report", *argv, "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("alloop report: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
