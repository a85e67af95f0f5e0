"""The pure converters (LangChain <-> core), the public surface, and image inputs offline."""

from __future__ import annotations

import subprocess
import sys

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import BaseModel

import langchain_avengers
from langchain_avengers._convert import (
    delta_to_chunk,
    final_chunk,
    from_usage_metadata,
    to_core_messages,
    to_openai_tool,
    to_tool_choice,
    to_tool_spec,
    to_usage_metadata,
)
from shared_core.messages import ImagePart, Message, TextDelta, TextPart, ToolCall, ToolCallDelta
from shared_core.usage import Usage
from tests.stub_llm_server import StubLLMServer

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
       "AAAABJRU5ErkJggg==")


def test_public_api_is_pinned() -> None:
    assert langchain_avengers.__all__ == [
        "AvengersChatModel",
        "AvengersCostCallbackHandler",
        "__version__",
        "get_avengers_callback",
    ]


@pytest.mark.parametrize("module", ["langchain_avengers", "langchain_avengers._convert",
                                    "langchain_avengers.callbacks",
                                    "langchain_avengers.chat_models"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_import_loads_no_provider_sdk() -> None:
    code = ("import sys, langchain_avengers; "
            "print(sorted(m for m in ('openai', 'anthropic', 'google.genai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_messages_round_trip_to_core() -> None:
    msgs = to_core_messages([
        SystemMessage("Be brief."),
        HumanMessage("Weather?", name="ann"),
        AIMessage("", tool_calls=[{"name": "w", "args": {"city": "Paris"}, "id": "c1"}],
                  response_metadata={"router_model": "claude-v1"}),
        ToolMessage([{"type": "text", "text": "Sunny"}], tool_call_id="c1", name="w"),
        ChatMessage(role="developer", content="Use metric units."),
    ])
    assert msgs == (
        Message("system", "Be brief."),
        Message("user", "Weather?", name="ann"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "w", {"city": "Paris"}),),
                model="claude-v1"),
        Message("tool", "Sunny", tool_call_id="c1", name="w"),
        Message("system", "Use metric units."),
    )


@pytest.mark.parametrize("block", [
    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    {"type": "image", "base64": PNG, "mime_type": "image/png"},
    {"type": "image", "source_type": "base64", "data": PNG, "mime_type": "image/png"},
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
])
def test_image_blocks(block: dict) -> None:
    (msg,) = to_core_messages([HumanMessage([{"type": "text", "text": "What is this?"}, block])])
    assert msg.content == (TextPart("What is this?"), ImagePart(data=PNG, media_type="image/png"))


def test_image_url_and_unsupported_blocks() -> None:
    (msg,) = to_core_messages([HumanMessage([{"type": "image", "url": "https://x/y.png"}])])
    assert msg.content == (ImagePart(url="https://x/y.png"),)
    with pytest.raises(ValueError, match="'audio'"):
        to_core_messages([HumanMessage([{"type": "audio", "base64": "AAA"}])])


class Add(BaseModel):
    """Add two integers."""

    a: int
    b: int


def test_tools_and_tool_choice() -> None:
    spec = to_tool_spec(to_openai_tool(Add))
    assert spec.name == "Add" and spec.description == "Add two integers."
    assert set(spec.parameters["properties"]) == {"a", "b"}
    assert [to_tool_choice(c) for c in ("any", True, "required", "auto", "none", "Add")] == [
        "required", "required", "required", "auto", "none", "Add"]
    assert to_tool_choice({"type": "function", "function": {"name": "Add"}}) == "Add"
    with pytest.raises(ValueError, match="tool_choice"):
        to_tool_choice(3)


def test_usage_round_trip_and_chunks() -> None:
    usage = Usage(100, 20, cached_input_tokens=40, cache_write_tokens=10, reasoning_tokens=5)
    meta = to_usage_metadata(usage)
    assert meta["total_tokens"] == 120 and meta["input_token_details"]["cache_read"] == 40
    assert from_usage_metadata(meta) == usage
    text = delta_to_chunk(TextDelta("Hi"))
    call = delta_to_chunk(ToolCallDelta(0, id="c1", name="Add", arguments='{"a": 1'))
    last = final_chunk(usage, {"router_model": "m"})
    total = text + call + last
    assert total.content == "Hi" and total.usage_metadata == meta
    assert total.tool_call_chunks[0]["name"] == "Add" and last.chunk_position == "last"


def test_image_input_routes_to_a_vision_model(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    msg = HumanMessage([{"type": "text", "text": "Describe this picture."}, image])
    out = llm.invoke([msg])
    assert out.response_metadata["router_model"]
    assert PNG in str(stub.requests[-1].json)
