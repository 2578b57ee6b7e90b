"""Held-out (cross-validated) calibration of the empirical Q / T^2 limits: against numpy, flag rates, tiny data."""

from __future__ import annotations

import json
from statistics import NormalDist

import numpy as np
import pytest

from alloop.errors import AlloopError
from alloop.uncertainty import QResidualModel, QResidualSettings
from alloop.uncertainty.calibration import atom_folds, conformal_quantile, frame_folds

F, RANK = 64, 8  # latent features, rank of their in-distribution structure


def _frames(rng: np.random.Generator, basis: np.ndarray, n: int, atoms: int = 3, z: int = 6):
    """``n`` frames of ``atoms`` atoms with low-rank Gaussian features; atoms of a frame share a latent part."""
    shared = rng.normal(size=(n, 1, RANK))
    own = rng.normal(size=(n, atoms, RANK))
    x = (0.7 * shared + 0.7 * own) @ basis.T + 0.3 * rng.normal(size=(n, atoms, F))
    return np.full(n * atoms, z), x.reshape(-1, F), np.arange(n + 1) * atoms


def _basis(rng: np.random.Generator) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(F, RANK)))[0] * np.linspace(4.0, 1.0, RANK)


def _direct_oof(rows: np.ndarray, folds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold Q and T^2 with a PCA by SVD, written out with numpy only."""
    q, t2 = np.zeros(len(rows)), np.zeros(len(rows))
    for fold in np.unique(folds):
        fit, held = rows[folds != fold], rows[folds == fold]
        mu = fit.mean(axis=0)
        _, s, vt = np.linalg.svd(fit - mu, full_matrices=False)
        p, lam = vt[:k].T, s[:k] ** 2 / (len(fit) - 1)
        xc = held - mu
        q[folds == fold] = np.sum((xc - xc @ p @ p.T) ** 2, axis=1)
        t2[folds == fold] = np.sum((xc @ p) ** 2 / lam, axis=1)
    return q, t2


def _direct_quantile(values: np.ndarray, alpha: float, tail: bool = False) -> float:
    rank = int(np.ceil((values.size + 1) * (1 - alpha)))
    if tail and rank > values.size >= 8 and values.min() > 0:  # too few for the rank: the log-normal tail
        logs = np.log(values)
        return float(np.exp(logs.mean() + NormalDist().inv_cdf(1 - alpha) * logs.std(ddof=1)))
    return float(np.sort(values)[min(rank, values.size) - 1])


def test_folds_split_by_frame_and_are_balanced():
    sizes = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    per_atom = atom_folds(ptr, 4)
    per_frame = frame_folds(sizes.size, 4)
    assert np.array_equal(per_atom, np.repeat(per_frame, sizes))  # every atom in its frame's fold
    assert sorted(np.bincount(per_frame).tolist()) == [2, 3, 3, 3]
    assert np.array_equal(per_frame, frame_folds(sizes.size, 4))  # deterministic
    assert sorted(frame_folds(3, 10).tolist()) == [0, 1, 2]  # fewer frames than folds: leave one frame out
    with pytest.raises(AlloopError):
        frame_folds(1, 5)


def test_conformal_quantile():
    values = np.arange(1.0, 21.0)  # 20 values
    assert conformal_quantile(values, 0.1) == 19.0  # ceil(21 * 0.9) = 19th smallest
    assert conformal_quantile(values, 0.01) == 20.0  # too few values for rank ceil(21 * 0.99) = 21: the largest
    logs = np.log(values)  # or, with the tail, the log-normal's 99 % quantile
    tail = conformal_quantile(values, 0.01, small_sample_tail=True)
    assert tail == pytest.approx(np.exp(logs.mean() + 2.3263479 * logs.std(ddof=1)))
    assert conformal_quantile(values[:5], 0.01, small_sample_tail=True) == 5.0  # fewer than 8 values: capped at the largest
    assert conformal_quantile(values[::-1], 0.5) == 11.0


@pytest.mark.parametrize("n_frames", [40, 6])  # 6 < n_folds: leave one frame out
def test_out_of_fold_limits_match_numpy(n_frames):
    rng = np.random.default_rng(5)
    basis = _basis(rng)
    numbers, feats, ptr = _frames(rng, basis, n_frames, atoms=4)
    numbers[1::4] = 8  # one O per frame; C has 3 per frame
    alpha, k = 0.1, 3
    s = QResidualSettings(n_components=k, alpha=alpha, limit="empirical_frame", min_element_atoms=6)
    model = QResidualModel.fit(numbers, feats, ptr, s)
    folds = np.repeat(frame_folds(n_frames, s.n_folds), 4)
    assert model.calibration["folds"] == min(10, n_frames)
    ratios = np.zeros(numbers.size)
    for z in (0, 6, 8):
        rows = np.ones(numbers.size, bool) if z == 0 else numbers == z
        q, t2 = _direct_oof(feats[rows], folds[rows], k)
        group = model.groups[z]
        assert group.q_empirical == pytest.approx(_direct_quantile(q, alpha), rel=1e-8)
        assert group.t2_empirical == pytest.approx(_direct_quantile(t2, alpha), rel=1e-8)
        if z:
            ratios[rows] = q / group.q_empirical
    frame_max = np.maximum.reduceat(ratios, ptr[:-1])
    assert model.frame_limit_q == pytest.approx(_direct_quantile(frame_max, alpha), rel=1e-8)
    # the final PCA is fitted on every row
    assert np.allclose(model.groups[6].pca.mean, feats[numbers == 6].mean(axis=0))
    old = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=k, alpha=alpha, calibration="in_sample",
                                                                   limit="empirical_frame", min_element_atoms=6))
    in_sample_q = old.groups[6].pca.q_residual(feats[numbers == 6])
    assert old.groups[6].q_empirical == pytest.approx(np.quantile(in_sample_q, 1 - alpha))
    ratio = old.groups[6].q_empirical / model.groups[6].q_empirical  # the fitted rows look tamer than new ones
    assert ratio < (0.5 if n_frames < 10 else 0.9)


def _flag_rates(settings: QResidualSettings, n_train: int, draws: int = 40) -> tuple[float, float]:
    """Mean fraction of new atoms (per-atom limit ratios) and new frames (the settings' limit) flagged."""
    atoms, frames = [], []
    for draw in range(draws):
        rng = np.random.default_rng(1000 + draw)
        basis = _basis(rng)
        train, new = _frames(rng, basis, n_train), _frames(rng, basis, 100)
        model = QResidualModel.fit(*train, settings=settings)
        atoms.append(np.mean(model.atom_scores(new[0], new[1])["q_ratio"] > 1.0))
        frames.append(np.mean(model.frame_scores(*new).flagged))
    return float(np.mean(atoms)), float(np.mean(frames))


@pytest.mark.parametrize("limit", ["empirical", "empirical_frame"])
def test_new_in_distribution_samples_are_flagged_at_about_alpha(limit):
    """10 frames x 3 atoms = 30 rows against 64 features: in-sample limits flag most new samples."""
    alpha = 0.1
    held_out = _flag_rates(QResidualSettings(n_components=5, alpha=alpha, limit=limit, per_element=False), 10)
    in_sample = _flag_rates(QResidualSettings(n_components=5, alpha=alpha, limit=limit, per_element=False,
                                              calibration="in_sample"), 10)
    rate, old_rate = (held_out[0], in_sample[0]) if limit == "empirical" else (held_out[1], in_sample[1])
    assert abs(rate - alpha) < 0.035, f"held-out calibration flags {rate:.3f} of new samples at alpha {alpha}"
    assert old_rate > 0.4, f"in-sample calibration flags only {old_rate:.3f}"


def test_tiny_data_is_handled_explicitly():
    rng = np.random.default_rng(7)
    basis = _basis(rng)
    numbers, feats, ptr = _frames(rng, basis, 1, atoms=30)
    one = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=3, per_element=False))
    assert one.calibration["method"] == "in_sample" and "single training frame" in one.calibration["reason"]
    in_sample = one.groups[0].pca.q_residual(feats)
    assert one.groups[0].q_empirical == pytest.approx(np.quantile(in_sample, 0.99))
    # O only in the first frame (25 atoms) and once in the second: the first frame's O rows have nothing to fit on
    numbers, feats, ptr = _frames(rng, basis, 2, atoms=30)
    numbers[:25], numbers[30] = 8, 8
    model = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=3))
    assert model.calibration["folds"] == 2 and model.calibration["in_sample_rows"] == {"8": 25}
    rows = numbers == 8
    q_in = model.groups[8].pca.q_residual(feats[rows])
    with np.errstate(divide="ignore", invalid="ignore"):  # the 25-row fold has a 1-row complement
        q_out = _direct_oof(feats[rows], np.repeat([0, 1], [25, 1]), 3)[0][25:]
    assert model.groups[8].q_empirical == pytest.approx(_direct_quantile(np.concatenate([q_in[:25], q_out]), 0.01))


def test_settings_serialisation_and_backward_compatibility():
    rng = np.random.default_rng(8)
    numbers, feats, ptr = _frames(rng, _basis(rng), 30)
    with pytest.raises(AlloopError, match="unknown calibration"):
        QResidualSettings(calibration="bootstrap")
    with pytest.raises(AlloopError, match="n_folds"):
        QResidualSettings(n_folds=1)
    with pytest.raises(AlloopError, match="ptr"):
        QResidualModel.fit(numbers, feats, None, QResidualSettings())
    QResidualModel.fit(numbers, feats, None, QResidualSettings(calibration="in_sample"))  # no frames needed
    model = QResidualModel.fit(numbers, feats, ptr, QResidualSettings(n_components=4, n_folds=5))
    back = QResidualModel.from_bytes(model.to_bytes())
    assert back.settings == model.settings and back.calibration == model.calibration == {"method": "cross_validation",
                                                                                         "folds": 5}
    assert np.array_equal(back.frame_scores(numbers, feats, ptr).q, model.frame_scores(numbers, feats, ptr).q)
    # a model saved before calibration existed was calibrated in-sample, and says so when loaded
    arrays = model.to_arrays()
    meta = json.loads(arrays["meta"].tobytes())
    del meta["calibration"], meta["settings"]["calibration"], meta["settings"]["n_folds"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    old = QResidualModel.from_arrays(arrays)
    assert old.settings.calibration == "in_sample" and old.calibration == {"method": "in_sample"}
    assert old.groups[0].q_empirical == model.groups[0].q_empirical


def test_the_frame_limit_flags_about_alpha_of_new_in_distribution_frames_even_from_few_frames():
    """With 45-80 training frames (fewer than 1/alpha) the frame limit is the largest held-out score, which flags
    ~1/(n + 1) of new frames; the log-normal tail (``small_sample_tail=True``) brings the rate near alpha (mean over
    fits)."""
    rng = np.random.default_rng(0)

    def frames(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        numbers = np.tile([6, 6, 8, 1, 1, 1, 1, 1, 1], n)
        shared = np.repeat(rng.normal(size=(n, 16)) * 0.5, 9, axis=0)  # atoms of a frame are correlated
        feats = rng.normal(size=(n * 9, 16)) + shared + np.where(numbers == 8, 2.0, 0.0)[:, None]
        return numbers, feats, np.arange(n + 1) * 9

    alpha = 0.01
    def rates(tail: bool) -> list[float]:
        settings = QResidualSettings(limit="empirical_frame", alpha=alpha, small_sample_tail=tail)
        return [QResidualModel.fit(*frames(n), settings=settings).frame_scores(*frames(3000)).flagged.mean()
                for n in (45, 60, 80) for _ in range(5)]

    assert alpha / 2 <= np.mean(rates(True)) <= 2 * alpha
    assert np.mean(rates(False)) > 2 * alpha  # the largest value: ~1/(n + 1)
