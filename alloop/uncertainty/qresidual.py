"""Q-residual / Hotelling T^2 novelty of frames, from the model's per-atom latent features.

Fit: one PCA per element (``per_element=True``) or one pooled PCA over all
atoms. An element with fewer than ``max(n_components + 1, min_element_atoms)``
training atoms uses the pooled PCA and the pooled limits (a PCA and a
quantile of a handful of rows would be noise); so does an element never seen
in training.

Limits (per group = per element or pooled), at significance ``alpha``:

- ``empirical`` (default): the (1 - alpha) quantile of the training atoms' Q
  of that group (held out from the PCA fit, see ``calibration`` below). Each
  atom is compared with its group's limit; a frame's score is the max (or
  ``score_quantile``) over its atoms of Q / limit.
- ``jackson_mudholkar``: the analytic limit of the group's PCA (METHODS.md 2).
  Atoms of one frame are correlated and latent features are not Gaussian, so
  it is usually miscalibrated; it is offered for comparison.
- ``empirical_frame``: the same per-atom ratios, but the frame limit is the
  (1 - alpha) quantile of the training frames' (held-out) scores, so that a fraction
  ~alpha of in-distribution frames is flagged, whatever the molecule size
  (the per-atom limits flag up to n_atoms * alpha of frames). Needs the
  training frame offsets.

Which limit the loop should use: ``empirical_frame`` when the flagged fraction
drives the labelling budget (it is calibrated in frames, the unit that is
labelled); ``empirical`` when per-atom interpretability matters. Both are
measured in benchmarks/uncertainty_bench.py.

All scores are normalised so that a frame is flagged when its score > 1.
T^2 gets empirical limits the same way (per group, and per frame for
``empirical_frame``).

Calibration of the empirical limits (``calibration``):
``cross_validation`` (default) takes split-conformal quantiles over
out-of-fold Q / T^2: frames are dealt into ``n_folds`` folds, each fold is
scored by PCAs fitted on the other folds (calibration.py); the model's PCAs
are fitted on all rows. With fewer frames than folds every frame is its own
fold (leave one frame out). Tiny data: with a single training frame nothing
can be held out and the limits are in-sample; a row whose fold leaves fewer
than 2 rows of its group to fit on keeps its in-sample score. Both are
recorded in ``model.calibration`` (and serialised). ``in_sample`` is the
former behaviour (plain quantiles over the PCA's own fitting rows), which
flags far more than alpha of new atoms when the rows are few against the
features. Jackson-Mudholkar is analytic and not affected.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass

import numpy as np

from alloop.errors import AlloopError
from alloop.uncertainty.calibration import CALIBRATIONS, atom_folds, conformal_quantile, out_of_fold_scores
from alloop.uncertainty.pca import PCA

LIMITS = ("empirical", "jackson_mudholkar", "empirical_frame")
FRAME_SCORES = ("max", "quantile")
POOLED = 0  # group key of the pooled PCA (no element has Z = 0)
_TINY = 1e-300


@dataclass(frozen=True)
class QResidualSettings:
    n_components: int = 5
    per_element: bool = True
    alpha: float = 0.01
    limit: str = "empirical"
    frame_score: str = "max"
    score_quantile: float = 0.9
    min_element_atoms: int = 20
    calibration: str = "cross_validation"
    n_folds: int = 10
    small_sample_tail: bool = False  # too few held-out values for the conformal rank: a log-normal tail, not the largest

    def __post_init__(self) -> None:
        if self.limit not in LIMITS:
            raise AlloopError(f"unknown limit '{self.limit}': use one of {', '.join(LIMITS)}")
        if self.calibration not in CALIBRATIONS:
            raise AlloopError(f"unknown calibration '{self.calibration}': use one of {', '.join(CALIBRATIONS)}")
        if self.n_folds < 2:
            raise AlloopError(f"n_folds must be >= 2, got {self.n_folds}")
        if self.frame_score not in FRAME_SCORES:
            raise AlloopError(f"unknown frame_score '{self.frame_score}': use 'max' or 'quantile'")
        if not 0.0 < self.alpha < 1.0 or not 0.0 <= self.score_quantile <= 1.0:
            raise AlloopError(f"alpha must be in (0, 1) and score_quantile in [0, 1], "
                              f"got {self.alpha}, {self.score_quantile}")
        if self.n_components < 1:
            raise AlloopError(f"n_components must be >= 1, got {self.n_components}")


#: settings names of Q-residual models stored before the settings took the config's names (``uncertainty``
#: section): ``frame_quantile`` is ``score_quantile``, ``tail`` is ``small_sample_tail``
_FORMER_NAMES = {"frame_quantile": "score_quantile", "tail": "small_sample_tail"}


def _current_names(stored: dict) -> dict:
    """Stored settings with their current field names (a model saved before the rename reads as it was)."""
    return {_FORMER_NAMES.get(key, key): value for key, value in stored.items()}


@dataclass
class FrameScores:
    """Per-frame scores normalised by their limits: a frame is beyond the limit when > 1."""

    q: np.ndarray  # [M]
    t2: np.ndarray  # [M]

    @property
    def flagged(self) -> np.ndarray:
        return self.q > 1.0


@dataclass
class _Group:
    pca: PCA
    q_empirical: float
    t2_empirical: float
    q_jm: float


def _ptr_of(ptr: np.ndarray | None, n_atoms: int) -> np.ndarray:
    if ptr is None:
        raise AlloopError("frame offsets (ptr) are needed for frame scores and held-out calibration")
    ptr = np.asarray(ptr, dtype=np.int64)
    if ptr.ndim != 1 or ptr.size < 2 or ptr[0] != 0 or ptr[-1] != n_atoms or np.any(np.diff(ptr) < 1):
        raise AlloopError(f"ptr must be increasing frame offsets from 0 to {n_atoms}")
    return ptr


class QResidualModel:
    """A fitted novelty model; build it with :meth:`fit`."""

    def __init__(self, settings: QResidualSettings, groups: dict[int, _Group], frame_limits: tuple[float, float],
                 calibration: dict | None = None):
        self.settings = settings
        self.groups = groups
        self.frame_limit_q, self.frame_limit_t2 = frame_limits
        #: how the empirical limits were calibrated: method, folds, rows left in-sample per group, reason
        self.calibration = calibration or {"method": settings.calibration}

    @property
    def elements(self) -> list[int]:
        """Elements with a PCA of their own."""
        return sorted(k for k in self.groups if k != POOLED)

    @classmethod
    def fit(
        cls,
        numbers: np.ndarray,
        features: np.ndarray,
        ptr: np.ndarray | None = None,
        settings: QResidualSettings | None = None,
    ) -> QResidualModel:
        """Fit on training atoms: numbers [N], features [N, F], frame offsets ptr [M + 1]
        (needed for ``empirical_frame`` and for ``cross_validation`` calibration)."""
        settings = settings or QResidualSettings()
        numbers, features = np.asarray(numbers, dtype=np.int64), np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] != numbers.size:
            raise AlloopError(f"features {features.shape} do not match {numbers.size} atoms")
        alpha, k = settings.alpha, settings.n_components
        held_out = settings.calibration == "cross_validation"
        if held_out or settings.limit == "empirical_frame":
            ptr = _ptr_of(ptr, numbers.size)
        calibration: dict = {"method": settings.calibration}
        folds = None
        if held_out:
            assert ptr is not None  # checked by _ptr_of above
            if ptr.size - 1 < 2:
                calibration = {"method": "in_sample", "reason": "a single training frame: nothing to hold out"}
            else:
                folds = atom_folds(ptr, settings.n_folds)
                calibration["folds"] = min(settings.n_folds, ptr.size - 1)
        members = {POOLED: np.ones(numbers.size, dtype=bool)}
        if settings.per_element:
            for z in np.unique(numbers):
                if int(np.sum(numbers == z)) >= max(k + 1, settings.min_element_atoms):
                    members[int(z)] = numbers == z
        groups: dict[int, _Group] = {}
        cal = {"q": np.zeros(numbers.size), "t2": np.zeros(numbers.size)}  # calibration scores of every atom
        for key, mask in members.items():
            group, q, t2, n_in_sample = cls._fit_group(features[mask], k, alpha, None if folds is None else folds[mask],
                                                       settings.small_sample_tail)
            if folds is not None and n_in_sample:
                calibration.setdefault("in_sample_rows", {})[str(key)] = n_in_sample
            groups[key] = group
            cal["q"][mask], cal["t2"][mask] = q, t2  # the element groups come later and overwrite the pooled values
        model = cls(settings, groups, (1.0, 1.0), calibration)
        if settings.limit == "empirical_frame":
            assert ptr is not None  # checked by _ptr_of above
            model._calibrate_frames(numbers, cal, ptr)
        return model

    @staticmethod
    def _fit_group(rows: np.ndarray, k: int, alpha: float, folds: np.ndarray | None,
                   small_sample_tail: bool = False) -> tuple[_Group, np.ndarray, np.ndarray, int]:
        """The group's PCA (all rows) and limits, the calibration scores of its rows and how many of them are
        in-sample: out-of-fold where a PCA could be fitted without the row's fold, else (or without folds) in-sample."""
        pca = PCA.fit(rows, k)
        q, t2 = pca.q_residual(rows), pca.t2(rows)
        if folds is None:
            limits = float(np.quantile(q, 1 - alpha)), float(np.quantile(t2, 1 - alpha))
            return _Group(pca, *limits, pca.jackson_mudholkar(alpha)), q, t2, len(rows)
        q_oof, t2_oof = out_of_fold_scores(rows, folds, k)
        held = np.isfinite(q_oof)
        q, t2 = np.where(held, q_oof, q), np.where(held, t2_oof, t2)
        limits = conformal_quantile(q, alpha, small_sample_tail), conformal_quantile(t2, alpha, small_sample_tail)
        return _Group(pca, *limits, pca.jackson_mudholkar(alpha)), q, t2, int((~held).sum())

    def _calibrate_frames(self, numbers: np.ndarray, cal: dict[str, np.ndarray], ptr: np.ndarray) -> None:
        """Frame limits: the (1 - alpha) quantile over training frames of the reduced calibration ratios."""
        gidx = self._group_index(numbers)
        ratio = {key: np.zeros(numbers.size) for key in ("q", "t2")}
        for key in np.unique(gidx):
            rows, group = gidx == key, self.groups[int(key)]
            ratio["q"][rows] = cal["q"][rows] / max(group.q_empirical, _TINY)
            ratio["t2"][rows] = cal["t2"][rows] / max(group.t2_empirical, _TINY)
        held_out = self.calibration.get("folds") is not None
        for key in ("q", "t2"):
            frames, alpha = self._reduce(ratio[key], ptr), self.settings.alpha
            limit = (conformal_quantile(frames, alpha, self.settings.small_sample_tail) if held_out
                     else float(np.quantile(frames, 1.0 - alpha)))
            setattr(self, f"frame_limit_{key}", limit)

    def _group_index(self, numbers: np.ndarray) -> np.ndarray:
        return np.array([z if z in self.groups else POOLED for z in numbers.tolist()], dtype=np.int64)

    def atom_scores(self, numbers: np.ndarray, features: np.ndarray) -> dict[str, np.ndarray]:
        """Per-atom ``q``, ``t2`` and their limit-normalised ratios ``q_ratio``, ``t2_ratio`` (all [N])."""
        numbers, features = np.asarray(numbers, dtype=np.int64), np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[0] != numbers.size:
            raise AlloopError(f"features {features.shape} do not match {numbers.size} atoms")
        out = {key: np.zeros(numbers.size) for key in ("q", "t2", "q_ratio", "t2_ratio")}
        gidx = self._group_index(numbers)
        jm = self.settings.limit == "jackson_mudholkar"
        for key in np.unique(gidx):
            group, rows = self.groups[int(key)], gidx == key
            q, t2 = group.pca.q_residual(features[rows]), group.pca.t2(features[rows])
            out["q"][rows], out["t2"][rows] = q, t2
            out["q_ratio"][rows] = q / max(group.q_jm if jm else group.q_empirical, _TINY)
            out["t2_ratio"][rows] = t2 / max(group.t2_empirical, _TINY)
        return out

    def frame_scores(self, numbers: np.ndarray, features: np.ndarray, ptr: np.ndarray) -> FrameScores:
        """Scores of frames given as concatenated atoms with offsets ``ptr`` [M + 1]; flagged when > 1."""
        ptr = _ptr_of(ptr, np.asarray(numbers).size)
        atoms = self.atom_scores(numbers, features)
        q, t2 = self._reduce(atoms["q_ratio"], ptr), self._reduce(atoms["t2_ratio"], ptr)
        return FrameScores(q=q / max(self.frame_limit_q, _TINY), t2=t2 / max(self.frame_limit_t2, _TINY))

    def _reduce(self, values: np.ndarray, ptr: np.ndarray) -> np.ndarray:
        if self.settings.frame_score == "max":
            return np.maximum.reduceat(values, ptr[:-1])
        return np.array([np.quantile(values[a:b], self.settings.score_quantile)
                         for a, b in zip(ptr[:-1], ptr[1:], strict=True)])

    # --- serialisation -------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """A flat dict of arrays (one JSON ``meta`` array as uint8) for a Zarr group or ``np.savez``."""
        meta = {
            "format": 1,
            "settings": asdict(self.settings),
            "frame_limits": [self.frame_limit_q, self.frame_limit_t2],
            "groups": {str(k): [g.q_empirical, g.t2_empirical, g.q_jm] for k, g in self.groups.items()},
            "calibration": self.calibration,
        }
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8).copy()}
        for key, group in self.groups.items():
            for name, value in group.pca.to_arrays().items():
                arrays[f"g{key}.{name}"] = np.asarray(value)
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> QResidualModel:
        try:
            meta = json.loads(np.asarray(arrays["meta"], dtype=np.uint8).tobytes().decode())
            groups = {}
            for key, (q_emp, t2_emp, q_jm) in meta["groups"].items():
                pca = PCA.from_arrays({n: arrays[f"g{key}.{n}"] for n in ("mean", "components", "eigenvalues", "n_samples")})
                groups[int(key)] = _Group(pca, q_emp, t2_emp, q_jm)
            # models saved before held-out calibration existed were calibrated in-sample
            settings = QResidualSettings(**{"calibration": "in_sample", **_current_names(meta["settings"])})
        except (KeyError, ValueError, TypeError) as exc:
            raise AlloopError(f"not a serialised Q-residual model: {exc}") from exc
        return cls(settings, groups, tuple(meta["frame_limits"]), meta.get("calibration"))

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=True, **self.to_arrays())  # numpy's default, named: mypy then lets **arrays pass
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> QResidualModel:
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                return cls.from_arrays({k: data[k] for k in data.files})
        except (ValueError, OSError) as exc:
            raise AlloopError(f"not a serialised Q-residual model: {exc}") from exc
