"""The Avengers-Pro router: cluster past queries, score models per cluster, route new queries.

Fit (scikit-learn style: ``__init__`` stores hyperparameters, ``fit`` learns attributes ending in
``_`` and returns ``self``):

1. embed every training query and L2-normalise it;
2. k-means into ``n_clusters`` clusters (scikit-learn, ``random_state`` for reproducibility);
3. per cluster ``j`` and model ``i``: mean score ``p`` and mean cost ``q`` over the cluster's
   training queries on which the model is known.

Route: embed the query, find the nearest centroid (or the ``top_k`` nearest, blended by
``softmax(-beta * distance)``), and pick the model with the highest
``alpha * p~ + (1 - alpha) * (1 - q~)`` where ``p~`` and ``q~`` are the normalised accuracy and
cost. ``alpha`` and the allowed models are call-time arguments, never fitted state.

Two estimators share this code:

* **the default** (``Router()``), four changes to the paper, none tuned per data set:

  - ``shrinkage="auto"``: per-cluster accuracies shrunk towards each model's global accuracy by
    empirical Bayes; a cluster's own mean counts for ``n / (n + s_i)`` with ``s_i`` =
    within-cluster variance / between-cluster variance of model ``i`` in the training data;
  - ``top_k=3``: the 3 nearest clusters blended by ``softmax(-9 * distance)``;
  - ``normalisation="global"``: p~ and q~ min-max normalised over the whole (clusters x models)
    table, so that one point of accuracy or one dollar weighs the same in every cluster and the
    score is one exchange rate between accuracy and cost;
  - ``alpha_scale="log_cost"``: ``alpha`` sets a budget ``E_min ** (1 - alpha) * E_max ** alpha``
    between the expected cost per query of cheapest-first (``E_min``) and accuracy-first
    (``E_max``) routing of the training clusters; the score weighs accuracy as for the most
    accurate routing whose expected cost fits that budget (the middle of that routing's range of
    weights; :attr:`RoutingDecision.accuracy_weight`). Equal steps of alpha are then equal cost
    ratios; read as a weight (the paper), most of the cheap half of the trade-off happens
    between alpha = 0 and 0.1;

* **the paper** (:meth:`Router.paper`): plain cluster means, the nearest cluster only, min-max
  within each cluster (``normalisation="cluster"``), alpha used as the weight
  (``alpha_scale="identity"``); :meth:`Router.authors_code` is the authors' code variant
  (``top_k=3``, ``beta=9``, costs divided by the cluster's maximum).

Either way alpha keeps its meaning: 0 = cheapest first, 1 = most accurate first, and the routed
model's estimated cost never decreases as alpha grows.

Degenerate cases, explicitly:

* a model with no data in a cluster takes that model's global mean score and cost (it is neither
  favoured nor punished for missing data); with ``shrinkage > 0`` (or ``"auto"``) every cluster
  estimate is pulled towards the global mean, which also covers this case;
* ``shrinkage="auto"``: a model whose accuracy does not vary across clusters beyond sampling
  noise gets its global mean in every cluster; the within-cluster variance carries one
  pseudo-degree of freedom at ``m (1 - m)`` (the largest a score in [0, 1] with mean ``m`` can
  have), so that clusters of single queries, which show no noise, are still shrunk;
* all models tie in a cluster: with ``normalisation="cluster"`` see :mod:`shared_core.scoring`
  (``p~ = 1``, ``q~ = 0`` for all); with ``"global"`` they get equal ``p~`` (so the cost decides,
  then the tie rule below); a table where every entry ties gets ``p~ = 1`` and ``q~ = 0``;
* fewer distinct queries than clusters: ``n_clusters_`` is lowered to that number, with a
  warning; k-means never leaves a cluster empty, but a loaded file with an empty cluster falls
  back to the global means like a model without data;
* ties between models' final scores go to the cheaper model (then the earlier name);
* ``alpha_scale="log_cost"`` when cheapest-first and accuracy-first routing cost the same, or
  cheapest-first costs nothing (a free model): alpha is used as the weight, as in the paper;
* router files written before these options existed load with the method they were fitted with
  (``normalisation="cluster"``, ``alpha_scale="identity"``).

Example:
    >>> from shared_core import Router, load_data
    >>> router = Router(n_clusters=20, random_state=0).fit(
    ...     load_data("../shared/data/routerbench/train.jsonl"))  # doctest: +SKIP
    >>> router.route("What is 7 * 6?", alpha=0.7).model  # doctest: +SKIP
    'gpt-4-1106-preview'
    >>> paper = Router.paper(random_state=0)  # the paper's exact method  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared_core._errors import (
    EmbedderMismatchError,
    NotFittedError,
    QueryError,
    RouterFileError,
    UnknownModelError,
)
from shared_core.data import RoutingData, Sample, load_data
from shared_core.embeddings import Embedder, default_embedder, get_embedder
from shared_core.scoring import minmax_normalise, normalise_costs, performance_efficiency

FILE_FORMAT = "avengers-router"
FILE_VERSION = 1


@dataclass(frozen=True, eq=False)
class ModelEstimates:
    """What the router believes about every model for one query (before any trade-off).

    ``accuracy`` / ``cost`` are the (blended) cluster means; ``p_norm`` / ``q_norm`` the same
    normalised across models within the cluster(s).
    """

    models: tuple[str, ...]
    accuracy: np.ndarray
    cost: np.ndarray
    p_norm: np.ndarray
    q_norm: np.ndarray
    clusters: tuple[int, ...]
    distances: tuple[float, ...]
    weights: tuple[float, ...]

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            m: {"accuracy": float(a), "cost": float(c), "p_norm": float(p), "q_norm": float(q)}
            for m, a, c, p, q in zip(
                self.models, self.accuracy, self.cost, self.p_norm, self.q_norm, strict=True
            )
        }


@dataclass(frozen=True, eq=False)
class RoutingDecision:
    """The routed model and why: cluster(s), distances, each model's p~, q~ and score.

    ``scores`` holds ``-inf`` for models that were not allowed. ``ranking`` lists the allowed
    models from best to worst (the fallback order).
    """

    model: str
    alpha: float
    estimates: ModelEstimates
    scores: np.ndarray
    #: the weight of p~ in the score (``alpha`` mapped by the router's ``alpha_scale``)
    accuracy_weight: float | None = None

    @property
    def models(self) -> tuple[str, ...]:
        return self.estimates.models

    @property
    def cluster(self) -> int:
        return self.estimates.clusters[0]

    @property
    def clusters(self) -> tuple[int, ...]:
        return self.estimates.clusters

    @property
    def distances(self) -> tuple[float, ...]:
        return self.estimates.distances

    @property
    def ranking(self) -> tuple[str, ...]:
        order = _rank(self.scores, self.estimates.cost)
        return tuple(self.models[i] for i in order if np.isfinite(self.scores[i]))

    @property
    def margin(self) -> float:
        """Score of the chosen model minus the runner-up's (``inf`` with one candidate)."""
        finite = np.sort(self.scores[np.isfinite(self.scores)])
        return float(finite[-1] - finite[-2]) if finite.size > 1 else float("inf")

    def score_of(self, model: str) -> float:
        return float(self.scores[self.models.index(model)])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready explanation of the decision."""
        est = self.estimates.as_dict()
        return {
            "model": self.model,
            "alpha": self.alpha,
            "accuracy_weight": self.accuracy_weight,
            "clusters": list(self.clusters),
            "distances": [round(d, 6) for d in self.distances],
            "weights": [round(w, 6) for w in self.estimates.weights],
            "margin": self.margin,
            "ranking": list(self.ranking),
            "candidates": {
                m: {**est[m], "score": (float(s) if np.isfinite(s) else None)}
                for m, s in zip(self.models, self.scores, strict=True)
            },
        }

    def explain(self) -> str:
        """A short human-readable table of the decision."""
        lines = [
            f"-> {self.model}  (alpha={self.alpha:g}"
            + (
                ""
                if self.accuracy_weight in (None, self.alpha)
                else f" -> accuracy weight {self.accuracy_weight:.4g}"
            )
            + (
                f", cluster {self.cluster}, distance {self.distances[0]:.3f}"
                if len(self.clusters) == 1
                else ", clusters "
                + ", ".join(
                    f"{c} ({w:.0%}, d={d:.3f})"
                    for c, w, d in zip(
                        self.clusters, self.estimates.weights, self.distances, strict=True
                    )
                )
            )
            + f", margin {self.margin:.3f})",
            f"   {'model':40s} {'acc':>6s} {'cost $':>10s} {'p~':>5s} {'q~':>5s} {'score':>6s}",
        ]
        e = self.estimates
        for i in _rank(self.scores, e.cost):
            s = self.scores[i]
            mark = "*" if self.models[i] == self.model else " "
            score = f"{s:6.3f}" if np.isfinite(s) else "   n/a"
            lines.append(
                f" {mark} {self.models[i][:40]:40s} {e.accuracy[i]:6.3f} {e.cost[i]:10.2e} "
                f"{e.p_norm[i]:5.2f} {e.q_norm[i]:5.2f} {score}"
            )
        return "\n".join(lines)


def _rank(scores: np.ndarray, cost: np.ndarray) -> np.ndarray:
    # best score first; ties go to the cheaper model, then the earlier name
    return np.lexsort((np.arange(scores.size), cost, -np.nan_to_num(scores, neginf=-np.inf)))


def _as_data(data: RoutingData | Sequence[Sample] | str | os.PathLike[str]) -> RoutingData:
    if isinstance(data, RoutingData):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_data(data)
    return RoutingData.from_samples(list(data))


def _eb_pseudo_samples(
    counts: np.ndarray, sums: np.ndarray, sq_sums: np.ndarray | None, mean: np.ndarray
) -> np.ndarray:
    """Empirical-Bayes prior strength per model, in pseudo-samples (method of moments).

    Model ``i``'s true cluster accuracies are taken to scatter around its global accuracy with
    variance ``tau2_i``; a cluster mean of ``n`` queries adds sampling noise ``sigma2_i / n``.
    The posterior mean is ``(n * mean_j + s_i * global_i) / (n + s_i)`` with
    ``s_i = sigma2_i / tau2_i``.
    ``sigma2_i`` is the pooled within-cluster variance (with one pseudo-degree of freedom at
    ``m (1 - m)``, the binomial variance, used alone when squared sums are unknown); ``tau2_i`` is
    the between-cluster variance minus the expected sampling part.
    ``tau2_i <= 0`` (no signal beyond noise) gives ``inf`` (always the global mean).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        has = counts > 0
        n_total = counts.sum(axis=0)
        means = np.where(has, sums / np.where(has, counts, 1.0), 0.0)
        if sq_sums is None:
            sigma2 = mean * (1.0 - mean)
        else:
            # pooled within-cluster variance, plus one pseudo-degree of freedom at the largest
            # variance a [0, 1] score with this mean can have: clusters of single queries (no
            # replicate to measure noise on) are then still shrunk
            within = np.maximum(np.where(has, sq_sums - sums * means, 0.0).sum(axis=0), 0.0)
            dof = np.maximum(n_total - has.sum(axis=0), 0.0)
            sigma2 = (within + mean * (1.0 - mean)) / (dof + 1.0)
        weights = counts / np.maximum(n_total, 1.0)
        between = (weights * np.where(has, means - mean, 0.0) ** 2).sum(axis=0)
        noise = sigma2 * has.sum(axis=0) / np.maximum(n_total, 1.0)
        tau2 = between - noise
        s = np.where(tau2 > 0, sigma2 / np.where(tau2 > 0, tau2, 1.0), np.inf)
    return np.where(np.isnan(s), np.inf, s)


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class Router:
    """Performance-efficiency router (Avengers-Pro), with better-estimated cluster statistics.

    The defaults are the method measured best on held-out data (see ``bench/QUALITY.md``):
    empirical-Bayes shrinkage, the 3 nearest clusters blended, global normalisation and a
    log-cost alpha scale. The paper's exact method is :meth:`Router.paper`, the authors' code
    variant :meth:`Router.authors_code`.

    Args:
        n_clusters: number of k-means clusters (the paper uses 60).
        embedder: the query :class:`~shared_core.embeddings.Embedder`; default: the offline
            static embedder.
        top_k: number of nearest clusters blended per query (1 = the paper; the authors' code
            and the default use 3).
        beta: sharpness of the ``softmax(-beta * distance)`` blend when ``top_k > 1``.
        cost_normalisation: ``"minmax"`` (the paper) or ``"max"`` (the authors' code: divide by
            the maximum).
        shrinkage: how far each cluster's accuracy is pulled towards the model's global
            accuracy: ``"auto"`` (default) = empirical Bayes, per model, from the data; a number
            = that many pseudo-samples for accuracy and cost alike; 0 = the paper's plain means.
        normalisation: ``"global"`` (default): p~ and q~ are min-max normalised over the whole
            (clusters x models) table; ``"cluster"`` (the paper): within each cluster.
        alpha_scale: ``"log_cost"`` (default): alpha is a budget on a log scale between
            cheapest-first and accuracy-first routing (see the module docstring);
            ``"identity"`` (the paper): alpha is the weight of p~ in the score.
        random_state: seed of k-means; the same seed and data give an identical router file.
        n_init: k-means restarts.

    Example:
        >>> from shared_core import Router, load_data
        >>> train = load_data("../shared/data/routerbench/train.jsonl")
        >>> router = Router(n_clusters=20, random_state=0).fit(train)
        >>> decision = router.route("Which gas do plants absorb?", alpha=0.5)
        >>> decision.model == decision.ranking[0] and decision.model in router.models_
        True
        >>> print(decision.explain())  # doctest: +ELLIPSIS
        -> ...
    """

    def __init__(
        self,
        n_clusters: int = 60,
        *,
        embedder: Embedder | None = None,
        top_k: int = 3,
        beta: float = 9.0,
        cost_normalisation: str = "minmax",
        shrinkage: float | str = "auto",
        normalisation: str = "global",
        alpha_scale: str = "log_cost",
        random_state: int | None = 0,
        n_init: int = 3,
    ) -> None:
        self.n_clusters = n_clusters
        self.embedder = embedder
        self.top_k = top_k
        self.beta = beta
        self.cost_normalisation = cost_normalisation
        self.shrinkage = shrinkage
        self.normalisation = normalisation
        self.alpha_scale = alpha_scale
        self.random_state = random_state
        self.n_init = n_init
        # Configuration recorded in the router file, editable by hand.
        self.model_specs: dict[str, str] = {}
        self.default_alpha: float = 0.5
        #: how ``default_alpha`` was chosen (set by :mod:`shared_core.calibration`), or None
        self.calibration: dict[str, Any] | None = None
        self._mask_cache: dict[tuple[Any, Any], np.ndarray] = {}

    @classmethod
    def paper(cls, n_clusters: int = 60, **kwargs: Any) -> Router:
        """The paper's exact method: nearest cluster, plain means, min-max within the cluster."""
        params: dict[str, Any] = {
            "top_k": 1,
            "shrinkage": 0.0,
            "normalisation": "cluster",
            "cost_normalisation": "minmax",
            "alpha_scale": "identity",
        }
        return cls(n_clusters, **{**params, **kwargs})

    @classmethod
    def authors_code(cls, n_clusters: int = 60, **kwargs: Any) -> Router:
        """The authors' code variant: 3 nearest clusters blended by ``softmax(-9 * distance)``,
        costs divided by the cluster's maximum, plain means, normalised within the cluster."""
        params: dict[str, Any] = {
            "top_k": 3,
            "beta": 9.0,
            "shrinkage": 0.0,
            "normalisation": "cluster",
            "cost_normalisation": "max",
            "alpha_scale": "identity",
        }
        return cls(n_clusters, **{**params, **kwargs})

    # ------------------------------------------------------------------ helpers
    def __repr__(self) -> str:
        fitted = f", models={len(self.models_)}" if self.is_fitted else ", unfitted"
        return (
            f"Router(n_clusters={self.n_clusters}, top_k={self.top_k}, "
            f"cost_normalisation={self.cost_normalisation!r}, shrinkage={self.shrinkage!r}, "
            f"normalisation={self.normalisation!r}, alpha_scale={self.alpha_scale!r}{fitted})"
        )

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "cluster_centers_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                "this Router is not fitted yet: call fit(data) or Router.load(path)"
            )

    def _get_embedder(self) -> Embedder:
        if self.embedder is None:
            self.embedder = default_embedder()
        return self.embedder

    @property
    def embedder_id(self) -> str:
        return getattr(self, "embedder_id_", None) or self._get_embedder().id

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed and L2-normalise texts with the router's embedder."""
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise QueryError(f"cannot route an empty or non-text query: {t!r}")
        return _l2_normalise(np.asarray(self._get_embedder().embed(list(texts)), np.float32))

    # ---------------------------------------------------------------------- fit
    def fit(
        self,
        data: RoutingData | Sequence[Sample] | str | os.PathLike[str],
        embeddings: np.ndarray | None = None,
    ) -> Router:
        """Learn clusters and per-cluster model statistics.

        Args:
            data: routing data (a :class:`RoutingData`, samples, or a path).
            embeddings: precomputed embeddings of ``data.queries`` (from this router's embedder);
                computed when omitted.

        Returns:
            ``self``.
        """
        from sklearn.cluster import KMeans

        data = _as_data(data)
        if self.n_clusters < 1 or self.top_k < 1:
            raise ValueError(
                f"n_clusters and top_k must be >= 1, got {self.n_clusters}, {self.top_k}"
            )
        normalise_costs(np.zeros((1, 1)), self.cost_normalisation)  # validates the name
        self._check_estimator_params()
        if embeddings is None:
            x = self.embed(data.queries)
        else:
            x = _l2_normalise(np.asarray(embeddings))
        if x.shape[0] != len(data):
            raise ValueError(f"{x.shape[0]} embeddings for {len(data)} queries")
        n_distinct = len({row.tobytes() for row in x}) if len(x) < 50 * self.n_clusters else len(x)
        k = min(self.n_clusters, n_distinct)
        if k < self.n_clusters:
            warnings.warn(
                f"only {n_distinct} distinct queries for n_clusters={self.n_clusters}; "
                f"using {k} clusters",
                stacklevel=2,
            )
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
        labels = km.fit_predict(x)
        self.embedder_id_ = self.embedder_id
        self.models_ = tuple(data.models)
        self.cluster_centers_ = km.cluster_centers_.astype(np.float32)
        self._learn_stats(labels, data.scores, data.costs, k)
        self.n_clusters_ = k
        self._prepare()
        return self

    def _check_estimator_params(self) -> None:
        if self.normalisation not in ("global", "cluster"):
            raise ValueError(
                f"unknown normalisation {self.normalisation!r}; known: 'global', 'cluster'"
            )
        if self.alpha_scale not in ("log_cost", "identity"):
            raise ValueError(
                f"unknown alpha_scale {self.alpha_scale!r}; known: 'log_cost', 'identity'"
            )
        s = self.shrinkage
        if isinstance(s, str) and s != "auto":
            raise ValueError(f"shrinkage must be 'auto' or a number >= 0, got {s!r}")
        if not isinstance(s, str) and not float(s) >= 0:
            raise ValueError(f"shrinkage must be 'auto' or a number >= 0, got {s!r}")

    def _learn_stats(
        self, labels: np.ndarray, scores: np.ndarray, costs: np.ndarray, k: int
    ) -> None:
        onehot = np.zeros((k, labels.size))
        onehot[labels, np.arange(labels.size)] = 1.0
        known = ~np.isnan(scores)
        known_scores = np.where(known, scores, 0.0)
        self.cluster_sizes_ = onehot.sum(axis=1).astype(np.int64)
        self.counts_ = (onehot @ known).astype(np.int64)
        self.score_sums_ = onehot @ known_scores
        self.score_sq_sums_ = onehot @ known_scores**2
        self.cost_sums_ = onehot @ np.where(known & ~np.isnan(costs), costs, 0.0)

    def _prepare(self) -> None:
        """Derive the (clusters x models) tables used at routing time from the learned sums."""
        counts = self.counts_.astype(np.float64)
        total = counts.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.global_accuracy_ = self.score_sums_.sum(axis=0) / total
            self.global_cost_ = self.cost_sums_.sum(axis=0) / total
            if self.shrinkage == "auto":
                # empirical Bayes for accuracy; costs are averages of many smooth values: plain
                s_acc: np.ndarray | float = _eb_pseudo_samples(
                    counts,
                    self.score_sums_,
                    getattr(self, "score_sq_sums_", None),
                    self.global_accuracy_,
                )
                s_cost = 0.0
            else:
                s_acc = s_cost = float(self.shrinkage)
            self.shrinkage_ = np.broadcast_to(np.asarray(s_acc, np.float64), total.shape).copy()
            # weight of the cluster's own mean: n / (n + s) (0 without data, 0 when s = inf)
            w_acc = np.where(counts > 0, counts / (counts + s_acc), 0.0)
            w_cost = np.where(counts > 0, counts / (counts + s_cost), 0.0)
            acc = np.where(counts > 0, self.score_sums_ / counts, 0.0)
            cost = np.where(counts > 0, self.cost_sums_ / counts, 0.0)
        # a model without data in a cluster: its global mean
        self.accuracy_ = w_acc * acc + (1.0 - w_acc) * self.global_accuracy_
        self.cost_ = w_cost * cost + (1.0 - w_cost) * self.global_cost_
        if self.normalisation == "cluster":
            self.p_norm_ = minmax_normalise(self.accuracy_)
            self.q_norm_ = normalise_costs(self.cost_, self.cost_normalisation)
        else:
            # one range for the whole table: ravel -> normalise as one row -> reshape
            shape = self.accuracy_.shape
            self.p_norm_ = minmax_normalise(self.accuracy_.reshape(1, -1)).reshape(shape)
            self.q_norm_ = normalise_costs(
                self.cost_.reshape(1, -1), self.cost_normalisation
            ).reshape(shape)
        self._alpha_knots = self._fit_alpha_scale()
        self._alpha_cache: dict[float, float] = {}
        c = self.cluster_centers_.astype(np.float32)
        self._centers = np.ascontiguousarray(c)
        self._c_sq = (c.astype(np.float64) ** 2).sum(axis=1)
        # the four tables side by side, so that blending clusters is one gather + one product
        self._tables = np.ascontiguousarray(
            np.concatenate([self.p_norm_, self.q_norm_, self.accuracy_, self.cost_], axis=1)
        )
        self._mask_cache = {}

    def _fit_alpha_scale(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Steps ``(alpha, accuracy weight)`` of the ``"log_cost"`` alpha scale (None: identity).

        For a fine grid of accuracy weights ``a`` (the weight of p~ in the score), the expected
        cost per query of routing the training clusters (weighted by their sizes) is a
        non-decreasing step function ``E(a)`` from ``E_min`` (cheapest first, ``a = 0``) to
        ``E_max`` (accuracy first, ``a = 1``). ``alpha`` sets the budget
        ``E_min ** (1 - alpha) * E_max ** alpha`` (log-linear between the two) and takes the
        middle ``a`` of the most expensive step within that budget; ``0 -> 0``, ``1 -> 1``.
        """
        if self.alpha_scale == "identity":
            return None
        lam = np.concatenate([[np.inf], np.logspace(4, -4, 801), [0.0]])
        with np.errstate(divide="ignore"):
            a = np.where(np.isinf(lam), 0.0, 1.0 / (1.0 + lam))
        p, q = self.p_norm_[None], self.q_norm_[None]
        scores = a[:, None, None] * p + (1.0 - a[:, None, None]) * (1.0 - q) - 1e-12 * q
        choice = scores.argmax(axis=2)  # (grid, clusters)
        w = self.cluster_sizes_ / max(self.cluster_sizes_.sum(), 1)
        cost = np.take_along_axis(
            np.broadcast_to(self.cost_, (a.size, *self.cost_.shape)), choice[:, :, None], axis=2
        )[:, :, 0]
        expected = np.maximum.accumulate(cost @ w)
        e_min, e_max = expected[0], expected[-1]
        if not (e_max > e_min > 0):  # one cost level, or free models: alpha is used as it is
            return None
        levels, start = np.unique(np.round(expected / e_max, 12), return_index=True)
        stop = np.append(start[1:], a.size)
        mid = a[(start + stop - 1) // 2]  # the middle of each step (log-spaced grid)
        mid[0], mid[-1] = 0.0, 1.0
        log_e = np.log(levels)
        alpha = (log_e - log_e[0]) / (log_e[-1] - log_e[0])
        return alpha, mid

    def accuracy_weight(self, alpha: float | np.ndarray) -> float | np.ndarray:
        """The weight of p~ in the score for a user ``alpha`` (see ``alpha_scale``)."""
        knots = self._alpha_knots
        if knots is None:
            return alpha
        if isinstance(alpha, np.ndarray):
            return knots[1][np.searchsorted(knots[0], alpha, side="right") - 1]
        weight = self._alpha_cache.get(alpha)
        if weight is None:
            weight = float(knots[1][np.searchsorted(knots[0], alpha, side="right") - 1])
            if len(self._alpha_cache) < 4096:
                self._alpha_cache[alpha] = weight
        return weight

    # ------------------------------------------------------------------ scoring
    def _mask(self, allowed: Iterable[str] | None, excluded: Iterable[str] | None) -> np.ndarray:
        key = (
            tuple(allowed) if allowed is not None else None,
            tuple(excluded) if excluded is not None else None,
        )
        mask = self._mask_cache.get(key)
        if mask is None:
            index = {m: i for i, m in enumerate(self.models_)}
            mask = np.ones(len(self.models_), dtype=bool)
            if key[0] is not None:
                mask[:] = False
                for m in key[0]:
                    if m not in index:
                        raise UnknownModelError(m, self.models_)
                    mask[index[m]] = True
            for m in key[1] or ():
                if m not in index:
                    raise UnknownModelError(m, self.models_)
                mask[index[m]] = False
            if not mask.any():
                raise ValueError(
                    f"no model left to route to (allowed={key[0]}, excluded={key[1]}); "
                    f"models: {', '.join(self.models_)}"
                )
            if len(self._mask_cache) < 256:
                self._mask_cache[key] = mask
        return mask

    def _nearest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k clusters, their distances and blend weights for normalised rows ``x``."""
        d2 = np.maximum(self._c_sq[None, :] - 2.0 * (x @ self._centers.T) + 1.0, 0.0)
        k = min(self.top_k, d2.shape[1])
        if k == 1:
            idx = d2.argmin(axis=1)[:, None]
        else:
            part = np.argpartition(d2, k - 1, axis=1)[:, :k]
            order = np.take_along_axis(d2, part, axis=1).argsort(axis=1)
            idx = np.take_along_axis(part, order, axis=1)
        dist = np.sqrt(np.take_along_axis(d2, idx, axis=1))
        logits = -self.beta * (dist - dist[:, :1])
        w = np.exp(logits)
        w /= w.sum(axis=1, keepdims=True)
        return idx, dist, w

    def _blend(self, table: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        if idx.shape[1] == 1:
            return table[idx[:, 0]]
        out = w[:, 0, None] * table[idx[:, 0]]
        for i in range(1, idx.shape[1]):  # a loop over the top_k, never over clusters or models
            out += w[:, i, None] * table[idx[:, i]]
        return out

    def estimate_embeddings(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """Batch estimates for normalised embeddings ``x``: ``(p_norm, q_norm, accuracy, cost,
        clusters, distances, weights)``, each with one row per query."""
        self._check_fitted()
        idx, dist, w = self._nearest(np.atleast_2d(x))
        m = len(self.models_)
        t = self._blend(self._tables, idx, w)
        return t[:, :m], t[:, m : 2 * m], t[:, 2 * m : 3 * m], t[:, 3 * m :], idx, dist, w

    def score_embedding(self, x: np.ndarray) -> ModelEstimates:
        """Per-model estimates for one normalised embedding (the single-query hot path)."""
        self._check_fitted()
        x = np.asarray(x, dtype=np.float32).ravel()
        d2 = self._c_sq - 2.0 * (self._centers @ x) + 1.0
        if self.top_k == 1:
            j = int(d2.argmin())
            dist = float(np.sqrt(max(d2[j], 0.0)))
            return ModelEstimates(
                self.models_,
                self.accuracy_[j],
                self.cost_[j],
                self.p_norm_[j],
                self.q_norm_[j],
                (j,),
                (dist,),
                (1.0,),
            )
        idx = np.argsort(d2)[: self.top_k]
        # a handful of numbers: plain Python floats are faster than small arrays here
        dists = [math.sqrt(v) if v > 0.0 else 0.0 for v in d2[idx].tolist()]
        raw = [math.exp(-self.beta * (d - dists[0])) for d in dists]
        total = sum(raw)
        weights = [v / total for v in raw]
        t = np.dot(weights, self._tables[idx])
        m = len(self.models_)
        return ModelEstimates(
            self.models_,
            t[2 * m : 3 * m],
            t[3 * m :],
            t[:m],
            t[m : 2 * m],
            tuple(idx.tolist()),
            tuple(dists),
            tuple(weights),
        )

    def score(self, query: str) -> ModelEstimates:
        """Per-model estimates (accuracy, cost, p~, q~) for a query, without any trade-off."""
        self._check_fitted()
        return self.score_embedding(self.embed([query])[0])

    # ------------------------------------------------------------------ routing
    def route_embedding(
        self,
        x: np.ndarray,
        alpha: float | None = None,
        *,
        allowed: Iterable[str] | None = None,
        excluded: Iterable[str] | None = None,
    ) -> RoutingDecision:
        """Route one normalised embedding (see :meth:`route`)."""
        self._check_fitted()
        alpha = self.default_alpha if alpha is None else float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        est = self.score_embedding(x)
        a = float(self.accuracy_weight(alpha))
        scores = a * est.p_norm + (1.0 - a) * (1.0 - est.q_norm)
        if allowed is not None or excluded is not None:
            scores[~self._mask(allowed, excluded)] = -np.inf
        # argmax with ties to the cheaper model: a vanishing cost term breaks exact ties only
        best = int(np.argmax(scores - 1e-12 * est.q_norm))
        return RoutingDecision(self.models_[best], alpha, est, scores, a)

    def route(
        self,
        query: str,
        alpha: float | None = None,
        *,
        allowed: Iterable[str] | None = None,
        excluded: Iterable[str] | None = None,
    ) -> RoutingDecision:
        """Pick the model for ``query``.

        Args:
            query: the text to route.
            alpha: 1 = accuracy first, 0 = cheapest first (default: ``default_alpha``).
            allowed: only these models are candidates.
            excluded: these models are never chosen.
        """
        self._check_fitted()
        x = self.embed([query])[0]
        return self.route_embedding(x, alpha, allowed=allowed, excluded=excluded)

    def route_batch(
        self,
        queries: Sequence[str] | np.ndarray,
        alpha: float | np.ndarray | None = None,
        *,
        allowed: Iterable[str] | None = None,
        excluded: Iterable[str] | None = None,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Route many queries in one vectorised pass; returns model indices into ``models_``.

        ``queries`` may be texts or already-embedded rows. ``alpha`` is a scalar or one per
        query; ``mask`` (queries x models, bool) restricts candidates per query.
        """
        self._check_fitted()
        if isinstance(queries, np.ndarray) and queries.dtype.kind == "f":
            x = _l2_normalise(queries)
        else:
            x = self.embed(list(queries))
        alpha = self.default_alpha if alpha is None else alpha
        alpha = float(alpha) if np.ndim(alpha) == 0 else np.asarray(alpha, dtype=np.float64)
        if np.any((np.asarray(alpha) < 0) | (np.asarray(alpha) > 1)):
            raise ValueError(f"alpha must be in [0, 1], got {np.ravel(alpha)[:3].tolist()}")
        p, q, *_ = self.estimate_embeddings(x)
        scores = performance_efficiency(p, q, self.accuracy_weight(alpha))
        allowed_mask = self._mask(allowed, excluded)[None, :]
        if mask is not None:
            allowed_mask = allowed_mask & mask
        scores = np.where(allowed_mask, scores, -np.inf)
        # argmax with ties to the cheaper model: a vanishing cost term breaks exact ties only
        return np.argmax(scores - 1e-12 * q, axis=1)

    # ------------------------------------------------------------- persistence
    def _state(self) -> dict[str, Any]:
        return {
            "models": list(self.models_),
            "n_clusters": int(self.n_clusters_),
            "cluster_centers": [[float(v) for v in row] for row in self.cluster_centers_],
            "cluster_sizes": self.cluster_sizes_.tolist(),
            "counts": self.counts_.tolist(),
            "score_sums": [[float(v) for v in row] for row in self.score_sums_],
            "score_sq_sums": [[float(v) for v in row] for row in self.score_sq_sums_],
            "cost_sums": [[float(v) for v in row] for row in self.cost_sums_],
        }

    def _params(self) -> dict[str, Any]:
        return {
            "n_clusters": self.n_clusters,
            "top_k": self.top_k,
            "beta": self.beta,
            "cost_normalisation": self.cost_normalisation,
            "shrinkage": self.shrinkage,
            "normalisation": self.normalisation,
            "alpha_scale": self.alpha_scale,
            "random_state": self.random_state,
            "n_init": self.n_init,
        }

    @staticmethod
    def _checksum(embedder_id: str, params: dict[str, Any], state: dict[str, Any]) -> str:
        blob = json.dumps([embedder_id, params, state], sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The router file's content: versioned JSON; ``config`` may be edited by hand, the
        learned ``state`` is protected by ``checksum``."""
        self._check_fitted()
        params, state = self._params(), self._state()
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "embedder": self.embedder_id_,
            "config": {
                "default_alpha": self.default_alpha,
                "model_specs": dict(self.model_specs),
                **({"calibration": self.calibration} if self.calibration is not None else {}),
            },
            "params": params,
            "checksum": self._checksum(self.embedder_id_, params, state),
            "state": state,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the router file atomically (a temporary file renamed over ``path``)."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], embedder: Embedder | None = None) -> Router:
        """Load a router file (plain JSON; nothing is executed).

        Args:
            path: the file written by :meth:`save`.
            embedder: the embedder to use; must have the id the router was fitted with. Default:
                built from that id (works for the built-in embedders).

        Raises:
            RouterFileError: the file is truncated, edited, of another format or version.
            EmbedderMismatchError: ``embedder`` is not the one the router was fitted with.
        """
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise RouterFileError(f"{path}: no such router file") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RouterFileError(f"{path}: not a router file (truncated or not JSON: {e})") from e
        return cls.from_dict(doc, embedder=embedder, source=str(path))

    @classmethod
    def from_dict(
        cls, doc: Any, embedder: Embedder | None = None, source: str = "router"
    ) -> Router:
        """Build a router from :meth:`to_dict` output, validating everything."""
        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise RouterFileError(f"{source}: not an {FILE_FORMAT} file (no 'format' marker)")
        if doc.get("version") != FILE_VERSION:
            raise RouterFileError(
                f"{source}: router file version {doc.get('version')!r} is not supported "
                f"(this library reads version {FILE_VERSION}); refit with `avengers fit`"
            )
        try:
            params, state, emb_id = doc["params"], doc["state"], doc["embedder"]
            if doc.get("checksum") != cls._checksum(emb_id, params, state):
                raise RouterFileError(
                    f"{source}: checksum mismatch: the learned state was edited or corrupted "
                    "(only the 'config' section may be edited); refit with `avengers fit`"
                )
            # files written before these options existed used the paper's method
            router = cls(**{"normalisation": "cluster", "alpha_scale": "identity", **params})
            router._check_estimator_params()
            models = [str(m) for m in state["models"]]
            router.models_ = tuple(models)
            router.n_clusters_ = int(state["n_clusters"])
            router.cluster_centers_ = np.asarray(state["cluster_centers"], dtype=np.float32)
            router.cluster_sizes_ = np.asarray(state["cluster_sizes"], dtype=np.int64)
            router.counts_ = np.asarray(state["counts"], dtype=np.int64)
            router.score_sums_ = np.asarray(state["score_sums"], dtype=np.float64)
            router.cost_sums_ = np.asarray(state["cost_sums"], dtype=np.float64)
            if "score_sq_sums" in state:  # absent from older files: EB then assumes 0/1 scores
                router.score_sq_sums_ = np.asarray(state["score_sq_sums"], dtype=np.float64)
            k, m = router.n_clusters_, len(models)
            names = ["counts_", "score_sums_", "cost_sums_"]
            names += ["score_sq_sums_"] if "score_sq_sums" in state else []
            for name in names:
                if getattr(router, name).shape != (k, m):
                    raise RouterFileError(f"{source}: state {name[:-1]!r} is not {k} x {m}")
            if router.cluster_centers_.ndim != 2 or router.cluster_centers_.shape[0] != k:
                raise RouterFileError(f"{source}: 'cluster_centers' is not {k} rows")
            config = doc.get("config", {})
            router.default_alpha = float(config.get("default_alpha", 0.5))
            if not 0.0 <= router.default_alpha <= 1.0:
                raise RouterFileError(f"{source}: config.default_alpha must be in [0, 1]")
            specs = config.get("model_specs", {})
            if not isinstance(specs, Mapping) or not all(
                isinstance(v, str) for v in specs.values()
            ):
                raise RouterFileError(
                    f"{source}: config.model_specs must map model -> 'provider:model'"
                )
            unknown = sorted(set(specs) - set(models))
            if unknown:
                raise RouterFileError(
                    f"{source}: config.model_specs names unknown model {unknown[0]!r}; "
                    f"known: {', '.join(models)}"
                )
            router.model_specs = dict(specs)
            calibration = config.get("calibration")
            if calibration is not None and not isinstance(calibration, Mapping):
                raise RouterFileError(f"{source}: config.calibration must be a mapping")
            router.calibration = dict(calibration) if calibration is not None else None
        except RouterFileError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise RouterFileError(
                f"{source}: malformed router file ({type(e).__name__}: {e})"
            ) from e
        router.embedder_id_ = str(emb_id)
        if embedder is not None:
            if embedder.id != router.embedder_id_:
                raise EmbedderMismatchError(
                    f"{source} was fitted with embedder {router.embedder_id_!r}, "
                    f"not {embedder.id!r}; pass the same embedder or refit"
                )
            router.embedder = embedder
        else:
            try:
                router.embedder = get_embedder(router.embedder_id_)
            except Exception as e:
                raise EmbedderMismatchError(
                    f"{source} was fitted with embedder {router.embedder_id_!r}, which cannot be "
                    f"built by name; pass it: Router.load(path, embedder=...)"
                ) from e
        router._prepare()
        return router
