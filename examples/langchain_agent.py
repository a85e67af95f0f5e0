"""A tool-calling LangChain agent (``create_agent``, two tools) on AvengersChatModel, with the
run's cost.

Every agent step is routed; the steps of one tool exchange (the tool calls, their results, the
next answer) stay on the model that made the calls, and a new human turn is routed afresh.
``get_avengers_callback()`` totals tokens and dollars per model over the whole run.

Offline (default): a router fitted on the routerbench data beside the checkout, candidates served
by the in-process stub, scripted to call both tools and then answer.

    python examples/langchain_agent.py

With real keys and a default router that records model specs:

    python examples/langchain_agent.py --online "What's the weather and the time in Paris?"
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack

from langchain.agents import create_agent
from langchain_chain import offline_model, online_model
from langchain_core.messages import AIMessage

from langchain_avengers import get_avengers_callback


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"Sunny, 21 C in {city}"


def get_time(city: str) -> str:
    """Local time in a city."""
    return f"It is 14:05 in {city}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?",
                        default="What's the weather and the local time in Paris?")
    parser.add_argument("--online", action="store_true", help="call the real providers")
    parser.add_argument("--alpha", type=float, default=0.7)
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        if args.online:
            llm = online_model(alpha=args.alpha)
        else:
            llm, stub = offline_model(stack, alpha=args.alpha)
            from tests.stub_llm_server import Reply, Tokens, ToolCallSpec

            spec = llm.route(args.question, tools=True).spec
            stub.script(spec, [
                Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}),
                                  ToolCallSpec("get_time", {"city": "Paris"})],
                      usage=Tokens(input=210, output=40)),
                Reply(text="It is sunny (21 C) in Paris, and the local time is 14:05.",
                      usage=Tokens(input=290, output=18)),
            ])
            print(f"offline: the routed model ({spec}) is the local stub")

        agent = create_agent(llm, tools=[get_weather, get_time],
                             system_prompt="Use the tools to answer.")
        with get_avengers_callback() as cb:
            result = agent.invoke({"messages": [("user", args.question)]})
        for m in result["messages"]:
            routed = ""
            if isinstance(m, AIMessage):
                meta = m.response_metadata
                routed = (f"  [{meta['router_model']} via {meta['spec']}, "
                          f"{meta['routing']['reason']}]")
            text = m.content if isinstance(m.content, str) else str(m.content)
            calls = f" calls {[c['name'] for c in m.tool_calls]}" if getattr(
                m, "tool_calls", None) else ""
            print(f"{m.type:>6}: {text[:100]}{calls}{routed}")
        print(f"\n{cb}\n")
        print(cb.summary(baseline="openai:gpt-4.1"))


if __name__ == "__main__":
    main()
