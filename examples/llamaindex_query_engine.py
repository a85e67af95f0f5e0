"""A LlamaIndex query engine whose LLM is the Avengers-Pro router (AvengersLLM).

Offline (default when no provider key is set): fits a small router on the routerbench data beside
the checkout, serves its candidate models from the in-process stub of the provider APIs, and
prints the routing decision and the cost of every call.

    python examples/llamaindex_query_engine.py
    python examples/llamaindex_query_engine.py --alpha 0.2 "How do I fit a router?"

With real keys (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY) and a default router whose file
records model specs (``avengers fit DATA --models examples/routerbench_models.toml``), the same
script calls the real models: ``python examples/llamaindex_query_engine.py --online``.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from pydantic import PrivateAttr

from llamaindex_avengers import AvengersLLM, track_costs
from shared_core.providers import has_api_key

ROOT = Path(__file__).resolve().parents[1]


def online_llm(**kwargs: Any) -> AvengersLLM:
    """AvengersLLM over the default router, routing only to providers whose key is set."""
    llm = AvengersLLM(**kwargs)
    llm.allowed_models = [
        name for name, target in llm.engine.targets.items()
        if isinstance(target, str) and has_api_key(target)
    ]
    print(f"routing among: {', '.join(llm.allowed_models)}")
    return llm
DOCS = [
    "Avengers-Pro embeds every training query, clusters the embeddings with k-means and keeps, "
    "per cluster and model, the mean accuracy and the mean cost.",
    "At query time the router finds the nearest cluster and picks the model with the best "
    "score alpha * accuracy + (1 - alpha) * (1 - cost), both normalised within the cluster.",
    "alpha = 1 always prefers the most accurate model; alpha = 0 the cheapest one.",
    "A router file is fitted with `avengers fit DATA -o router.json --models MAP`.",
]


class LocalEmbedding(BaseEmbedding):
    """The router's own offline static embedder as a LlamaIndex embedding model."""

    _embedder: Any = PrivateAttr(default=None)

    def _embed(self, texts: list[str]) -> list[list[float]]:
        if self._embedder is None:
            from shared_core.embeddings import default_embedder

            self._embedder = default_embedder()
        return self._embedder.embed(texts).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def offline_llm(stack: ExitStack, **kwargs: Any) -> AvengersLLM:
    """AvengersLLM over a router fitted on routerbench, its models served by the local stub."""
    from _offline import offline_setup

    _, _, fields = offline_setup(stack, use_default=False)
    return AvengersLLM(**fields, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", nargs="?", default="What does alpha = 0 do?")
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("--online", action="store_true",
                        help="call real models (needs keys and a default router)")
    parser.add_argument("--offline", action="store_true", help="use the local stub even with keys")
    args = parser.parse_args()
    has_key = has_api_key()
    online = args.online or (has_key and not args.offline)

    with ExitStack() as stack:
        llm = online_llm(alpha=args.alpha) if online else offline_llm(stack, alpha=args.alpha)
        index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS],
                                                embed_model=LocalEmbedding())
        engine = index.as_query_engine(llm=llm, similarity_top_k=2)
        print(f"question: {args.question}")
        decision = llm.route(args.question).metadata()
        print(f"decision (dry run): {decision['model']} (cluster {decision['cluster']}, "
              f"alpha {decision['alpha']})")
        with track_costs() as costs:
            response = engine.query(args.question)
        print(f"answer:   {response}")
        for record in llm.ledger.records:
            print(f"  served by {record.model} ({record.spec}), cluster {record.cluster}, "
                  f"{record.usage.total_tokens} tokens, ${record.cost_usd}")
        print(costs.summary(baseline="openai:gpt-4.1"))


if __name__ == "__main__":
    main()
