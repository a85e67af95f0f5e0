"""Choose alpha for a budget or a quality target, on held-out data, with an uncertainty band.

Users think in budgets and quality, not in alpha. :func:`calibrate` routes held-out labelled
queries at a fine grid of alphas and picks:

* for a **cost target** (a fraction of the best single model's cost on the same queries, e.g.
  ``0.3``, ``"30%"``, or an absolute ``"$0.5/1k"`` = USD per 1,000 queries): the most accurate
  alpha whose measured cost is within the budget (ties: the cheaper one);
* for an **accuracy target** (a fraction of the best single model's accuracy, e.g. ``0.98``):
  the cheapest alpha whose measured accuracy reaches it.

"Held out" means queries the router was not fitted on: either a separate labelled file
(``cv=None``), or ``cv=K`` folds of the data: the router's configuration is refitted on K - 1
folds and routes the remaining fold, so that every query is routed by a router that never saw it
(a slightly pessimistic estimate for the router fitted on all of the data).

The expected accuracy and cost at the chosen alpha come with a bootstrap band (queries resampled
with replacement; percentile interval, 90% by default). It describes the uncertainty of those
estimates for the chosen alpha on data like the held-out data, not the luck of the choice.

The chosen alpha can become the router's default: ``result.apply(router)`` then
``router.save(path)`` (``avengers calibrate ROUTER DATA --target-cost 0.3 --save``).

Example:
    >>> from shared_core import Router, load_data
    >>> from shared_core.calibration import calibrate
    >>> router = Router.load("router.json")  # doctest: +SKIP
    >>> result = calibrate(router, load_data("heldout.jsonl"), target_cost=0.3)  # doctest: +SKIP
    >>> print(result.explain())  # doctest: +SKIP
    >>> result.apply(router).save("router.json")  # doctest: +SKIP
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from shared_core._errors import ConfigurationError, DataError
from shared_core.data import RoutingData
from shared_core.evaluation import _columns, _unit
from shared_core.router import Router

#: The alpha grid searched by default (0, 0.01, ..., 1).
CALIBRATION_ALPHAS = tuple(round(a, 4) for a in np.linspace(0.0, 1.0, 101))

_USD_PER_1K = re.compile(r"^\$\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*/\s*(1k|1000)$", re.I)


def parse_cost_target(spec: str | float) -> tuple[str, float]:
    """``0.3`` / ``"0.3"`` / ``"30%"`` -> ``("fraction", 0.3)`` of the best single model's cost;
    ``"$0.5/1k"`` -> ``("usd_per_1k", 0.5)``."""
    if not isinstance(spec, str):
        value, kind = float(spec), "fraction"
    else:
        text = spec.strip()
        m = _USD_PER_1K.match(text.replace(" ", ""))
        try:
            if m:
                value, kind = float(m.group(1)), "usd_per_1k"
            elif text.endswith("%"):
                value, kind = float(text[:-1]) / 100.0, "fraction"
            else:
                value, kind = float(text), "fraction"
        except ValueError:
            value, kind = float("nan"), ""
    if not kind or not np.isfinite(value) or value <= 0:
        raise ConfigurationError(
            f"bad cost target {spec!r}; expected a fraction of the best single model's cost "
            "(e.g. 0.3 or 30%) or USD per 1,000 queries (e.g. '$0.5/1k')"
        )
    return kind, value


def parse_accuracy_target(spec: str | float) -> float:
    """``0.98`` / ``"0.98"`` / ``"98%"`` -> 0.98, a fraction of the best single model's
    accuracy."""
    try:
        text = str(spec).strip()
        value = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise ConfigurationError(
            f"bad accuracy target {spec!r}; expected a fraction of the best single model's "
            "accuracy, e.g. 0.98 or 98%"
        )
    return value


@dataclass(frozen=True)
class Estimate:
    """A measured value with its bootstrap band ``(low, high)``."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


@dataclass(frozen=True)
class CalibrationResult:
    """The chosen alpha and what to expect from it (see :func:`calibrate`).

    ``accuracy`` is the mean score per query; ``cost_per_1k`` USD per 1,000 queries;
    ``cost_fraction`` / ``accuracy_fraction`` are relative to ``best_single`` (the most accurate
    single model on the same held-out queries), each with a bootstrap band at ``level``.
    ``met`` says whether the target is reached at the point estimate; when no alpha reaches an
    accuracy target, the most accurate alpha is returned with ``met=False``. ``curve`` holds the
    measured accuracy and cost at every alpha searched.
    """

    alpha: float
    target: str
    target_value: float
    met: bool
    accuracy: Estimate
    cost_per_1k: Estimate
    accuracy_fraction: Estimate
    cost_fraction: Estimate
    best_single: str
    best_single_accuracy: float
    best_single_cost_per_1k: float
    n_queries: int
    method: str
    level: float
    curve: list[dict[str, float]] = field(repr=False)

    def to_dict(self, curve: bool = True) -> dict[str, Any]:
        """JSON-ready (``curve=False`` leaves the per-alpha curve out)."""
        out = asdict(self)
        if not curve:
            out.pop("curve")
        return out

    def explain(self) -> str:
        """A few human-readable lines."""
        unit = {"cost_fraction": "of the best single model's cost",
                "usd_per_1k": "USD per 1k queries",
                "accuracy_fraction": "of the best single model's accuracy"}[self.target]
        pct = int(round(self.level * 100))
        a, c = self.accuracy, self.cost_per_1k
        af, cf = self.accuracy_fraction, self.cost_fraction
        lines = [
            f"target: {self.target_value:g} {unit}  ->  alpha = {self.alpha:g}"
            + ("" if self.met else "  (target NOT reached; closest alpha)"),
            f"expected accuracy   {a.value:.4f}  ({pct}% band {a.low:.4f} - {a.high:.4f}); "
            f"{af.value:.1%} of {self.best_single} ({af.low:.1%} - {af.high:.1%})",
            f"expected cost       ${c.value:.4g}/1k queries  ({pct}% band ${c.low:.4g} - "
            f"${c.high:.4g}); {cf.value:.1%} of {self.best_single}'s cost "
            f"({cf.low:.1%} - {cf.high:.1%})",
            f"measured on {self.n_queries} held-out queries ({self.method})",
        ]
        return "\n".join(lines)

    def apply(self, router: Router) -> Router:
        """Make the chosen alpha the router's default and record how it was chosen in the
        router file's editable ``config`` (then ``router.save(path)``)."""
        router.default_alpha = float(self.alpha)
        router.calibration = {
            "target": self.target,
            "target_value": self.target_value,
            "alpha": float(self.alpha),
            "met": self.met,
            "expected_accuracy": asdict(self.accuracy),
            "expected_cost_per_1k": asdict(self.cost_per_1k),
            "best_single": self.best_single,
            "n_queries": self.n_queries,
            "method": self.method,
            "level": self.level,
        }
        return router


def out_of_sample_choices(
    router: Router,
    data: RoutingData,
    alphas: Sequence[float] = CALIBRATION_ALPHAS,
    *,
    cv: int | None = None,
    embeddings: np.ndarray | None = None,
    random_state: int = 0,
) -> np.ndarray:
    """Model index (into ``data.models``) chosen for every query at every alpha: ``(n, alphas)``.

    ``cv=None``: ``router`` routes ``data`` as it is (``data`` must be held out). ``cv=K``: for
    each of K folds a router with ``router``'s configuration is fitted on the other folds.
    Only models known for a query are candidates (as in :func:`shared_core.evaluation.sweep`).
    """
    x = router.embed(data.queries) if embeddings is None else _unit(np.asarray(embeddings))
    known = ~np.isnan(data.scores)
    n = len(data)
    out = np.empty((n, len(alphas)), dtype=np.int64)
    if cv is None:
        folds = [(np.arange(n), router)]
    else:
        if not 2 <= cv <= n:
            raise ValueError(f"cv must be between 2 and the number of queries ({n}), got {cv}")
        perm = np.random.default_rng(random_state).permutation(n)
        folds = []
        for held in np.array_split(perm, cv):
            train = np.setdiff1d(perm, held)
            clone = Router(**router._params(), embedder=router.embedder)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fewer distinct queries than clusters in a fold
                clone.fit(data.subset(train), x[train])
            folds.append((np.sort(held), clone))
    for rows, fitted in folds:
        order = _columns(fitted.models_, data.models)
        mask = known[rows][:, order]
        for j, alpha in enumerate(alphas):
            out[rows, j] = order[fitted.route_batch(x[rows], float(alpha), mask=mask)]
    return out


def calibrate(
    router: Router,
    data: RoutingData,
    *,
    target_cost: str | float | None = None,
    target_accuracy: str | float | None = None,
    cv: int | None = None,
    embeddings: np.ndarray | None = None,
    alphas: Sequence[float] = CALIBRATION_ALPHAS,
    n_bootstrap: int = 1000,
    level: float = 0.9,
    random_state: int = 0,
) -> CalibrationResult:
    """Pick alpha for a cost or accuracy target on held-out labelled data.

    Args:
        router: a fitted router (with ``cv``, only its configuration and embedder are used).
        data: labelled queries the router was not fitted on; or, with ``cv``, any labelled
            queries (typically the training data).
        target_cost: a fraction of the best single model's cost (``0.3``, ``"30%"``) or USD per
            1,000 queries (``"$0.5/1k"``).
        target_accuracy: a fraction of the best single model's accuracy (``0.98``, ``"98%"``).
        cv: route ``data`` by cross-validation with this many folds instead of as held out.
        embeddings: precomputed embeddings of ``data.queries`` (the router's embedder).
        alphas: the grid searched (default 0, 0.01, ..., 1).
        n_bootstrap: bootstrap resamples for the band (0 = no band).
        level: coverage of the band.
        random_state: seed of the folds and of the bootstrap.

    Returns:
        A :class:`CalibrationResult`.

    Raises:
        ConfigurationError: not exactly one target, or a malformed one.
        DataError: no query in ``data`` has a known score for any of the router's models.
    """
    if (target_cost is None) == (target_accuracy is None):
        raise ConfigurationError("give exactly one of target_cost and target_accuracy")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    router._check_fitted()
    if len(data) == 0:
        raise DataError("no queries to calibrate on")
    # only the router's models count (candidates, best single model, the refits of cv)
    cols = _columns(router.models_, data.models)
    data = replace(data, models=tuple(router.models_), scores=data.scores[:, cols],
                   costs=data.costs[:, cols])
    alphas = tuple(float(a) for a in alphas)
    choice = out_of_sample_choices(
        router, data, alphas, cv=cv, embeddings=embeddings, random_state=random_state
    )
    n = len(data)
    rows = np.arange(n)[:, None]
    score = np.nan_to_num(data.scores[rows, choice], nan=0.0)  # (n, alphas)
    cost = np.nan_to_num(data.costs[rows, choice], nan=0.0)
    acc_curve, cost_curve = score.mean(axis=0), cost.mean(axis=0) * 1000.0

    # the best single model on the same queries (unknown pairs left out of its mean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model known for no query
        single_acc = np.nanmean(data.scores, axis=0)
    if np.all(np.isnan(single_acc)):
        raise DataError("no query has a known score for any of the router's models")
    best_j = int(np.nanargmax(single_acc))
    best_name = data.models[best_j]
    # as in evaluation.baselines: accuracy over the queries where it is known, total cost
    best_score = data.scores[:, best_j]
    best_cost = np.nan_to_num(data.costs[:, best_j], nan=0.0)
    best_acc, best_cost_1k = float(single_acc[best_j]), float(best_cost.mean() * 1000.0)

    if target_cost is not None:
        kind, value = parse_cost_target(target_cost)
        target = "cost_fraction" if kind == "fraction" else "usd_per_1k"
        budget = value * best_cost_1k if kind == "fraction" else value
        ok = cost_curve <= budget * (1 + 1e-9)
        met = bool(ok.any())
        if met:  # the most accurate within budget; ties -> cheaper, then smaller alpha
            key = np.where(ok, -acc_curve, np.inf)
            pick = int(np.lexsort((np.arange(len(alphas)), cost_curve, key))[0])
        else:  # nothing fits: the cheapest alpha
            pick = int(np.lexsort((np.arange(len(alphas)), -acc_curve, cost_curve))[0])
    else:
        value = parse_accuracy_target(target_accuracy)  # type: ignore[arg-type]
        target = "accuracy_fraction"
        ok = acc_curve >= value * best_acc - 1e-12
        met = bool(ok.any())
        if met:  # the cheapest reaching it; ties -> more accurate, then smaller alpha
            big = np.where(ok, cost_curve, np.inf)
            pick = int(np.lexsort((np.arange(len(alphas)), -acc_curve, big))[0])
        else:  # nothing reaches it: the most accurate alpha (cheapest among equals)
            pick = int(np.lexsort((np.arange(len(alphas)), cost_curve, -acc_curve))[0])

    acc_b, cost_b, accf_b, costf_b = _bootstrap(
        score[:, pick], cost[:, pick], best_score, best_cost, n_bootstrap, random_state
    )
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2

    def est(point: float, samples: np.ndarray) -> Estimate:
        if samples.size == 0:
            return Estimate(point, point, point)
        lo, hi = np.quantile(samples, [lo_q, hi_q])
        return Estimate(float(point), float(lo), float(hi))

    acc_pt, cost_pt = float(acc_curve[pick]), float(cost_curve[pick])
    return CalibrationResult(
        alpha=alphas[pick],
        target=target,
        target_value=float(value),
        met=met,
        accuracy=est(acc_pt, acc_b),
        cost_per_1k=est(cost_pt, cost_b * 1000.0),
        accuracy_fraction=est(acc_pt / best_acc if best_acc > 0 else float("nan"), accf_b),
        cost_fraction=est(cost_pt / best_cost_1k if best_cost_1k > 0 else float("nan"), costf_b),
        best_single=best_name,
        best_single_accuracy=best_acc,
        best_single_cost_per_1k=best_cost_1k,
        n_queries=n,
        method=f"{cv}-fold cross-validation" if cv else "held-out data",
        level=level,
        curve=[
            {"alpha": a, "accuracy": float(ac), "cost_per_1k": float(co)}
            for a, ac, co in zip(alphas, acc_curve, cost_curve, strict=True)
        ],
    )


def _bootstrap(
    score: np.ndarray,
    cost: np.ndarray,
    best_score: np.ndarray,
    best_cost: np.ndarray,
    n_bootstrap: int,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resampled means of accuracy and cost, and their ratios to the best single model's."""
    if n_bootstrap <= 0:
        empty = np.empty(0)
        return empty, empty, empty, empty
    rng = np.random.default_rng(random_state)
    n = score.size
    acc, cst, accf, cstf = (np.empty(n_bootstrap) for _ in range(4))
    for start in range(0, n_bootstrap, 100):  # 100 resamples at a time bounds the memory
        b = min(100, n_bootstrap - start)
        idx = rng.integers(0, n, size=(b, n))
        a, c = score[idx].mean(axis=1), cost[idx].mean(axis=1)
        bc = best_cost[idx].mean(axis=1)
        sl = slice(start, start + b)
        acc[sl], cst[sl] = a, c
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ba = np.nanmean(best_score[idx], axis=1)
            accf[sl], cstf[sl] = a / ba, c / bc
    return acc, cst, accf, cstf
