"""The ``avengers`` command: fit, route, evaluate, demo (see ARCHITECTURE.md for the contracts).

Example:
    $ avengers fit ../shared/data/routerbench/train.jsonl -o router.json --models models.toml
    $ avengers route router.json "What is 2 + 2?" --alpha 0.7
    $ avengers evaluate router.json ../shared/data/routerbench/test.jsonl --json report.json
    $ avengers demo --data ../shared/data/routerbench
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared_core._errors import AvengersError, ConfigurationError
from shared_core.data import load_data
from shared_core.defaults import default_router_path
from shared_core.embeddings import CachedEmbedder, get_embedder
from shared_core.evaluation import evaluate, format_table, parse_alphas, plot_report
from shared_core.router import Router

DEMO_QUERIES = (
    "What is the capital of Australia? A) Sydney B) Canberra C) Melbourne D) Perth",
    "Write a Python function that returns the n-th Fibonacci number using memoization.",
    "The trophy doesn't fit into the brown suitcase because the _ is too large. "
    "Option 1: trophy. Option 2: suitcase.",
)


def read_models_map(path: str | Path) -> dict[str, str]:
    """A TOML or JSON file mapping router model name -> ``"provider:model"``.

    TOML may hold the mapping at top level or under a ``[models]`` table; quote names that
    contain ``/``: ``"mistralai/mistral-7b-chat" = "google:gemini-2.5-flash-lite"``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        doc: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except FileNotFoundError as e:
        raise ConfigurationError(f"{path}: no such models map") from e
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigurationError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {e}"
        ) from e
    if isinstance(doc, dict) and isinstance(doc.get("models"), dict):
        doc = doc["models"]
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ConfigurationError(f"{path}: expected a mapping of model name -> 'provider:model'")
    from shared_core.providers import parse_spec

    for spec in doc.values():
        parse_spec(spec)
    return dict(doc)


def _cached_embeddings(router: Router, queries: Sequence[str], no_cache: bool) -> Any:
    """Embed a corpus through the on-disk cache (``$AVENGERS_CACHE_DIR``), unless told not to."""
    embedder = router._get_embedder()
    return (embedder if no_cache else CachedEmbedder(embedder)).embed(list(queries))


def _fit(args: argparse.Namespace) -> int:
    data = load_data(args.data)
    make: dict[str, Callable[..., Router]] = {
        "default": Router,
        "paper": Router.paper,
        "authors-code": Router.authors_code,
    }
    options = {
        k: v
        for k, v in (
            ("top_k", args.top_k),
            ("shrinkage", args.shrinkage),
            ("cost_normalisation", args.cost_normalisation),
        )
        if v is not None
    }
    router = make[args.method](
        n_clusters=args.clusters,
        embedder=get_embedder(args.embedder),
        random_state=args.seed,
        **options,
    )
    specs = read_models_map(args.models) if args.models else {}
    unknown = sorted(set(specs) - set(data.models))
    if unknown:
        raise ConfigurationError(
            f"--models names {unknown[0]!r}, which is not in the data; "
            f"known: {', '.join(data.models)}"
        )
    t0 = time.perf_counter()
    router.fit(data, embeddings=_cached_embeddings(router, data.queries, args.no_cache))
    router.model_specs = specs
    if args.alpha is not None:
        router.default_alpha = args.alpha
    out = Path(args.output) if args.output else default_router_path()
    router.save(out)
    print(
        f"fitted {router.n_clusters_} clusters over {len(data)} queries and "
        f"{len(router.models_)} models in {time.perf_counter() - t0:.1f}s -> {out}"
    )
    if specs:
        print(f"provider specs recorded for {len(specs)} model(s)")
    return 0


def _route(args: argparse.Namespace) -> int:
    router = Router.load(args.router)
    decision = router.route(args.text, args.alpha, allowed=args.allowed, excluded=args.exclude)
    if args.json:
        out = decision.to_dict()
        out["spec"] = router.model_specs.get(decision.model)
        print(json.dumps(out, indent=2))
    else:
        print(decision.explain())
        if decision.model in router.model_specs:
            print(f"   served by {router.model_specs[decision.model]}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    router = Router.load(args.router)
    data = load_data(args.data)
    alphas = parse_alphas(args.alphas)
    report = evaluate(router, data, alphas, _cached_embeddings(router, data.queries, args.no_cache))
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.plot:
        plot = Path(args.plot)
        paths = plot_report(report, plot.parent or ".", prefix=plot.stem + "_")
        Path(paths[-1]).replace(plot)
        print(f"wrote {plot} (accuracy vs cost), {paths[0]}, {paths[1]}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from shared_core.calibration import calibrate

    router = Router.load(args.router)
    data = load_data(args.data)
    result = calibrate(
        router,
        data,
        target_cost=args.target_cost,
        target_accuracy=args.target_accuracy,
        cv=args.cv,
        n_bootstrap=args.bootstrap,
        level=args.level,
        random_state=args.seed,
    )
    print(result.explain())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.save:
        result.apply(router).save(args.router)
        print(f"saved default alpha {result.alpha:g} in {args.router}")
    return 0 if result.met else 1


def _demo(args: argparse.Namespace) -> int:
    data_dir = Path(args.data)
    t0 = time.perf_counter()
    train = load_data(data_dir / "train.jsonl")
    test = load_data(data_dir / "test.jsonl", models=train.models)
    router = Router(n_clusters=args.clusters, random_state=args.seed)
    print(
        f"fitting on {len(train)} training queries ({len(train.models)} models, "
        f"k={args.clusters}, offline embedder {router.embedder_id}) ..."
    )
    router.fit(train)
    print(f"evaluating on {len(test)} test queries ...\n")
    report = evaluate(router, test)
    print(format_table(report, alphas_shown=(0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    router.save(out / "router.json")
    paths = plot_report(report, out)
    print(f"\nwrote {out / 'report.json'}, {out / 'router.json'} and plots: {', '.join(paths)}\n")
    for q in DEMO_QUERIES:
        print(f"query: {q[:90]}")
        print(router.route(q, alpha=0.7).explain(), "\n")
    print(f"demo finished in {time.perf_counter() - t0:.1f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="avengers", description="Performance-efficiency LLM routing")
    sub = p.add_subparsers(dest="command", required=True)

    f = sub.add_parser("fit", help="fit a router on routing data")
    f.add_argument("data", nargs="+", help="JSONL/CSV files or folders of *.jsonl")
    f.add_argument("-o", "--output", help=f"router file (default: {default_router_path()})")
    f.add_argument("--clusters", type=int, default=60, help="number of clusters (default 60)")
    f.add_argument("--embedder", default="wordllama", help="embedder name (default: wordllama)")
    f.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    f.add_argument("--models", help="TOML/JSON map: router model name -> 'provider:model'")
    f.add_argument("--alpha", type=float, help="default alpha stored in the router file")
    f.add_argument(
        "--method",
        choices=("default", "paper", "authors-code"),
        default="default",
        help="estimator: the library default (see bench/QUALITY.md), the paper's exact method, "
        "or the authors' code variant (default: default)",
    )
    f.add_argument("--top-k", type=int, help="override: clusters blended per query")
    f.add_argument(
        "--shrinkage",
        type=lambda v: v if v == "auto" else float(v),
        help="override: 'auto' (empirical Bayes) or pseudo-samples towards global means",
    )
    f.add_argument("--cost-normalisation", choices=("minmax", "max"), help="override")
    f.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")
    f.set_defaults(func=_fit)

    r = sub.add_parser("route", help="route one query and explain the decision")
    r.add_argument("router")
    r.add_argument("text")
    r.add_argument("--alpha", type=float, help="trade-off in [0, 1] (default: the router's)")
    r.add_argument("--allowed", nargs="+", help="only these models")
    r.add_argument("--exclude", nargs="+", help="never these models")
    r.add_argument("--json", action="store_true", help="print the decision as JSON")
    r.set_defaults(func=_route)

    e = sub.add_parser("evaluate", help="alpha sweep and baselines on labelled data")
    e.add_argument("router")
    e.add_argument("data", nargs="+")
    e.add_argument("--alphas", help="'0,0.5,1' or '0:1:0.05' (default 0:1:0.01)")
    e.add_argument("--json", help="write the report as JSON here")
    e.add_argument("--plot", help="write the accuracy-vs-cost plot here (PNG); two more beside it")
    e.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")
    e.set_defaults(func=_evaluate)

    c = sub.add_parser(
        "calibrate",
        help="choose alpha for a cost or accuracy target on held-out data",
        description="Pick the alpha that meets a cost or accuracy target on labelled queries the "
        "router was not fitted on (or, with --cv, by cross-validation on DATA), and report the "
        "expected accuracy and cost with a bootstrap band. Exit status 1 if the target is not met.",
    )
    c.add_argument("router")
    c.add_argument("data", nargs="+", help="held-out labelled data (or training data with --cv)")
    target = c.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--target-cost",
        help="fraction of the best single model's cost (0.3, 30%%) or USD per "
        "1k queries ('$0.5/1k')",
    )
    target.add_argument(
        "--target-accuracy", help="fraction of the best single model's accuracy (0.98, 98%%)"
    )
    c.add_argument(
        "--cv",
        type=int,
        help="K-fold cross-validation on DATA (refits the router's "
        "configuration on K-1 folds); default: DATA is held out",
    )
    c.add_argument(
        "--save",
        action="store_true",
        help="store the chosen alpha as the router's default (rewrites ROUTER)",
    )
    c.add_argument("--json", help="write the result (with the accuracy/cost curve) here")
    c.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    c.add_argument("--level", type=float, default=0.9, help="band coverage (default 0.9)")
    c.add_argument("--seed", type=int, default=0, help="seed of folds and bootstrap (default 0)")
    c.set_defaults(func=_calibrate)

    d = sub.add_parser("demo", help="fit on train, evaluate on test, plot, route examples")
    d.add_argument("--data", required=True, help="folder with train.jsonl and test.jsonl")
    d.add_argument("--out", default="avengers-demo", help="output folder (default avengers-demo)")
    d.add_argument("--clusters", type=int, default=60)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AvengersError as e:
        print(f"avengers: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # bad alpha and the like
        print(f"avengers: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
