"""A LlamaIndex FunctionAgent with two tools on AvengersLLM, with the run's cost.

Every agent step is routed; the steps of one tool exchange (tool calls, their results, the next
answer) stay on the model that made the calls. ``track_costs()`` totals tokens and dollars per
model over the whole run.

Offline (default when no provider key is set): fits a small router on the routerbench data beside
the checkout and serves the routed model from the in-process stub of the provider APIs, scripted
to call the two tools and then answer.

    python examples/llamaindex_agent.py

With real keys (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY) and a default router whose file
records model specs (``avengers fit DATA --models examples/routerbench_models.toml``):

    python examples/llamaindex_agent.py --online "What is (12 + 30) * 7?"
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.tools import FunctionTool
from llamaindex_query_engine import online_llm

from llamaindex_avengers import AvengersLLM, track_costs
from shared_core.providers import has_api_key

ROOT = Path(__file__).resolve().parents[1]


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


TOOLS = [FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)]


def offline_llm(stack: ExitStack, question: str, **kwargs: Any) -> AvengersLLM:
    """AvengersLLM over a router fitted on routerbench; the routed model is the local stub,
    scripted to call add(12, 30), then multiply(42, 7), then answer."""
    from _offline import offline_setup

    from tests.stub_llm_server import Reply, Tokens, ToolCallSpec

    _, stub, fields = offline_setup(stack, use_default=False)
    llm = AvengersLLM(**fields, **kwargs)
    provider = llm.route(question, tools=TOOLS).spec.split(":")[0]
    stub.script(provider, [
        Reply(tool_calls=[ToolCallSpec("add", {"a": 12, "b": 30})],
              usage=Tokens(input=180, output=22)),
        Reply(tool_calls=[ToolCallSpec("multiply", {"a": 42, "b": 7})],
              usage=Tokens(input=230, output=22)),
        Reply(text="(12 + 30) * 7 = 294", usage=Tokens(input=280, output=12)),
    ])
    return llm


async def run(question: str, llm: AvengersLLM) -> None:
    agent = FunctionAgent(tools=TOOLS, llm=llm,
                          system_prompt="You are a calculator. Always use the tools.")
    with track_costs() as costs:
        handler = agent.run(user_msg=question)
        async for event in handler.stream_events():
            if isinstance(event, ToolCallResult):
                print(f"  tool {event.tool_name}({event.tool_kwargs}) -> {event.tool_output}")
        result = await handler
    print(f"answer: {result}")
    for record in llm.ledger.records:
        print(f"  step on {record.model} ({record.spec}) [{record.reason}]: "
              f"{record.usage.input_tokens} in / {record.usage.output_tokens} out, "
              f"${record.cost_usd}")
    print(costs.summary(baseline="openai:gpt-4.1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", nargs="?", default="What is (12 + 30) * 7?")
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("--online", action="store_true",
                        help="call real models (needs keys and a default router)")
    parser.add_argument("--offline", action="store_true", help="use the local stub even with keys")
    args = parser.parse_args()
    has_key = has_api_key()
    online = args.online or (has_key and not args.offline)
    with ExitStack() as stack:
        if online:
            llm = online_llm(alpha=args.alpha)
        else:
            llm = offline_llm(stack, args.question, alpha=args.alpha)
        print(f"question: {args.question}")
        asyncio.run(run(args.question, llm))


if __name__ == "__main__":
    main()
