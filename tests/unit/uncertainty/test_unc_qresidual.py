"""Q-residual model: per-element / pooled fits, limits, frame scores, serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty import QResidualModel, QResidualSettings

ELEMENT_SCALES = {1: np.linspace(1.0, 0.05, 12), 6: np.linspace(2.0, 0.1, 12), 8: np.linspace(0.5, 0.2, 12)}
FRAME = np.array([6, 6, 8, 1, 1, 1, 1, 1, 1])  # ethanol's composition


def _frames(rng, n_frames, shift=0.0):
    numbers = np.tile(FRAME, n_frames)
    feats = np.stack([rng.normal(size=12) * ELEMENT_SCALES[z] + z for z in numbers])
    feats[:, -1] += shift
    ptr = np.arange(n_frames + 1) * FRAME.size
    return numbers, feats, ptr


def test_empirical_limit_flags_alpha_of_fresh_atoms_and_frames():
    rng = np.random.default_rng(0)
    train = _frames(rng, 1500)
    fresh = _frames(rng, 1500)
    atom_model = QResidualModel.fit(*train, settings=QResidualSettings(n_components=4, alpha=0.05))
    ratios = atom_model.atom_scores(fresh[0], fresh[1])["q_ratio"]
    for z in (1, 6, 8):
        assert abs(np.mean(ratios[fresh[0] == z] > 1.0) - 0.05) < 0.015
    frame_model = QResidualModel.fit(*train, settings=QResidualSettings(n_components=4, alpha=0.05, limit="empirical_frame"))
    flagged = frame_model.frame_scores(*fresh).flagged
    assert abs(flagged.mean() - 0.05) < 0.015
    assert atom_model.frame_scores(*fresh).flagged.mean() > 0.15  # per-atom limits flag more frames
    shifted = _frames(rng, 200, shift=3.0)  # out of distribution
    assert frame_model.frame_scores(*shifted).flagged.mean() > 0.95


def test_frame_score_is_max_of_atom_ratios():
    rng = np.random.default_rng(1)
    numbers, feats, ptr = _frames(rng, 300)
    model = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=3))
    atoms = model.atom_scores(numbers[:18], feats[:18])
    frames = model.frame_scores(numbers[:18], feats[:18], ptr[:3])
    assert frames.q[1] == pytest.approx(atoms["q_ratio"][9:18].max())
    assert frames.t2[0] == pytest.approx(atoms["t2_ratio"][:9].max())
    group = model.groups[8]
    assert atoms["q"][2] == pytest.approx(group.pca.q_residual(feats[2:3])[0])
    assert atoms["q_ratio"][2] == pytest.approx(atoms["q"][2] / group.q_empirical)
    quant = QResidualModel.fit(numbers, feats, ptr,
                               QResidualSettings(n_components=3, frame_score="quantile", score_quantile=0.5))
    q_med = quant.frame_scores(numbers[:9], feats[:9], ptr[:2]).q[0]
    assert q_med == pytest.approx(np.median(quant.atom_scores(numbers[:9], feats[:9])["q_ratio"]))


def test_rare_element_falls_back_to_pooled():
    rng = np.random.default_rng(2)
    numbers, feats, ptr = _frames(rng, 10)  # 10 O atoms < min_element_atoms
    model = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=3, min_element_atoms=15))
    assert model.elements == [1, 6]
    scores = model.atom_scores(np.array([8, 7]), feats[:2])  # O and an element never seen: pooled
    pooled = model.groups[0]
    assert np.allclose(scores["q"], pooled.pca.q_residual(feats[:2]))
    only_pooled = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=3, per_element=False))
    assert only_pooled.elements == []


def test_jackson_mudholkar_limit_option():
    rng = np.random.default_rng(3)
    numbers, feats, ptr = _frames(rng, 200)
    model = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=3, limit="jackson_mudholkar"))
    atoms = model.atom_scores(numbers, feats)
    rows = numbers == 6
    assert np.allclose(atoms["q_ratio"][rows], atoms["q"][rows] / model.groups[6].pca.jackson_mudholkar(0.01))


def test_round_trip_and_errors():
    rng = np.random.default_rng(4)
    numbers, feats, ptr = _frames(rng, 100)
    model = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=3, limit="empirical_frame"))
    back = QResidualModel.from_bytes(model.to_bytes())
    a, b = model.frame_scores(numbers, feats, ptr), back.frame_scores(numbers, feats, ptr)
    assert np.array_equal(a.q, b.q) and np.array_equal(a.t2, b.t2)
    assert back.settings == model.settings and back.elements == model.elements
    with pytest.raises(AlloopError, match="ptr"):
        QResidualModel.fit(numbers, feats, None, QResidualSettings(limit="empirical_frame"))
    with pytest.raises(AlloopError, match="unknown limit"):
        QResidualSettings(limit="3sigma")
    with pytest.raises(AlloopError):
        QResidualModel.from_bytes(b"junk")


def test_a_model_stored_under_the_former_settings_names_reads_as_it_was():
    """Models stored before the settings took the config's names (``frame_quantile``, ``tail``) keep their values
    under ``score_quantile`` and ``small_sample_tail``."""
    import json

    rng = np.random.default_rng(5)
    numbers, feats, ptr = _frames(rng, 60)
    settings = QResidualSettings(n_components=3, frame_score="quantile", score_quantile=0.7, small_sample_tail=True)
    arrays = QResidualModel.fit(numbers, feats, ptr, settings).to_arrays()
    meta = json.loads(arrays["meta"].tobytes().decode())
    stored = meta["settings"]
    stored["frame_quantile"], stored["tail"] = stored.pop("score_quantile"), stored.pop("small_sample_tail")
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8).copy()
    assert QResidualModel.from_arrays(arrays).settings == settings
