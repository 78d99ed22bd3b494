"""Choosing one mask among a click's candidates (scale-aware point prompts).

A click is tried at several window sizes (:func:`picosam2.prompts.auto_point_scales`). Each
window gives a mask and, when the network has a quality head, a predicted full-image IoU. The
chosen mask is the one with the highest predicted IoU, after the weights' score calibration
(:class:`ScoreCalibration`, when their config has one) has looked at each window's size against
the image and its mask's statistics. Weights without a quality head fall back
to a rule that needs no score: the smallest window whose mask touches less than
:data:`BORDER_RULE_MAX` of the window border (the object ends inside it), else the window whose
mask touches the border least.
"""

from __future__ import annotations

import numpy as np

from .errors import WeightsError

#: largest share of the window border a mask may cover for the no-score rule to accept it.
BORDER_RULE_MAX = 0.05


def border_contact(logits: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Share of each window's one-pixel border covered by its mask: (N, S, S) -> (N,)."""
    m = np.asarray(logits) > threshold
    if m.ndim == 2:
        m = m[None]
    ring = np.concatenate([m[:, 0, :], m[:, -1, :], m[:, 1:-1, 0], m[:, 1:-1, -1]], axis=1)
    return ring.mean(axis=1)


def choose_candidate(logits: np.ndarray, scores: np.ndarray | None = None) -> tuple[int, str]:
    """Index of the chosen candidate among windows ordered small to large, and why:
    ``"score"`` (highest predicted IoU) or ``"border"`` (the no-score rule)."""
    if scores is not None:
        return int(np.argmax(np.asarray(scores, dtype=np.float64))), "score"
    contact = border_contact(logits)
    inside = np.nonzero(contact < BORDER_RULE_MAX)[0]
    return (int(inside[0]) if len(inside) else int(np.argmin(contact))), "border"


#: what :func:`click_features` measures of each candidate window, in column order.
CLICK_FEATURES = ("score", "border", "coverage", "uncertainty", "abs_logit", "log_scale", "image_share")


def click_features(logits: np.ndarray, windows, image_size: tuple[int, int], scores: np.ndarray) -> np.ndarray:
    """(N, 7) features of a click's candidate windows, columns :data:`CLICK_FEATURES`: the
    network's predicted IoU, the share of the window border the mask covers, the mask's share of
    the window, its uncertainty (mean 4p(1-p)), the mean |logit|, log(window side / image's longer
    side) and the mask's share of the image (coverage x window area / image area)."""
    lg = np.asarray(logits, dtype=np.float64)
    lg = lg.reshape(len(lg), lg.shape[-2], lg.shape[-1])
    p = 1.0 / (1.0 + np.exp(-np.clip(lg, -60.0, 60.0)))
    coverage = (lg > 0).mean(axis=(1, 2))
    width, height = image_size
    sides = np.array([max(w.width, w.height) for w in windows], dtype=np.float64)
    areas = np.array([w.width * w.height for w in windows], dtype=np.float64)
    return np.stack(
        [
            np.asarray(scores, dtype=np.float64).reshape(-1),
            border_contact(lg),
            coverage,
            (p * (1.0 - p)).mean(axis=(1, 2)) * 4.0,
            np.abs(lg).mean(axis=(1, 2)),
            np.log(sides / max(width, height)),
            coverage * areas / float(width * height),
        ],
        axis=1,
    )


def quadratic_terms(z: np.ndarray) -> np.ndarray:
    """1, every column and every product of two columns (i <= j) of ``z`` (N, F)."""
    n, f = z.shape
    cols = [np.ones(n), *z.T]
    cols += [z[:, i] * z[:, j] for i in range(f) for j in range(i, f)]
    return np.stack(cols, axis=1)


class ScoreCalibration:
    """Turns the network's predicted IoU of a click's candidates into a better-ranked one, using
    what the network cannot see from inside a window (its size against the image) and statistics
    of the mask: a ridge regression on the quadratic terms of the standardised
    :func:`click_features`, fitted to the real full-image IoU on held-out clicks
    (``picosam2 calibrate-scores``). Stored in ``config.extra["score_calibration"]``, so every
    exported form carries it; the browser demo has the same arithmetic in ``windows.js``."""

    def __init__(self, mean, scale, weights, features=CLICK_FEATURES, fitted_on: str | None = None):
        self.features = tuple(features)
        if self.features != CLICK_FEATURES:
            raise WeightsError(f"score calibration features {self.features} are not {CLICK_FEATURES}")
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        f = len(self.features)
        if self.mean.shape != (f,) or self.scale.shape != (f,) or self.weights.shape != (1 + f + f * (f + 1) // 2,):
            raise WeightsError("score calibration: mean, scale and weights do not fit the feature count")
        self.fitted_on = fitted_on

    @classmethod
    def from_config(cls, config) -> ScoreCalibration | None:
        """The calibration a config (a :class:`~picosam2.models.config.PicoSAM2Config` or its dict,
        as in an exported form's sidecar) carries, or None."""
        extra = config.get("extra") if isinstance(config, dict) else getattr(config, "extra", None)
        spec = (extra or {}).get("score_calibration")
        return None if not spec else cls.from_dict(spec)

    @classmethod
    def from_dict(cls, spec: dict) -> ScoreCalibration:
        """A calibration from :meth:`to_dict`'s dictionary (as stored in ``config.json``)."""
        return cls(
            spec["mean"], spec["scale"], spec["weights"], spec.get("features", CLICK_FEATURES), spec.get("fitted_on")
        )

    def to_dict(self) -> dict:
        """The calibration as a JSON-ready dictionary."""
        out = {
            "features": list(self.features),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "weights": [float(v) for v in self.weights],
        }
        if self.fitted_on:
            out["fitted_on"] = self.fitted_on
        return out

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Calibrated IoU in [0, 1] of (N, F) :func:`click_features`."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return np.clip(quadratic_terms(z) @ self.weights, 0.0, 1.0)

    def __call__(self, logits, windows, image_size, scores) -> np.ndarray:
        """Calibrated scores of one click's candidates (their logits, windows and network scores)."""
        return self.predict(click_features(logits, windows, image_size, scores))
