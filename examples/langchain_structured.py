"""Structured output from AvengersChatModel: a pydantic model, by tool calling (default; routed
among tool-capable models) and by JSON schema (routed among models with native structured
output).

Offline (default): a router fitted on the routerbench data beside the checkout, candidates served
by the in-process stub, which answers each schema with conforming JSON.

    python examples/langchain_structured.py

With real keys and a default router that records model specs:

    python examples/langchain_structured.py --online
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack

from langchain_chain import model_for
from pydantic import BaseModel, Field

from langchain_avengers import get_avengers_callback


class Country(BaseModel):
    """Facts about a country."""

    name: str = Field(description="the country's name")
    capital: str = Field(description="its capital city")
    population_millions: float = Field(description="population in millions")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online", action="store_true", help="call the real providers")
    parser.add_argument("--alpha", type=float, default=0.7)
    args = parser.parse_args(argv)

    question = "Give me the key facts about 'Japan'."
    with ExitStack() as stack:
        llm = model_for(args, stack, alpha=args.alpha)
        with get_avengers_callback() as cb:
            for method in ("function_calling", "json_schema"):
                structured = llm.with_structured_output(Country, method=method, include_raw=True)
                out = structured.invoke(question)
                meta = out["raw"].response_metadata
                print(f"{method:>16}: {out['parsed']!r}")
                print(f"{'':>16}  routed to {meta['router_model']} ({meta['spec']}), "
                      f"cost ${meta['cost_usd']:.6f}")
        print(f"\n{cb}")


if __name__ == "__main__":
    main()
