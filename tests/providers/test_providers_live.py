"""Live calls with real keys (``-m integration``); each test skips when its key is absent."""

from __future__ import annotations

import json
import os

import pytest

from shared_core.messages import ChatRequest, Message, StreamEnd, ToolSpec
from shared_core.providers import get_provider

# Real network: pytest-socket is lifted for these tests only.
pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]

LIVE = {
    "openai": ("openai:gpt-4.1-nano", ("OPENAI_API_KEY",)),
    "anthropic": ("anthropic:claude-haiku-4-5", ("ANTHROPIC_API_KEY",)),
    "google": ("google:gemini-2.5-flash-lite", ("GOOGLE_API_KEY", "GEMINI_API_KEY")),
}
WEATHER = ToolSpec("get_weather", "Current weather in a city.",
                   {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]})


@pytest.fixture(params=list(LIVE))
def live(request: pytest.FixtureRequest):
    spec, env = LIVE[request.param]
    if not any(os.environ.get(v) for v in env):
        pytest.skip(f"{' or '.join(env)} not set: no live {request.param} test")
    return get_provider(spec, timeout=60)


def test_live_chat_stream_and_cost(live) -> None:
    req = ChatRequest(messages=(Message.user("Reply with the single word: pong"),),
                      max_tokens=16)
    r = live.chat(req)
    assert "pong" in r.text.lower()
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0 and r.cost_usd
    end = list(live.stream(req))[-1]
    assert isinstance(end, StreamEnd) and end.response.usage.output_tokens > 0


def test_live_tools_and_round_trip(live) -> None:
    req = ChatRequest(messages=(Message.user("What's the weather in Paris?"),),
                      tools=(WEATHER,), tool_choice="required")
    r = live.chat(req)
    assert r.tool_calls and r.tool_calls[0].name == "get_weather"
    follow = ChatRequest(messages=req.messages + (r.message,) + tuple(
        Message.tool(tc.id, '{"sky": "sunny", "celsius": 21}') for tc in r.tool_calls),
        tools=(WEATHER,))
    assert live.chat(follow).text


def test_live_structured_output(live) -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string"}},
              "required": ["capital"], "additionalProperties": False}
    r = live.chat(ChatRequest(messages=(Message.user("Capital of France?"),),
                              response_schema=schema))
    assert json.loads(r.text)["capital"].lower() == "paris"
