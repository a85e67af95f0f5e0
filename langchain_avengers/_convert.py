"""Pure converters between LangChain types and the provider-neutral core types.

Nothing here calls a model or keeps state: messages, tools, tool choice, usage and stream events
go in, their counterparts come out.

Example:
    >>> from langchain_core.messages import HumanMessage
    >>> to_core_messages([HumanMessage("hi")])[0].text
    'hi'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.utils.function_calling import convert_to_openai_tool

from shared_core.messages import (
    ImagePart,
    Message,
    Part,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)
from shared_core.usage import Usage

ROUTER_MODEL_KEY = "router_model"
"""``AIMessage.response_metadata`` key holding the router's name of the model that wrote it."""

_ROLES = {"human": "user", "user": "user", "ai": "assistant", "assistant": "assistant",
          "system": "system", "developer": "system", "tool": "tool"}


# --------------------------------------------------------------------------- messages in
def _data_url(url: str) -> ImagePart:
    head, _, data = url.partition(",")
    media_type = head.removeprefix("data:").split(";")[0] or "image/png"
    return ImagePart(data=data, media_type=media_type)


def _image(block: Mapping[str, Any]) -> ImagePart:
    """An image block in any of LangChain's formats (OpenAI, v0/v1 standard, Anthropic)."""
    if block.get("type") == "image_url":
        ref = block["image_url"]
        url = ref["url"] if isinstance(ref, Mapping) else str(ref)
        return _data_url(url) if url.startswith("data:") else ImagePart(url=url)
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic: {"source": {"type": "base64"|"url", ...}}
        if source.get("type") == "url":
            return ImagePart(url=source["url"])
        return ImagePart(data=source["data"], media_type=source.get("media_type", "image/png"))
    mime = block.get("mime_type") or "image/png"
    if block.get("url"):
        url = str(block["url"])
        return _data_url(url) if url.startswith("data:") else ImagePart(url=url)
    data = block.get("base64") or block.get("data")
    if data:
        return ImagePart(data=str(data), media_type=mime)
    raise ValueError(f"image block without url or base64 data: {dict(block)!r}")


def content_parts(content: str | Sequence[Any]) -> str | tuple[Part, ...]:
    """LangChain message content -> a string, or a tuple of text and image parts.

    Raises:
        ValueError: a block of a kind the core cannot carry (audio, files, ...).
    """
    if isinstance(content, str):
        return content
    parts: list[Part] = []
    for block in content:
        if isinstance(block, str):
            parts.append(TextPart(block))
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(TextPart(str(block.get("text", ""))))
        elif isinstance(block, Mapping) and block.get("type") in ("image", "image_url"):
            parts.append(_image(block))
        elif isinstance(block, Mapping) and block.get("type") in (
            "tool_use", "tool_call", "reasoning", "thinking", "redacted_thinking",
        ):
            continue  # carried by tool_calls / not sent back
        else:
            kind = block.get("type") if isinstance(block, Mapping) else type(block).__name__
            raise ValueError(
                f"unsupported content block type {kind!r}; supported: text, image, image_url"
            )
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return tuple(parts)


def _text(content: str | Sequence[Any]) -> str:
    if isinstance(content, str):
        return content
    out = []
    for block in content:
        if isinstance(block, str):
            out.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            out.append(str(block.get("text", "")))
    return "".join(out)


def router_model_of(message: BaseMessage) -> str | None:
    """The router model that wrote an AI message (from its ``response_metadata``), if known."""
    value = (message.response_metadata or {}).get(ROUTER_MODEL_KEY)
    return value if isinstance(value, str) else None


def to_core_message(message: BaseMessage) -> Message:
    """One LangChain message -> a core :class:`Message`.

    An ``AIMessage`` keeps its tool calls and the router model that wrote it (``Message.model``),
    which pins the rest of a tool exchange to that model.
    """
    if isinstance(message, AIMessage):
        calls = tuple(
            ToolCall(id=tc.get("id") or f"call_{i}", name=tc["name"], arguments=dict(tc["args"]))
            for i, tc in enumerate(message.tool_calls)
        )
        return Message("assistant", _text(message.content), tool_calls=calls,
                       name=message.name, model=router_model_of(message))
    if isinstance(message, ToolMessage):
        return Message("tool", _text(message.content), tool_call_id=message.tool_call_id,
                       name=message.name)
    if isinstance(message, SystemMessage):
        return Message("system", _text(message.content))
    if isinstance(message, HumanMessage):
        return Message("user", content_parts(message.content), name=message.name)
    if isinstance(message, ChatMessage):
        role = _ROLES.get(message.role)
        if role is None:
            raise ValueError(
                f"unsupported chat message role {message.role!r}; known: {', '.join(_ROLES)}"
            )
        if role == "user":
            return Message("user", content_parts(message.content), name=message.name)
        return Message(role, _text(message.content))  # type: ignore[arg-type]
    raise ValueError(
        f"unsupported message type {type(message).__name__}; expected a system, human, AI, "
        "tool or chat message"
    )


def to_core_messages(messages: Sequence[BaseMessage]) -> tuple[Message, ...]:
    """A LangChain conversation -> core messages."""
    return tuple(to_core_message(m) for m in messages)


# --------------------------------------------------------------------------- tools
def to_openai_tool(tool: Any) -> dict[str, Any]:
    """Any LangChain tool (BaseTool, function, pydantic model, TypedDict, dict) -> the OpenAI
    tool dict, the form bound tools are kept in."""
    return convert_to_openai_tool(tool)


def to_tool_spec(tool: Mapping[str, Any]) -> ToolSpec:
    """An OpenAI tool dict -> a core :class:`ToolSpec`."""
    fn = tool["function"] if "function" in tool else tool
    params = dict(fn.get("parameters") or {"type": "object", "properties": {}})
    return ToolSpec(name=fn["name"], description=fn.get("description", ""), parameters=params)


def to_tool_choice(choice: Any) -> ToolChoice | None:
    """LangChain's ``tool_choice`` (``"auto"``, ``"any"``, ``"required"``, ``"none"``, ``True``,
    a tool name, or an OpenAI-style dict) -> the core's."""
    if choice is None or choice is False:
        return None
    if choice is True or choice in ("any", "required"):
        return "required"
    if isinstance(choice, str):
        return choice
    if isinstance(choice, Mapping):
        if "function" in choice:
            return str(choice["function"]["name"])
        if "name" in choice:
            return str(choice["name"])
        if choice.get("type") in ("any", "required"):
            return "required"
        if choice.get("type") in ("auto", "none"):
            return str(choice["type"])
    raise ValueError(
        f"unsupported tool_choice {choice!r}; expected 'auto', 'any', 'required', 'none', a "
        "tool name or {'type': 'function', 'function': {'name': ...}}"
    )


# --------------------------------------------------------------------------- usage
def to_usage_metadata(usage: Usage) -> UsageMetadata:
    """A core :class:`Usage` -> LangChain ``usage_metadata`` (with cache and reasoning details)."""
    return UsageMetadata(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        input_token_details=InputTokenDetails(
            cache_read=usage.cached_input_tokens, cache_creation=usage.cache_write_tokens
        ),
        output_token_details=OutputTokenDetails(reasoning=usage.reasoning_tokens),
    )


def from_usage_metadata(meta: Mapping[str, Any] | None) -> Usage:
    """LangChain ``usage_metadata`` -> a core :class:`Usage` (zeros when absent)."""
    if not meta:
        return Usage()
    inp = meta.get("input_token_details") or {}
    out = meta.get("output_token_details") or {}
    return Usage(
        input_tokens=int(meta.get("input_tokens") or 0),
        output_tokens=int(meta.get("output_tokens") or 0),
        cached_input_tokens=int(inp.get("cache_read") or 0),
        cache_write_tokens=int(inp.get("cache_creation") or 0),
        reasoning_tokens=int(out.get("reasoning") or 0),
    )


# --------------------------------------------------------------------------- messages out
def to_ai_message(
    text: str,
    tool_calls: Sequence[ToolCall],
    usage: Usage,
    response_metadata: dict[str, Any],
) -> AIMessage:
    """A core response -> an ``AIMessage`` with usage and metadata."""
    return AIMessage(
        content=text,
        tool_calls=[{"name": tc.name, "args": dict(tc.arguments), "id": tc.id,
                     "type": "tool_call"} for tc in tool_calls],
        usage_metadata=to_usage_metadata(usage),
        response_metadata=response_metadata,
    )


def delta_to_chunk(event: TextDelta | ToolCallDelta) -> AIMessageChunk:
    """A streamed text or tool-call delta -> an ``AIMessageChunk`` (no usage, no metadata)."""
    if isinstance(event, TextDelta):
        return AIMessageChunk(content=event.text)
    return AIMessageChunk(
        content="",
        tool_call_chunks=[tool_call_chunk(name=event.name, args=event.arguments or None,
                                          id=event.id, index=event.index)],
    )


def final_chunk(usage: Usage, response_metadata: dict[str, Any]) -> AIMessageChunk:
    """The last chunk of a stream: the whole call's usage and metadata, no content, so that
    adding every chunk gives the same totals as an unstreamed call."""
    return AIMessageChunk(
        content="",
        usage_metadata=to_usage_metadata(usage),
        response_metadata=response_metadata,
        chunk_position="last",
    )
