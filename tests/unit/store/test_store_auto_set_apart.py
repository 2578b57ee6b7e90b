"""The automatic test set (``evaluation.auto``: origin ``evaluation``, the ledger's cycle -2) stays out of what
describes the campaign's own labels: the conformer-basin coverage, the per-molecule table, the reaction sides and
``alloop export --fidelity``; ``alloop status`` and ``alloop report`` say what the set represents."""

from __future__ import annotations

from ase.build import molecule
from store_helpers import make_label

from alloop.cli import main
from alloop.evaluation.auto import AutoSet, build_set, store_frames
from alloop.evaluation.molecule_table import molecule_status
from alloop.evaluation.records import BLOB
from alloop.fidelity import load_fidelity
from alloop.report.summary import summary_markdown
from alloop.store import CampaignStore, store_path
from alloop.store.coverage import labelled_basins
from alloop.store.exchange import labelled_frames
from alloop.store.reactions import labelled_sides
from alloop.system.conformers import conformer_starts

CONFIG = {"name": "m", "fidelities": {"cheap": "hf-sto3g", "expensive": "mp2-dz"}}
PLAN = AutoSet(n_frames=2, surface=load_fidelity("gfn2-xtb"), temperature_K=500.0, timestep_fs=0.5,
               friction_per_fs=0.01, equilibration_fs=1000.0, spacing_fs=500.0, seed=0)


def _ethanol_store(path, cheap, expensive):
    """Bootstrap frames in the three basins (all cheap-labelled, the trans one also expensive), and a made set of two
    gauche- frames labelled expensive in the held-out cycle, packed as the store's evaluation set."""
    trans, gauche_minus, gauche_plus = conformer_starts(molecule("CH3CH2OH"), 3)
    store = CampaignStore.create(path, CONFIG)
    boot = store.add_frames([trans, gauche_plus, gauche_minus], origin="bootstrap", cycle=-1)
    store.add_labels(cheap, boot, [make_label(int(k), 9) for k in boot])
    store.add_labels(expensive, [boot[0]], [make_label(0, 9)])
    held = store_frames(store, [[gauche_minus, gauche_minus]])
    store.add_labels(expensive, held, [make_label(int(k), 9) for k in held])
    store.put_blob(BLOB, build_set(store, PLAN, expensive, n_runs=1).to_bytes())
    store.commit(cycle=0, phase="labelled")
    return store, boot, held


def test_the_set_is_out_of_the_basins_the_reaction_sides_and_the_export(tmp_path, capsys, cheap, expensive):
    store, boot, held = _ethanol_store(store_path(tmp_path / "run"), cheap, expensive)
    with store:
        basins = labelled_basins(store)
        assert basins["fidelities"] == {"hf-sto3g": {-1: [1, 1, 1]}, "mp2-dz": {-1: [1, 0, 0]}}  # no cycle -2
        sides, _ = labelled_sides(store, [[8, 2, 0]], store.get_frames([0])[0].numbers)
        assert [sum(v) for per in sides.values() for v in per.values()] == [3, 1]  # the campaign's labels only
        exported = labelled_frames(store, expensive)
        assert [a.info["frame_id"] for a in exported] == [int(boot[0])]
        alone = labelled_frames(store, expensive, evaluation_set=True)
        assert [a.info["frame_id"] for a in alone] == held.tolist()
        assert {a.info["origin"] for a in alone} == {"evaluation"}
    out = tmp_path / "exp.extxyz"
    assert main(["export", str(tmp_path / "run"), "--fidelity", "mp2-dz", "-o", str(out)]) == 0
    assert ("wrote 1 frames labelled at mp2-dz" in (err := capsys.readouterr().err)
            and "(2 frames of the automatic evaluation set left out: --evaluation-set writes them)" in err)
    assert main(["export", str(tmp_path / "run"), "--fidelity", "mp2-dz", "-o", str(out), "--evaluation-set"]) == 0
    assert "wrote 2 frames of the automatic evaluation set labelled at mp2-dz" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "run"), "--model", "-o", str(out), "--evaluation-set"]) == 1
    assert "--evaluation-set applies to labels (--fidelity), not to --model" in capsys.readouterr().err


def test_status_and_report_say_what_the_set_represents(tmp_path, capsys, cheap, expensive):
    store, _, _ = _ethanol_store(store_path(tmp_path / "run"), cheap, expensive)
    with store:
        text = summary_markdown(store)
    said = ("made by alloop: Langevin MD on gfn2-xtb at 500 K, 1 independent run(s) from the starting structures (own "
            "seeds), 1000 fs equilibration, a frame every 500 fs; 2 frames (0 failed labels left out)")
    populations = "conformer populations of the set: C-C-O-H trans 0 %, gauche+ 0 %, gauche- 100 %"
    assert f"  - {said}" in text and f"  - {populations}" in text
    assert "  - its labels (not in the campaign's budget): 2 mp2-dz labels" in text
    assert main(["status", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"  {said}" in lines and f"  {populations}" in lines


def test_the_set_is_out_of_the_molecule_table(tmp_path, cheap, expensive):
    water, methane = molecule("H2O"), molecule("CH4")
    with CampaignStore.create(store_path(tmp_path / "run"), CONFIG) as store:
        ids = store.add_frames([water, methane, water], origin="md", cycle=0)
        store.add_labels(cheap, ids, [make_label(int(k), len(a)) for k, a in zip(ids, (water, methane, water), strict=True)])
        before = molecule_status(store)
        held = store_frames(store, [[water, water], [methane]])
        store.add_labels(expensive, held, [make_label(int(k), 3 if k < held[2] else 5) for k in held])
        store.commit()
        after = molecule_status(store)
    assert [(r["molecule"], r["frames"], r["labels"]) for r in before["rows"]] == \
        [("H2O", 2, {"hf-sto3g": 2}), ("CH4", 1, {"hf-sto3g": 1})]
    assert [(r["molecule"], r["frames"], r["labels"]) for r in after["rows"]] == \
        [("H2O", 2, {"hf-sto3g": 2, "mp2-dz": 0}), ("CH4", 1, {"hf-sto3g": 1, "mp2-dz": 0})]
