"""Evaluate routing on labelled data: single models, oracle, random, the alpha sweep, summary
metrics of ARCHITECTURE.md, a kNN baseline router, and the paper's plots.

Example:
    >>> from shared_core import Router, load_data
    >>> from shared_core.evaluation import evaluate
    >>> train, test = load_data("train.jsonl"), load_data("test.jsonl")  # doctest: +SKIP
    >>> report = evaluate(Router().fit(train), test)  # doctest: +SKIP
    >>> report["summary"]["max_accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from shared_core.data import RoutingData
from shared_core.scoring import minmax_normalise, normalise_costs, performance_efficiency

# Steps of 0.01: the sweep is cheap (one vectorised pass per alpha) and a coarse grid would
# understate the frontier a router can reach (and the summary metrics computed from it).
DEFAULT_ALPHAS = tuple(round(a, 4) for a in np.linspace(0.0, 1.0, 101))


class BatchRouter(Protocol):
    """Anything that routes embedded queries in batch: the :class:`Router`, the kNN baseline."""

    models_: tuple[str, ...]

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def route_batch(
        self, queries: Any, alpha: float | None = None, *, mask: np.ndarray | None = None
    ) -> np.ndarray: ...


def parse_alphas(spec: str | Sequence[float] | None) -> tuple[float, ...]:
    """``"0,0.5,1"`` or ``"0:1:0.05"`` (start:stop:step, inclusive) or a sequence -> alphas."""
    if spec is None:
        return DEFAULT_ALPHAS
    if not isinstance(spec, str):
        values = tuple(float(a) for a in spec)
    elif ":" in spec:
        try:
            start, stop, step = (float(v) for v in spec.split(":"))
        except ValueError as e:
            raise ValueError(f"bad alpha range {spec!r}; expected start:stop:step") from e
        if step <= 0:
            raise ValueError(f"bad alpha range {spec!r}: step must be > 0")
        values = tuple(round(v, 6) for v in np.arange(start, stop + step / 2, step))
    else:
        try:
            values = tuple(float(v) for v in spec.split(","))
        except ValueError as e:
            raise ValueError(f"bad alpha list {spec!r}; expected e.g. 0,0.5,1") from e
    bad = [a for a in values if not 0.0 <= a <= 1.0]
    if bad or not values:
        raise ValueError(f"alphas must be in [0, 1]; got {list(values)}")
    return values


class KNNRouter:
    """Baseline: per query, the ``n_neighbors`` nearest training queries (cosine) give each
    model's accuracy and cost; then the same alpha score as Avengers-Pro.

    Example:
        >>> from shared_core import load_data
        >>> train = load_data("../shared/data/routerbench/train.jsonl")
        >>> knn = KNNRouter(n_neighbors=20).fit(train)
        >>> knn.route_batch(["What is 2 + 2?", "Reverse a list in Python"], 0.5).shape
        (2,)
    """

    def __init__(
        self, n_neighbors: int = 20, embedder: Any = None, cost_normalisation: str = "minmax"
    ) -> None:
        self.n_neighbors = n_neighbors
        self.embedder = embedder
        self.cost_normalisation = cost_normalisation

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from shared_core.router import Router

        helper = Router(embedder=self.embedder)
        out = helper.embed(texts)
        self.embedder = helper.embedder
        return out

    def fit(self, data: RoutingData, embeddings: np.ndarray | None = None) -> KNNRouter:
        x = self.embed(data.queries) if embeddings is None else _unit(embeddings)
        self.train_x_ = x
        self.scores_ = data.scores
        self.costs_ = data.costs
        self.models_ = tuple(data.models)
        return self

    def route_batch(
        self, queries: Any, alpha: float | None = None, *, mask: np.ndarray | None = None
    ) -> np.ndarray:
        x = _unit(queries) if isinstance(queries, np.ndarray) else self.embed(list(queries))
        k = min(self.n_neighbors, self.train_x_.shape[0])
        sims = x @ self.train_x_.T
        nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        p = np.nanmean(self.scores_[nn], axis=1)
        q = np.nanmean(self.costs_[nn], axis=1)
        s = performance_efficiency(
            minmax_normalise(p),
            normalise_costs(q, self.cost_normalisation),
            0.5 if alpha is None else alpha,
        )
        s = np.where(np.isnan(s), -np.inf, s)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        return np.argmax(s, axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(n > 0, n, 1.0)).astype(np.float32)


def _frontier_best(points: list[tuple[float, float]], budgets: np.ndarray) -> np.ndarray:
    """Best accuracy among (cost, accuracy) points with cost <= each budget (0 if none)."""
    costs = np.array([c for c, _ in points])
    accs = np.array([a for _, a in points])
    within = costs[None, :] <= budgets[:, None] * (1 + 1e-9)
    return np.where(within, accs[None, :], 0.0).max(axis=1)


def _or_none(value: float) -> float | None:
    return None if np.isnan(value) else value


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The summary block of ARCHITECTURE.md from models / sweep."""
    models = report["models"]
    best = max(models, key=lambda m: (models[m]["accuracy"], -models[m]["cost"]))
    best_acc, best_cost = models[best]["accuracy"], models[best]["cost"]
    sweep = report["sweep"]
    top = max(sweep, key=lambda s: (s["accuracy"], -s["cost"]))

    def cost_at(fraction: float) -> float | None:
        ok = [s["cost"] for s in sweep if s["accuracy"] >= fraction * best_acc - 1e-12]
        return (min(ok) / best_cost if best_cost > 0 else 0.0) if ok else None

    single_costs = [v["cost"] for v in models.values() if v["cost"] > 0]
    lo, hi = (min(single_costs), max(single_costs)) if single_costs else (0.0, 0.0)
    if lo > 0 and hi > lo:
        budgets = np.geomspace(lo, hi, 20)
        router_pts = [(s["cost"], s["accuracy"]) for s in sweep]
        single_pts = [(v["cost"], v["accuracy"]) for v in models.values()]
        mean_best = float(_frontier_best(router_pts, budgets).mean())
        single_mean_best = float(_frontier_best(single_pts, budgets).mean())
    else:
        mean_best = single_mean_best = float("nan")
    return {
        "best_single": best,
        "max_accuracy": top["accuracy"],
        "max_accuracy_cost": top["cost"],
        "cost_to_match_best_single": cost_at(1.0),
        "cost_at_90pct_best_single": cost_at(0.9),
        "cost_at_98pct_best_single": cost_at(0.98),
        "mean_best_accuracy": None if np.isnan(mean_best) else mean_best,
        "single_models_mean_best_accuracy": None
        if np.isnan(single_mean_best)
        else single_mean_best,
    }


def baselines(data: RoutingData) -> dict[str, Any]:
    """Single models, the oracle (cheapest best model per query) and uniform random routing.

    Unknown (model, query) pairs are left out of a model's mean and of the random average; the
    oracle only picks among models known for the query.
    """
    scores, costs = data.scores, data.costs
    known = ~np.isnan(scores)
    models = {
        m: {
            "accuracy": float(np.nanmean(scores[:, j])) if known[:, j].any() else None,
            "cost": float(np.nansum(costs[:, j])),
            "n_known": int(known[:, j].sum()),
        }
        for j, m in enumerate(data.models)
    }
    best = np.nanmax(scores, axis=1)
    is_best = known & (scores >= best[:, None] - 1e-12)
    oracle_cost = np.where(is_best, np.nan_to_num(costs, nan=np.inf), np.inf).min(axis=1)
    oracle_cost = np.where(np.isfinite(oracle_cost), oracle_cost, 0.0)
    return {
        "n_queries": len(data),
        "models": models,
        "oracle": {"accuracy": float(best.mean()), "cost": float(oracle_cost.sum())},
        "random": {
            "accuracy": float(np.nanmean(scores, axis=1).mean()),
            "cost": float(np.nanmean(np.where(known, costs, np.nan), axis=1).sum()),
        },
    }


def sweep(
    router: BatchRouter,
    data: RoutingData,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    embeddings: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Route every query of ``data`` at each alpha: accuracy, total cost and model shares."""
    x = router.embed(data.queries) if embeddings is None else _unit(embeddings)
    known = ~np.isnan(data.scores)
    order = _columns(router.models_, data.models)
    scores, costs, known = data.scores[:, order], data.costs[:, order], known[:, order]
    rows = np.arange(len(data))
    out = []
    for alpha in alphas:
        idx = router.route_batch(x, float(alpha), mask=known)
        counts = np.bincount(idx, minlength=len(router.models_)) / len(data)
        out.append(
            {
                "alpha": float(alpha),
                "accuracy": float(scores[rows, idx].mean()),
                "cost": float(np.nansum(costs[rows, idx])),
                "share": {
                    m: round(float(c), 6)
                    for m, c in zip(router.models_, counts, strict=True)
                    if c > 0
                },
            }
        )
    return out


def _columns(router_models: Sequence[str], data_models: Sequence[str]) -> np.ndarray:
    index = {m: j for j, m in enumerate(data_models)}
    missing = [m for m in router_models if m not in index]
    if missing:
        from shared_core._errors import UnknownModelError

        raise UnknownModelError(missing[0], data_models, "model (absent from the evaluation data)")
    return np.array([index[m] for m in router_models])


def evaluate(
    router: BatchRouter,
    data: RoutingData,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    embeddings: np.ndarray | None = None,
) -> dict[str, Any]:
    """The full report of ARCHITECTURE.md (``avengers evaluate --json``)."""
    report = baselines(data)
    report["models"] = {
        m: {"accuracy": v["accuracy"], "cost": v["cost"]}
        for m, v in report["models"].items()
        if m in router.models_
    }
    report["sweep"] = sweep(router, data, alphas, embeddings)
    report["summary"] = summarise(report)
    return report


def format_table(report: dict[str, Any], alphas_shown: Sequence[float] | None = None) -> str:
    """A table shaped like the paper's: single models, oracle, random, then the router (at
    ``alphas_shown``; by default every sweep point, or steps of 0.1 for a long sweep)."""
    if alphas_shown is None and len(report["sweep"]) > 21:
        alphas_shown = tuple(round(a, 1) for a in np.linspace(0.0, 1.0, 11))
    best = report["summary"]["best_single"]
    bc = report["models"][best]["cost"] or 1.0
    lines = [f"{'setting':44s} {'accuracy':>8s} {'cost $':>10s} {'vs best':>8s}"]
    for m, v in sorted(report["models"].items(), key=lambda kv: -kv[1]["accuracy"]):
        lines.append(f"{m[:44]:44s} {v['accuracy']:8.4f} {v['cost']:10.4f} {v['cost'] / bc:8.1%}")
    for name in ("oracle", "random"):
        v = report[name]
        lines.append(f"{name:44s} {v['accuracy']:8.4f} {v['cost']:10.4f} {v['cost'] / bc:8.1%}")
    lines.append("-" * 73)
    for s in report["sweep"]:
        if alphas_shown is not None and not any(abs(s["alpha"] - a) < 1e-9 for a in alphas_shown):
            continue
        lines.append(
            f"{'router alpha=' + format(s['alpha'], 'g'):44s} {s['accuracy']:8.4f} "
            f"{s['cost']:10.4f} {s['cost'] / bc:8.1%}"
        )
    su = report["summary"]

    def pct(v: float | None) -> str:
        return "never" if v is None else f"{v:.1%}"

    lines += [
        "-" * 73,
        f"best single model: {best} ({report['models'][best]['accuracy']:.4f})",
        f"router max accuracy: {su['max_accuracy']:.4f} at ${su['max_accuracy_cost']:.4f}",
        f"cost to match best single: {pct(su['cost_to_match_best_single'])}; "
        f"98%: {pct(su['cost_at_98pct_best_single'])}; 90%: {pct(su['cost_at_90pct_best_single'])}",
    ]
    if su["mean_best_accuracy"] is not None:
        lines.append(
            f"mean best accuracy over 20 budgets: router {su['mean_best_accuracy']:.4f}, "
            f"single models {su['single_models_mean_best_accuracy']:.4f}"
        )
    return "\n".join(lines)


def plot_report(
    report: dict[str, Any], out_dir: str | os.PathLike[str], prefix: str = ""
) -> list[str]:
    """The paper's plots: accuracy and cost vs alpha; model share vs alpha; the accuracy-cost
    plane (single models as points, the router's frontier as a line). Returns the paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        from shared_core._errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "plot") from e
    os.makedirs(out_dir, exist_ok=True)
    sw = report["sweep"]
    alphas = [s["alpha"] for s in sw]
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(alphas, [s["accuracy"] for s in sw], "o-", color="tab:blue", label="accuracy")
    ax.set_xlabel("alpha")
    ax.set_ylabel("accuracy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(alphas, [s["cost"] for s in sw], "s--", color="tab:red", label="cost")
    ax2.set_ylabel("total cost (USD)", color="tab:red")
    ax.set_title("Accuracy and cost vs alpha")
    fig.tight_layout()
    paths.append(os.path.join(out_dir, f"{prefix}alpha_accuracy_cost.png"))
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    models = sorted({m for s in sw for m in s["share"]})
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = np.zeros(len(sw))
    colours = plt.get_cmap("tab20")
    for i, m in enumerate(models):
        share = np.array([s["share"].get(m, 0.0) for s in sw])
        ax.bar(alphas, share, bottom=bottom, width=0.04, label=m, color=colours(i % 20))
        bottom += share
    ax.set_xlabel("alpha")
    ax.set_ylabel("share of queries")
    ax.set_title("Model share vs alpha")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    paths.append(os.path.join(out_dir, f"{prefix}alpha_model_share.png"))
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (m, v) in enumerate(report["models"].items()):
        ax.scatter(v["cost"], v["accuracy"], s=25, color=plt.get_cmap("tab20")(i % 20))
        ax.annotate(m.split("/")[-1][:22], (v["cost"], v["accuracy"]), fontsize=6)
    pts = sorted((s["cost"], s["accuracy"]) for s in sw)
    ax.plot([c for c, _ in pts], [a for _, a in pts], "k.-", label="router (alpha sweep)")
    ax.set_xscale("log")
    ax.set_xlabel("total cost (USD, log)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs cost")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(os.path.join(out_dir, f"{prefix}accuracy_vs_cost.png"))
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
