"""Live routed calls with real keys (``-m integration``); skipped when no provider key is set.

The router is the session's routerbench router; only models whose provider key is set are
candidates (``allowed_models``).
"""

from __future__ import annotations

import os

import pytest
from langchain_core.messages import HumanMessage, ToolMessage

from langchain_avengers import AvengersChatModel, get_avengers_callback
from shared_core import Router
from shared_core.providers import parse_spec

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]

KEYS = {"openai": ("OPENAI_API_KEY",), "anthropic": ("ANTHROPIC_API_KEY",),
        "google": ("GOOGLE_API_KEY", "GEMINI_API_KEY")}


@pytest.fixture
def live_llm(lc_router: Router) -> AvengersChatModel:
    allowed = [name for name, spec in lc_router.model_specs.items()
               if any(os.environ.get(k) for k in KEYS[parse_spec(spec)[0]])]
    if not allowed:
        pytest.skip("no provider key set (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY or "
                    "GEMINI_API_KEY): no live LangChain test")
    return AvengersChatModel(router=lc_router, alpha=0.7, allowed_models=allowed,
                             max_tokens=64, timeout=60)


def test_live_invoke_stream_and_cost(live_llm: AvengersChatModel) -> None:
    with get_avengers_callback() as cb:
        msg = live_llm.invoke("Reply with the single word: pong")
        streamed = None
        for chunk in live_llm.stream("Reply with the single word: pong"):
            streamed = chunk if streamed is None else streamed + chunk
    assert "pong" in msg.text.lower()
    assert msg.usage_metadata["input_tokens"] > 0 and msg.response_metadata["cost_usd"] > 0
    assert streamed is not None and streamed.usage_metadata["output_tokens"] > 0
    assert cb.successful_requests == 2
    assert cb.total_cost == pytest.approx(live_llm.ledger.total_cost, rel=1e-12)


def test_live_tool_exchange_is_pinned(live_llm: AvengersChatModel) -> None:
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        return f"Sunny, 21 C in {city}"

    tools = live_llm.bind_tools([get_weather], tool_choice="any")
    question = HumanMessage("What's the weather in Paris?")
    call = tools.invoke([question])
    assert call.tool_calls and call.tool_calls[0]["name"] == "get_weather"
    history = [question, call, *(ToolMessage(get_weather(**tc["args"]), tool_call_id=tc["id"])
                                 for tc in call.tool_calls)]
    answer = live_llm.bind_tools([get_weather]).invoke(history)
    assert answer.response_metadata["router_model"] == call.response_metadata["router_model"]
    assert answer.response_metadata["routing"]["reason"] == "pinned"
