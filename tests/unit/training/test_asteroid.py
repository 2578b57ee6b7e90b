import numpy as np
import pytest
from training_synthetic import label_frames, perturbed, truth_potential

import alloop.training.asteroid as asteroid_module
from alloop.errors import AlloopError
from alloop.potentials.inference import predict
from alloop.potentials.pair import PairPotential
from alloop.training.asteroid import train_asteroid
from alloop.training.bias_weights import dataset_bias, gamma_candidates
from alloop.training.data import FrameDataset
from alloop.training.stages import AsteroidSettings
from alloop.training.trainer import TrainSettings, parameter_fingerprint

NAMES = ["H2O", "CH4", "CH3CH2OH"]
CHEAP_REFS = {1: -10.0, 6: -1000.0, 8: -2000.0}


@pytest.fixture(scope="module")
def data():
    truth = truth_potential()
    expensive = FrameDataset.from_atoms(label_frames(perturbed(NAMES, 12, seed=0), truth), fidelity="expensive")
    frames = perturbed(NAMES, 30, seed=1)
    cheap_frames = label_frames(frames[:20], truth_potential(scale=2.2), CHEAP_REFS)
    cheap_frames += label_frames(frames[20:], truth_potential(seed=5, scale=5.0), CHEAP_REFS)  # badly biased frames
    cheap = FrameDataset.from_atoms(cheap_frames, fidelity="cheap")
    return expensive, cheap


def _settings(**kw):
    ts = TrainSettings(max_epochs=4, lr=3e-2, batch_size=8)
    base = dict(stage1=ts, stage2=ts, stage3=TrainSettings(max_epochs=3, lr=1e-2, batch_size=4),
                gamma_grid=(0.5, 2.0), gamma_epochs=2, gamma_finetune_epochs=2, val_fraction=0.25, seed=3)
    base.update(kw)
    return AsteroidSettings(**base)


def _factory():
    return PairPotential([1, 6, 8])


def test_asteroid_bias_weights_and_references(data):
    expensive, cheap = data
    r = train_asteroid("asteroid", expensive, cheap, model_factory=_factory, settings=_settings())
    assert set(r.stages) == {"stage1", "stage2", "stage3"}
    # B is recomputable from theta_0, per cheap frame, in cheap order
    assert r.bias.shape == (30,) and np.allclose(r.bias, dataset_bias(r.bias_model, cheap))
    _, forces = predict(r.bias_model, cheap.subset([4]))
    assert r.bias[4] == pytest.approx(np.abs(forces - cheap.forces[cheap.frame_slice(4)]).mean(), rel=1e-6)
    assert r.bias[20:].mean() > 2 * r.bias[:20].mean()  # the corrupted frames are recognised
    candidates = gamma_candidates(r.bias, (0.5, 2.0))
    assert r.gamma in candidates and set(r.gamma_scores) == set(candidates)
    assert np.allclose(r.weights, np.exp(-r.bias / r.gamma))
    # one set of references per fidelity; the final model carries the expensive ones
    assert r.references["cheap"][8] != pytest.approx(r.references["expensive"][8], abs=1.0)
    assert r.model.atomic_energies[8].item() == pytest.approx(r.references["expensive"][8])
    # the expensive validation split: a 25 % share draws 3 of the 12 frames, min_val_frames (6, at most half) holds 6
    assert r.metrics["n_frames"] == len(r.splits["expensive_val"]) == min(_settings().min_val_frames, 12 // 2) == 6
    assert r.metrics["force_mae_eV_per_A"] == pytest.approx(r.stages["stage3"].best_val_force_mae, rel=1e-5)


def test_stage3_starts_from_the_stage2_weights(data):
    expensive, cheap = data
    mild = cheap.subset(range(20))
    r = train_asteroid("asteroid-no-weights", expensive, mild, model_factory=_factory, settings=_settings())
    assert r.stages["stage2"].best_epoch > 0
    assert r.fingerprints["stage3_start"] == r.fingerprints["stage2"]
    assert r.fingerprints["stage2"] != parameter_fingerprint(_factory())  # stage 2 did train
    assert np.all(r.weights == 1.0) and r.bias is None and "stage1" not in r.stages


def test_a_forgotten_load_is_caught(data, monkeypatch):
    expensive, cheap = data
    monkeypatch.setattr(asteroid_module, "_start_from", lambda model: PairPotential([1, 6, 8], seed=123))
    with pytest.raises(RuntimeError, match="stage-2 weights were not loaded"):
        train_asteroid("asteroid-no-weights", expensive, cheap.subset(range(20)), model_factory=_factory,
                       settings=_settings())


def test_stage2_can_start_from_a_given_model_without_changing_it(data):
    expensive, cheap = data
    start = PairPotential([1, 6, 8], seed=8)
    before = parameter_fingerprint(start)
    r = train_asteroid("asteroid-no-weights", expensive, cheap, model_factory=_factory, settings=_settings(),
                       initial_model=start)
    assert r.stages["stage2"].initial_fingerprint == before == parameter_fingerprint(start)


def test_standard_and_score_matching(data):
    expensive, cheap = data
    std = train_asteroid("standard", expensive, model_factory=_factory, settings=_settings())
    assert set(std.stages) == {"stage1"} and std.bias_model is std.model and std.gamma is None
    unlabelled = FrameDataset.from_atoms(cheap.to_atoms(), labelled=False)
    sm = train_asteroid("score-matching", expensive, unlabelled=unlabelled, model_factory=_factory,
                        settings=_settings(score=_settings().score.__class__(temperature_K=500.0, max_epochs=2)))
    assert set(sm.stages) == {"score", "stage3"}
    assert sm.fingerprints["stage3_start"] == sm.fingerprints["stage2"] == sm.stages["score"].final_fingerprint


def test_same_seed_same_result(data):
    expensive, cheap = data
    a = train_asteroid("asteroid", expensive, cheap, model_factory=_factory, settings=_settings(gamma_grid=(1.0,)))
    b = train_asteroid("asteroid", expensive, cheap, model_factory=_factory, settings=_settings(gamma_grid=(1.0,)))
    assert parameter_fingerprint(a.model) == parameter_fingerprint(b.model)
    assert np.array_equal(a.bias, b.bias)


def test_clear_errors(data):
    expensive, cheap = data
    with pytest.raises(AlloopError, match="unknown method 'magic'"):
        train_asteroid("magic", expensive, cheap, model_factory=_factory, settings=_settings())
    with pytest.raises(AlloopError, match="method 'asteroid' needs cheap labelled frames"):
        train_asteroid("asteroid", expensive, model_factory=_factory, settings=_settings())
    with pytest.raises(AlloopError, match="method 'score-matching' needs unlabelled Boltzmann samples"):
        train_asteroid("score-matching", expensive, cheap, model_factory=_factory, settings=_settings())
    with pytest.raises(AlloopError, match="method 'two-head' is not a stage plan of train_asteroid"):
        train_asteroid("two-head", expensive, cheap, model_factory=_factory, settings=_settings())
    water_only = expensive.subset([0, 3, 6])  # H2O frames only: the cheap set has carbon
    with pytest.raises(AlloopError, match=r"elements \[6\] absent from the expensive set"):
        train_asteroid("asteroid", water_only, cheap, model_factory=_factory, settings=_settings())


def test_gamma_candidates_give_the_same_result_through_any_map(data):
    """The campaign runs the gamma candidates through a map over its workers; the result must not change."""
    expensive, cheap = data
    calls = []

    def reversed_map(function, items):  # evaluates out of order, as parallel workers may
        items = list(items)
        calls.append(len(items))
        return list(reversed([function(x) for x in reversed(items)]))

    plain = train_asteroid("asteroid", expensive, cheap, model_factory=_factory, settings=_settings())
    mapped = train_asteroid("asteroid", expensive, cheap, model_factory=_factory, settings=_settings(),
                            map_fn=reversed_map)
    assert calls == [2]
    assert mapped.gamma == plain.gamma and mapped.gamma_scores == plain.gamma_scores
    assert parameter_fingerprint(mapped.model) == parameter_fingerprint(plain.model)


def test_a_restart_of_a_fresh_stage_draws_another_initialisation_when_the_factory_can():
    from alloop.training.asteroid import _fresh
    from alloop.training.stages import model_factory
    from alloop.training.trainer import parameter_fingerprint

    factory = model_factory("pair", [1, 6, 8], seed=3)
    first, again, restarted = factory(), factory(), factory(restart=1)
    assert parameter_fingerprint(first) == parameter_fingerprint(again) != parameter_fingerprint(restarted)
    data = FrameDataset.from_atoms(label_frames(perturbed(["H2O"], 4, seed=0), truth_potential()), fidelity="synthetic")
    assert parameter_fingerprint(_fresh(factory, 5, data, restart=2)) != parameter_fingerprint(first)
    plain = lambda: PairPotential([1, 6, 8], seed=3)  # noqa: E731 (a factory without restarts: its one initialisation)
    assert parameter_fingerprint(_fresh(plain, 5, data, restart=2)) == parameter_fingerprint(plain())
