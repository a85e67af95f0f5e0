"""Speed benchmark of the routing core (issue 2's speed targets).

Prints a table and writes JSON (default ``bench/results/speed.json``)::

    python bench/speed.py [--data ../shared/data/routerbench] [--out bench/results/speed.json]

Measures: decision latency given the embedding (median, p99), embedding latency of the default
embedder, end-to-end ``route`` on raw text, batch throughput given embeddings, fit time (after
embedding) against sample count (1k, 10k, 100k by resampling real queries with a little noise),
router file size and peak memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from shared_core import Router, load_data

ROOT = Path(__file__).resolve().parents[1]


def timings(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e3)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "routerbench"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed.json"))
    ap.add_argument("--repeats", type=int, default=5000)
    args = ap.parse_args()

    train = load_data(Path(args.data) / "train.jsonl")
    test = load_data(Path(args.data) / "test.jsonl", models=train.models)
    router = Router(n_clusters=60, random_state=0)
    x_train = router.embed(train.queries)
    router.fit(train, x_train)
    x_test = router.embed(test.queries)
    short = "What is the capital of France?"
    queries = list(test.queries)
    rng = np.random.default_rng(0)

    results: dict[str, object] = {"machine": platform.platform(), "router": repr(router)}
    for _ in range(200):  # warm up
        router.route_embedding(x_test[0], 0.7)
        router.route(short, 0.7)

    rows = rng.integers(0, len(x_test), args.repeats)
    it = iter(rows)
    dec = timings(lambda: router.route_embedding(x_test[next(it)], 0.7), args.repeats)
    results["decision_given_embedding_us"] = {"median": pct(dec, 50), "p99": pct(dec, 99)}

    emb = router._get_embedder()
    emb_short = timings(lambda: emb.embed([short]), args.repeats)
    it = iter(rows)
    emb_real = timings(lambda: emb.embed([queries[next(it)]]), args.repeats)
    results["embedding_us"] = {
        "short_median": pct(emb_short, 50),
        "short_p99": pct(emb_short, 99),
        "real_query_median": pct(emb_real, 50),
        "real_query_p99": pct(emb_real, 99),
    }
    e2e_short = timings(lambda: router.route(short, 0.7), args.repeats)
    it = iter(rows)
    e2e_real = timings(lambda: router.route(queries[next(it)], 0.7), args.repeats)
    results["route_raw_text_us"] = {
        "short_median": pct(e2e_short, 50),
        "short_p99": pct(e2e_short, 99),
        "real_query_median": pct(e2e_real, 50),
        "real_query_p99": pct(e2e_real, 99),
    }

    big = np.repeat(x_test, 200, axis=0)  # 189k rows
    router.route_batch(big[:1000], 0.7)
    t = time.perf_counter()
    router.route_batch(big, 0.7)
    results["batch_decisions_per_s"] = len(big) / (time.perf_counter() - t)

    fits = {}
    for n in (1_000, 10_000, 100_000):
        idx = rng.integers(0, len(train), n)
        xs = x_train[idx] + rng.normal(0, 0.01, (n, x_train.shape[1])).astype(np.float32)
        data = train.subset(idx)
        t = time.perf_counter()
        Router(n_clusters=60, random_state=0).fit(data, xs)
        fits[str(n)] = time.perf_counter() - t
    results["fit_s_after_embedding"] = fits

    with tempfile.TemporaryDirectory() as d:
        path = router.save(Path(d) / "router.json")
        results["router_file_bytes"] = path.stat().st_size
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    targets = [
        (
            "decision given embedding, median",
            f"{results['decision_given_embedding_us']['median']:.1f} us",
            "<= 20 us",
        ),
        (
            "decision given embedding, p99",
            f"{results['decision_given_embedding_us']['p99']:.1f} us",
            "",
        ),
        ("embed short query, median", f"{results['embedding_us']['short_median']:.1f} us", ""),
        ("embed real query, median", f"{results['embedding_us']['real_query_median']:.1f} us", ""),
        (
            "route() short raw query, median",
            f"{results['route_raw_text_us']['short_median']:.1f} us",
            "<= 500 us",
        ),
        ("route() short raw query, p99", f"{results['route_raw_text_us']['short_p99']:.1f} us", ""),
        (
            "route() real query, median",
            f"{results['route_raw_text_us']['real_query_median']:.1f} us",
            "",
        ),
        ("batch decisions / s", f"{results['batch_decisions_per_s']:,.0f}", ">= 100,000"),
        *[
            (
                f"fit {int(n):,} samples (after embedding)",
                f"{s:.2f} s",
                "<= 5 s" if n == "10000" else "",
            )
            for n, s in fits.items()
        ],
        ("router file size (k=60)", f"{results['router_file_bytes'] / 1024:.0f} KiB", ""),
        ("peak RSS", f"{results['peak_rss_mb']:.0f} MB", ""),
    ]
    print(f"{'measure':42s} {'value':>14s}  target")
    for name, value, target in targets:
        print(f"{name:42s} {value:>14s}  {target}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
