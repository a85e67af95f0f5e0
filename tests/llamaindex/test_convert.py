"""The pure converters between LlamaIndex and core types."""

from __future__ import annotations

import base64

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ImageBlock,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.tools import FunctionTool

from llamaindex_avengers._convert import (
    KEY,
    model_from_response,
    to_core_messages,
    to_llama_message,
    tool_calls_of,
    tool_choice_of,
    tool_selections,
    tool_to_spec,
    usage_from_response,
)
from shared_core.messages import ImagePart, TextPart, ToolCall
from shared_core.usage import Usage


def test_roles_text_and_tool_exchange() -> None:
    msgs = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="developer", content="Really brief."),
        ChatMessage(role="user", content="Weather in Paris?"),
        ChatMessage(role="assistant", blocks=[
            ToolCallBlock(tool_call_id="c1", tool_name="weather", tool_kwargs={"city": "Paris"}),
        ], additional_kwargs={KEY: {"model": "claude-v1"}}),
        ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c1"}),
    ]
    core = to_core_messages(msgs)
    assert [m.role for m in core] == ["system", "system", "user", "assistant", "tool"]
    assert core[3].tool_calls == (ToolCall("c1", "weather", {"city": "Paris"}),)
    assert core[3].model == "claude-v1"
    assert (core[4].tool_call_id, core[4].name, core[4].text) == ("c1", "weather", "sunny")


def test_legacy_tool_calls_and_string_arguments() -> None:
    openai_style = {"id": "c9", "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
    msg = ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [
        openai_style, ToolSelection(tool_id="c10", tool_name="mul", tool_kwargs={"a": 3})]})
    assert tool_calls_of(msg) == (ToolCall("c9", "add", {"a": 1, "b": 2}),
                                  ToolCall("c10", "mul", {"a": 3}))
    partial = ChatMessage(role="assistant", blocks=[
        ToolCallBlock(tool_call_id="x", tool_name="f", tool_kwargs='{"q": "ab')])
    assert "q" in tool_calls_of(partial)[0].arguments  # partial JSON is read, not a crash


def test_images_become_parts() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    msg = ChatMessage(role="user", blocks=[
        TextBlock(text="What is this?"),
        ImageBlock(url="https://example.com/cat.png"),
        ImageBlock(image=png.encode(), image_mimetype="image/png"),
    ])
    (core,) = to_core_messages([msg])
    assert isinstance(core.content, tuple)
    assert core.content[0] == TextPart("What is this?")
    assert core.content[1] == ImagePart(url="https://example.com/cat.png")
    assert isinstance(core.content[2], ImagePart) and core.content[2].data


def test_unknown_role_names_valid_ones() -> None:
    bad = ChatMessage.model_construct(role="wizard", blocks=[TextBlock(text="x")],
                                      additional_kwargs={})
    with pytest.raises(ValueError, match="unsupported message role 'wizard'; known: .*assistant"):
        to_core_messages([bad])


def test_response_message_round_trip() -> None:
    calls = (ToolCall("c1", "add", {"a": 1}), ToolCall("c2", "mul", {"b": 2}))
    msg = to_llama_message("thinking...", calls, {"model": "gpt-4-1106-preview"})
    assert msg.content == "thinking..."
    assert [s.tool_name for s in tool_selections(msg)] == ["add", "mul"]
    assert to_core_messages([msg])[0].model == "gpt-4-1106-preview"
    only_calls = to_llama_message("", calls)
    assert only_calls.content is None and KEY not in only_calls.additional_kwargs


def test_tool_spec_and_choice() -> None:
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    spec = tool_to_spec(FunctionTool.from_defaults(add))
    assert spec.name == "add" and "Add two numbers" in spec.description
    assert spec.parameters["required"] == ["a"]
    assert tool_choice_of(None, tool_required=True) == "required"
    assert tool_choice_of(None, tool_required=False) is None
    assert tool_choice_of("add", tool_required=False) == "add"
    assert tool_choice_of({"type": "function", "function": {"name": "add"}}, False) == "add"


@pytest.mark.parametrize(("raw", "extra", "expected"), [
    ({"model": "gpt-4.1-mini", "usage": {"prompt_tokens": 12, "completion_tokens": 3,
                                         "prompt_tokens_details": {"cached_tokens": 2}}},
     {}, Usage(12, 3, cached_input_tokens=2)),
    ({"usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 5}},
     {}, Usage(15, 4, cached_input_tokens=5)),
    ({"usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2,
                        "thoughtsTokenCount": 1}}, {}, Usage(7, 3, reasoning_tokens=1)),
    (None, {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}, Usage(9, 1)),
    ({"content": "no usage here"}, {}, None),
])
def test_usage_from_any_response(raw, extra, expected) -> None:
    resp = ChatResponse(message=ChatMessage(role="assistant", content="x"), raw=raw,
                        additional_kwargs=extra)
    assert usage_from_response(resp) == expected


def test_model_from_response() -> None:
    resp = ChatResponse(message=ChatMessage(content="x"), raw={"model": "gpt-4.1-mini"})
    assert model_from_response(resp) == "gpt-4.1-mini"
    assert model_from_response(ChatResponse(message=ChatMessage(content="x"))) is None
