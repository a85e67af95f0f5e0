"""A LangChain chain (prompt | AvengersChatModel | parser): every call goes to the model the router
picks for it, and ``get_avengers_callback()`` totals the run's tokens and dollars.

Offline (default when no provider key is set): fits a small router on the routerbench data beside
the checkout and serves the routed models from the in-process stub of the provider APIs.

    python examples/langchain_chain.py
    python examples/langchain_chain.py --dry-run        # only the routing decisions, no calls

With real keys (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY) and a default router whose file
records model specs (``avengers fit DATA --models examples/routerbench_models.toml``):

    python examples/langchain_chain.py --online
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_avengers import AvengersChatModel, get_avengers_callback

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What is the capital of Australia?",
    "Prove that there are infinitely many prime numbers.",
    "Write a Python function that reverses a linked list.",
]


def online_model(**fields: Any) -> AvengersChatModel:
    """AvengersChatModel over the default router, routing only to providers whose key is set."""
    from shared_core.providers import has_api_key

    llm = AvengersChatModel(**fields)
    llm.allowed_models = [
        name for name, target in llm.engine.targets.items()
        if isinstance(target, str) and has_api_key(target)
    ]
    print(f"routing among: {', '.join(llm.allowed_models)}")
    return llm


def offline_model(stack: ExitStack, **fields: Any) -> tuple[AvengersChatModel, Any]:
    """AvengersChatModel over the default router (if it exists and records model specs), else a
    router fitted on routerbench; its candidates are served by the local stub (which calls
    offered tools and answers JSON schemas like a cooperative model)."""
    from _offline import offline_setup

    from tests.langchain._responder import ResponderStub

    _, stub, offline_fields = offline_setup(stack, ResponderStub)
    return AvengersChatModel(**offline_fields, **fields), stub


def model_for(args: argparse.Namespace, stack: ExitStack, **fields: Any) -> AvengersChatModel:
    if args.online:
        return online_model(**fields)
    print("offline: candidates are served by the local stub (use --online with real keys)")
    return offline_model(stack, **fields)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online", action="store_true", help="call the real providers")
    parser.add_argument("--dry-run", action="store_true", help="print decisions only")
    parser.add_argument("--alpha", type=float, default=0.7)
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        llm = model_for(args, stack, alpha=args.alpha)
        prompt = ChatPromptTemplate.from_messages(
            [("system", "Answer briefly."), ("human", "{question}")])
        chain = prompt | llm | StrOutputParser()
        for q in QUESTIONS:
            decision = llm.route(q)
            print(f"\n{q}\n  -> {decision.model} ({decision.spec}), alpha={decision.alpha}")
        if args.dry_run:
            return
        with get_avengers_callback() as cb:
            answers = chain.batch([{"question": q} for q in QUESTIONS])
            for chunk in chain.stream({"question": "Name three primary colours."}):
                print(chunk, end="", flush=True)
            print()
        for q, a in zip(QUESTIONS, answers, strict=True):
            print(f"\nQ: {q}\nA: {a[:200]}")
        print(f"\n{cb}\n")
        print(cb.summary(baseline="openai:gpt-4.1"))


if __name__ == "__main__":
    main()
