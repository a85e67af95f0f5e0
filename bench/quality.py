"""Routing quality benchmark (issue 7): every data set, train -> test, seeds 0, 1, 2.

Prints one table per data set and writes JSON (default ``bench/results/quality.json``)::

    python bench/quality.py [--data ../shared/data] [--seeds 0 1 2] [--ablations]

Rows: every single model, the oracle (cheapest correct model per query), uniform random routing,
the kNN baseline (20 nearest training queries, same alpha score), the paper's method (k = 60,
nearest cluster, plain means, min-max within the cluster), the authors' code variant (top 3
clusters blended by softmax(-9 * distance), cost divided by the cluster's maximum) and the new
default ``Router()``. ``--ablations`` adds one row per ingredient of the default and a few
alternatives that were tried. A "task label" row is a reference, not a router: per-task training
means, using the data set's task label that a real query does not carry.

Columns, for routers the mean ± standard deviation over seeds (k-means seeds; the kNN baseline
and the reference have none): the maximum accuracy over alpha; the cost, as a fraction of the
best single model's, at which the router first matches that model's accuracy, reaches 98% and
90% of it ("never" = in no seed; "(2/3)" = mean over the seeds that reached it); and the mean,
over 20 log-spaced budgets, of the best accuracy reachable within each budget (the single models
as points give the reference figure). Alphas: 0, 0.05, ..., 1 as in ``avengers evaluate``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from shared_core import Router, load_data
from shared_core.data import RoutingData
from shared_core.evaluation import KNNRouter, _frontier_best, evaluate
from shared_core.scoring import performance_efficiency

ROOT = Path(__file__).resolve().parents[1]
FINE_ALPHAS = tuple(round(a, 4) for a in np.linspace(0.0, 1.0, 201))
KEYS = (
    "max_accuracy",
    "cost_to_match_best_single",
    "cost_at_98pct_best_single",
    "cost_at_90pct_best_single",
    "mean_best_accuracy",
    "mean_best_accuracy_fine",
)
def _estimator(router: Router) -> dict[str, Any]:
    """The estimator parameters of ``router`` (what may differ on the same k-means)."""
    keep = ("top_k", "beta", "cost_normalisation", "shrinkage", "normalisation", "alpha_scale")
    return {k: v for k, v in router._params().items() if k in keep}


PAPER, AUTHORS = _estimator(Router.paper()), _estimator(Router.authors_code())
#: name -> parameters on top of the k = 60 k-means shared by every cluster router of a seed
METHODS: dict[str, dict[str, Any]] = {
    "paper (k=60)": PAPER,
    "authors' code (k=60, top 3, cost/max)": AUTHORS,
    "new default Router()": {},
}
ABLATIONS: dict[str, dict[str, Any]] = {
    "  paper + EB shrinkage": {**PAPER, "shrinkage": "auto"},
    "  paper + global normalisation": {**PAPER, "normalisation": "global"},
    "  paper + top 3 blend": {**PAPER, "top_k": 3},
    "  paper + log-cost alpha scale": {**PAPER, "alpha_scale": "log_cost"},
    "  default without EB (plain means)": {"shrinkage": 0.0},
    "  default without global norm.": {"normalisation": "cluster"},
    "  default without blend (top 1)": {"top_k": 1},
    "  default without log-cost alpha scale": {"alpha_scale": "identity"},
    "  default, fixed shrinkage 5": {"shrinkage": 5.0},
    "  default, top 5": {"top_k": 5},
}
#: ablations that need their own k-means
REFIT_ABLATIONS: dict[str, dict[str, Any]] = {
    "  default, k=20": {"n_clusters": 20},
    "  default, k=40": {"n_clusters": 40},
}


class TaskLabelReference:
    """Per-(task, model) training means looked up by the test query's task label; the same alpha
    score with global normalisation. A reference for what task-level routing could reach: a real
    query carries no task label."""

    def __init__(self, train: RoutingData, test: RoutingData) -> None:
        self.models_ = tuple(train.models)
        tasks = np.array(train.datasets)
        table_a, table_c = {}, {}
        for t in np.unique(tasks):
            rows = tasks == t
            table_a[t] = np.nanmean(train.scores[rows], axis=0)
            table_c[t] = np.nanmean(train.costs[rows], axis=0)
        glob_a, glob_c = np.nanmean(train.scores, axis=0), np.nanmean(train.costs, axis=0)
        self.acc = np.array([table_a.get(t, glob_a) for t in test.datasets])
        self.cost = np.array([table_c.get(t, glob_c) for t in test.datasets])
        all_a = np.vstack(list(table_a.values()))
        all_c = np.vstack(list(table_c.values()))
        self.a_range = (all_a.min(), all_a.max())
        self.c_range = (all_c.min(), all_c.max())

    def embed(self, texts: Any) -> np.ndarray:
        return np.zeros((len(texts), 1), np.float32)

    def route_batch(self, queries: Any, alpha: float | None = None, *,
                    mask: np.ndarray | None = None) -> np.ndarray:
        p = (self.acc - self.a_range[0]) / (self.a_range[1] - self.a_range[0])
        q = (self.cost - self.c_range[0]) / (self.c_range[1] - self.c_range[0])
        s = performance_efficiency(p, q, 0.5 if alpha is None else alpha)
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        return np.argmax(s - 1e-12 * q, axis=1)


def budget_curve(report: dict[str, Any]) -> list[float]:
    """Best accuracy within each of the 20 log-spaced budgets of ``summary.mean_best_accuracy``."""
    costs = [v["cost"] for v in report["models"].values() if v["cost"] > 0]
    budgets = np.geomspace(min(costs), max(costs), 20)
    points = [(s["cost"], s["accuracy"]) for s in report["sweep"]]
    return [float(v) for v in _frontier_best(points, budgets)]


def score(router: Any, test: RoutingData, x_test: np.ndarray) -> dict[str, Any]:
    """Summary on the standard 21 alphas, plus the frontier at the 20 budgets on the standard
    and on a fine (201) alpha grid: the fine grid shows the frontier itself, free of where the
    21 alphas happen to fall."""
    report = evaluate(router, test, embeddings=x_test)
    fine = evaluate(router, test, alphas=FINE_ALPHAS, embeddings=x_test)
    out = dict(report["summary"])
    out["budget_curve"] = budget_curve(report)
    out["budget_curve_fine"] = budget_curve(fine)
    out["mean_best_accuracy_fine"] = float(np.mean(out["budget_curve_fine"]))
    return out


def predictability(train: RoutingData, test: RoutingData, x_train: np.ndarray,
                   x_test: np.ndarray, routers: dict[str, Router]) -> dict[str, float]:
    """How well is each model's correctness on a test query predicted? Brier score (mean squared
    error of the predicted score) of: each model's global mean (no routing information), the
    per-task means (the task label, which queries do not carry), the routers' accuracy
    estimates, 20 nearest neighbours, and a ridge regression on the embedding (a light
    per-model correctness predictor, regularisation by cross-validation)."""
    from sklearn.linear_model import RidgeCV

    y = test.scores

    def brier(pred: np.ndarray) -> float:
        return float(np.nanmean((y - pred) ** 2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        glob = np.nanmean(train.scores, axis=0)
        tasks = np.array(train.datasets)
        by_task = {t: np.nanmean(train.scores[tasks == t], axis=0) for t in np.unique(tasks)}
        out = {"global mean per model": brier(np.broadcast_to(glob, y.shape)),
               "task label (not available to a router)":
                   brier(np.array([by_task.get(t, glob) for t in test.datasets]))}
        for name, router in routers.items():
            out[name] = brier(router.estimate_embeddings(x_test)[2])
        nn = np.argpartition(-(x_test @ x_train.T), 19, axis=1)[:, :20]
        out["kNN (20 neighbours)"] = brier(np.nanmean(train.scores[nn], axis=1))
        filled = np.where(np.isnan(train.scores), glob, train.scores)
        ridge = RidgeCV(alphas=np.logspace(-2, 3, 11), alpha_per_target=True)
        out["ridge on the embedding"] = brier(np.clip(ridge.fit(x_train, filled).predict(x_test),
                                                      0.0, 1.0))
    return out


def variant(base: Router, params: dict[str, Any]) -> Router:
    """``base`` with other estimator parameters: same k-means, statistics re-derived."""
    r = copy.copy(base)
    for k, v in params.items():
        setattr(r, k, v)
    r._prepare()
    return r


def aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in KEYS:
        vals = [s[k] for s in summaries]
        got = [v for v in vals if v is not None]
        out[k] = {
            "mean": float(np.mean(got)) if got else None,
            "std": float(np.std(got)) if got else None,
            "reached": len(got),
            "of": len(vals),
        }
    return out


def cell(stat: dict[str, Any], pct: bool) -> str:
    if stat["mean"] is None:
        return "never"
    text = f"{stat['mean']:.1%}" if pct else f"{stat['mean']:.4f}"
    if stat["of"] > 1:
        text += f"±{stat['std'] * (100 if pct else 1):.1f}" if pct else f"±{stat['std']:.4f}"
    if stat["reached"] < stat["of"]:
        text += f" ({stat['reached']}/{stat['of']})"
    return text


def run_dataset(folder: Path, seeds: list[int], ablations: bool) -> dict[str, Any]:
    train = load_data(folder / "train.jsonl")
    test = load_data(folder / "test.jsonl", models=train.models)
    helper = Router()
    t0 = time.perf_counter()
    x_train, x_test = helper.embed(train.queries), helper.embed(test.queries)
    embed_s = time.perf_counter() - t0
    out: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "models": list(train.models),
                           "embed_seconds": round(embed_s, 2), "methods": {}}
    knn = KNNRouter(n_neighbors=20).fit(train, x_train)
    base = evaluate(knn, test, embeddings=x_test)
    out["singles"] = base["models"]
    out["oracle"], out["random"] = base["oracle"], base["random"]
    out["best_single"] = base["summary"]["best_single"]
    out["single_models_mean_best_accuracy"] = base["summary"]["single_models_mean_best_accuracy"]
    out["methods"]["kNN (20 neighbours)"] = {"per_seed": [score(knn, test, x_test)]}
    ref = score(TaskLabelReference(train, test), test, x_test)
    out["methods"]["reference: task label (not a router)"] = {"per_seed": [ref]}

    per: dict[str, list[dict[str, Any]]] = {}
    fit_s: list[float] = []
    for seed in seeds:
        t0 = time.perf_counter()
        default = Router(random_state=seed, embedder=helper.embedder).fit(train, x_train)
        fit_s.append(time.perf_counter() - t0)
        if seed == seeds[0]:
            out["brier"] = predictability(train, test, x_train, x_test, {
                "paper (k=60)": variant(default, PAPER), "new default Router()": default})
        todo = dict(METHODS, **(ABLATIONS if ablations else {}))
        for name, params in todo.items():
            r = variant(default, params) if params else default
            per.setdefault(name, []).append(score(r, test, x_test))
        if ablations:
            for name, params in REFIT_ABLATIONS.items():
                r = Router(random_state=seed, embedder=helper.embedder, **params)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r.fit(train, x_train)
                per.setdefault(name, []).append(score(r, test, x_test))
    for name, summaries in per.items():
        out["methods"][name] = {"per_seed": summaries}
    for m in out["methods"].values():
        m.update(aggregate(m["per_seed"]))
    out["fit_seconds_default"] = [round(s, 2) for s in fit_s]
    out["vs_paper"] = {k: compare(per["new default Router()"], per["paper (k=60)"], k)
                       for k in ("budget_curve", "budget_curve_fine")}
    return out


def compare(new: list[dict[str, Any]], paper: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """New minus paper at each budget (means over seeds) and the seed spread there."""
    a, b = np.array([s[key] for s in new]), np.array([s[key] for s in paper])
    diff = a.mean(axis=0) - b.mean(axis=0)
    spread = np.maximum(a.std(axis=0), b.std(axis=0))
    worst = int(np.argmin(diff + spread))
    return {"diff": diff.round(4).tolist(), "spread": spread.round(4).tolist(),
            "worst_budget": worst, "worst_diff": float(diff[worst]),
            "worst_spread": float(spread[worst]),
            "never_worse_beyond_spread": bool(np.all(diff + spread >= -1e-12))}


def table(name: str, res: dict[str, Any], seeds: list[int]) -> str:
    best = res["best_single"]
    bc = res["singles"][best]["cost"] or 1.0
    ba = res["singles"][best]["accuracy"]
    lines = [
        f"== {name}: train {res['n_train']} -> test {res['n_test']} queries, "
        f"{len(res['models'])} models; routers: mean ± sd over seeds {seeds} ==",
        f"{'method':42s} {'max acc':>15s} {'match best':>14s} {'98% of best':>14s} "
        f"{'90% of best':>14s} {'mean best acc':>15s} {'same, fine':>15s}",
        f"{'':42s} {'':>15s} {'(cost/best)':>14s} {'(cost/best)':>14s} {'(cost/best)':>14s} "
        f"{'(20 budgets)':>15s} {'(201 alphas)':>15s}",
    ]
    points = sorted(res["singles"].items(), key=lambda kv: -kv[1]["accuracy"])
    points += [(m, res[m]) for m in ("oracle", "random")]
    for m, v in points:
        cost = "cost " + format(v["cost"] / bc, ".1%")
        lines.append(f"{m[:42]:42s} {v['accuracy']:15.4f} {cost:>14s}")
    lines.append(f"{'single models as points':42s} {'':15s} {'':14s} {'':14s} {'':14s} "
                 f"{res['single_models_mean_best_accuracy']:15.4f}")
    lines.append("-" * 134)
    for m, v in res["methods"].items():
        lines.append(
            f"{m[:42]:42s} {cell(v['max_accuracy'], False):>15s} "
            f"{cell(v['cost_to_match_best_single'], True):>14s} "
            f"{cell(v['cost_at_98pct_best_single'], True):>14s} "
            f"{cell(v['cost_at_90pct_best_single'], True):>14s} "
            f"{cell(v['mean_best_accuracy'], False):>15s} "
            f"{cell(v['mean_best_accuracy_fine'], False):>15s}"
        )
    lines.append(f"best single: {best} (accuracy {ba:.4f}, ${bc:.4f} on the test set)")
    base = res["brier"]["global mean per model"]
    lines.append(f"predicting each model's score per test query (Brier, seed {seeds[0]}; lower is "
                 "better; vs per-model global means): " + "; ".join(
                     f"{k} {v:.4f} ({1 - v / base:+.1%})" for k, v in res["brier"].items()))
    for key, label in (("budget_curve", "21 alphas"), ("budget_curve_fine", "201 alphas")):
        c = res["vs_paper"][key]
        lines.append(
            f"new default vs paper at the 20 budgets ({label}): "
            + ("never worse beyond the seed spread" if c["never_worse_beyond_spread"]
               else "WORSE beyond the seed spread")
            + f"; worst: budget {c['worst_budget'] + 1}/20, {c['worst_diff']:+.4f} "
            f"(spread {c['worst_spread']:.4f}); mean {np.mean(c['diff']):+.4f}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                    help="a folder of data sets, each with train.jsonl and test.jsonl")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ablations", action="store_true", help="add the ablation rows")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality.json"))
    args = ap.parse_args()

    folders = sorted(p for p in Path(args.data).iterdir()
                     if (p / "train.jsonl").exists() and (p / "test.jsonl").exists())
    if not folders:
        sys.exit(f"no data sets (folders with train.jsonl and test.jsonl) under {args.data}")
    results: dict[str, Any] = {}
    for folder in folders:
        results[folder.name] = run_dataset(folder, args.seeds, args.ablations)
        print(table(folder.name, results[folder.name], args.seeds), "\n", flush=True)
    doc = {
        "command": "python bench/quality.py" + (" --ablations" if args.ablations else "")
        + ("" if args.seeds == [0, 1, 2] else " --seeds " + " ".join(map(str, args.seeds))),
        "seeds": args.seeds,
        "default_router": Router()._params(),
        "embedder": Router().embedder_id,
        "python": platform.python_version(),
        "datasets": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
