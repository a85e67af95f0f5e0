"""The performance-efficiency score of Avengers-Pro, pure and vectorised.

For each cluster (row) the models' mean accuracy ``p`` and mean cost ``q`` are normalised across
models, then ``x = alpha * p~ + (1 - alpha) * (1 - q~)``; the routed model is the argmax.

Degenerate cases, explicitly:

* a row where every model ties (``max == min``): every model gets ``p~ = 1`` (all are equally
  good) or ``q~ = 0`` (all are equally cheap), so the other term decides;
* ``NaN`` (a model with no data in the row) stays ``NaN`` and never wins an argmax; the router
  fills such holes before it normalises (see :mod:`shared_core.router`).

Example:
    >>> import numpy as np
    >>> from shared_core.scoring import minmax_normalise, performance_efficiency
    >>> p = minmax_normalise(np.array([[0.9, 0.6, 0.3]]))
    >>> q = minmax_normalise(np.array([[10.0, 1.0, 0.1]]))
    >>> performance_efficiency(p, q, alpha=1.0).argmax(), performance_efficiency(p, q, 0.0).argmax()
    (np.int64(0), np.int64(2))
"""

from __future__ import annotations

import numpy as np


def minmax_normalise(values: np.ndarray) -> np.ndarray:
    """Min-max normalise each row across its columns (ties -> 1.0; NaN stays NaN)."""
    values = np.asarray(values, dtype=np.float64)
    lo = np.nanmin(values, axis=-1, keepdims=True)
    hi = np.nanmax(values, axis=-1, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(span > 0, (values - lo) / np.where(span > 0, span, 1.0), 1.0)
    return np.where(np.isnan(values), np.nan, out)


def max_normalise(values: np.ndarray) -> np.ndarray:
    """Divide each row by its maximum (the authors' code for costs; all-zero rows -> 0)."""
    values = np.asarray(values, dtype=np.float64)
    hi = np.nanmax(values, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi > 0, values / np.where(hi > 0, hi, 1.0), 0.0) * np.where(
            np.isnan(values), np.nan, 1.0
        )


def normalise_costs(values: np.ndarray, method: str) -> np.ndarray:
    """``method`` is ``"minmax"`` (the paper) or ``"max"`` (the authors' code)."""
    if method == "minmax":
        # ties mean "equally cheap": q~ = 0, not 1
        out = minmax_normalise(values)
        flat = np.nanmax(values, axis=-1, keepdims=True) == np.nanmin(
            values, axis=-1, keepdims=True
        )
        return np.where(flat & ~np.isnan(out), 0.0, out)
    if method == "max":
        return max_normalise(values)
    raise ValueError(f"unknown cost normalisation {method!r}; known: 'minmax', 'max'")


def performance_efficiency(
    p_norm: np.ndarray, q_norm: np.ndarray, alpha: float | np.ndarray
) -> np.ndarray:
    """``alpha * p~ + (1 - alpha) * (1 - q~)``; ``alpha`` broadcasts (scalar or per row)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 1:
        alpha = alpha[:, None]
    if np.any((alpha < 0) | (alpha > 1)):
        raise ValueError(f"alpha must be in [0, 1], got {alpha.ravel()[:3].tolist()}")
    return alpha * p_norm + (1.0 - alpha) * (1.0 - q_norm)
