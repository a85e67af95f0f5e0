"""Pure converters between LlamaIndex's chat types and the provider-neutral core types.

Nothing here calls a model or the router. :class:`~llamaindex_avengers.llms.AvengersLLM` uses
these functions in both directions, and the cost handler uses :func:`usage_from_response` to read
the token usage of ordinary (non-routed) LlamaIndex LLMs.

Example:
    >>> from llama_index.core.llms import ChatMessage
    >>> from llamaindex_avengers._convert import to_core_messages
    >>> [m.role for m in to_core_messages([ChatMessage(role="system", content="Be brief."),
    ...                                     ChatMessage(role="user", content="Hi")])]
    ['system', 'user']
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from shared_core.messages import ImagePart, Message, Part, TextPart, ToolCall, ToolSpec
from shared_core.usage import Usage

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

KEY = "avengers"
"""The one key under which AvengersLLM puts its routing facts: in the response's
``additional_kwargs``, in the assistant message's ``additional_kwargs`` (this is how a tool
exchange stays pinned to its model) and in ``raw``."""

_ROLES: dict[str, str] = {
    MessageRole.SYSTEM.value: "system",
    MessageRole.DEVELOPER.value: "system",
    MessageRole.USER.value: "user",
    MessageRole.ASSISTANT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.TOOL.value: "tool",
    MessageRole.FUNCTION.value: "tool",
}


# --------------------------------------------------------------------------- messages in
def _parse_args(args: Any) -> dict[str, Any]:
    if isinstance(args, Mapping):
        return dict(args)
    if isinstance(args, str) and args.strip():
        try:
            parsed = json.loads(args)
        except json.JSONDecodeError:
            from llama_index.core.llms.utils import parse_partial_json

            try:
                parsed = parse_partial_json(args)
            except (ValueError, TypeError):
                return {}
        return dict(parsed) if isinstance(parsed, Mapping) else {}
    return {}


def _legacy_tool_call(item: Any) -> ToolCall | None:
    """An entry of ``additional_kwargs["tool_calls"]``: a :class:`ToolSelection`, an
    OpenAI-style dict, or an OpenAI SDK object."""
    if isinstance(item, ToolSelection):
        return ToolCall(item.tool_id, item.tool_name, dict(item.tool_kwargs))
    if isinstance(item, Mapping):
        fn = item.get("function") or {}
        name = fn.get("name") if isinstance(fn, Mapping) else getattr(fn, "name", None)
        if not name:
            return None
        args = fn.get("arguments") if isinstance(fn, Mapping) else getattr(fn, "arguments", None)
        return ToolCall(str(item.get("id") or ""), str(name), _parse_args(args))
    fn = getattr(item, "function", None)
    if fn is not None and getattr(fn, "name", None):
        return ToolCall(str(getattr(item, "id", "") or ""), fn.name, _parse_args(fn.arguments))
    return None


def tool_calls_of(message: ChatMessage) -> tuple[ToolCall, ...]:
    """The tool calls of an assistant message: its ``ToolCallBlock`` blocks, else the legacy
    ``additional_kwargs["tool_calls"]`` list."""
    calls = [
        ToolCall(b.tool_call_id or "", b.tool_name, _parse_args(b.tool_kwargs))
        for b in message.blocks
        if isinstance(b, ToolCallBlock)
    ]
    if not calls:
        for item in message.additional_kwargs.get("tool_calls") or ():
            call = _legacy_tool_call(item)
            if call is not None:
                calls.append(call)
    return tuple(calls)


def _parts(message: ChatMessage) -> str | tuple[Part, ...]:
    parts: list[Part] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append(TextPart(block.text))
        elif isinstance(block, ImageBlock):
            if block.url is not None and block.image is None and block.path is None:
                parts.append(ImagePart(url=str(block.url)))
            else:
                data = block.resolve_image(as_base64=True).read().decode("ascii")
                parts.append(ImagePart(data=data, media_type=block.image_mimetype or "image/png"))
        elif isinstance(block, ToolCallBlock | ThinkingBlock | CachePoint):
            continue  # tool calls are read separately; thinking and cache hints are not sent
        else:
            warnings.warn(
                f"AvengersLLM drops a {type(block).__name__} content block: only text, images "
                "and tool calls are sent to routed models",
                stacklevel=3,
            )
    if all(isinstance(p, TextPart) for p in parts):
        return "\n".join(p.text for p in parts if isinstance(p, TextPart))
    return tuple(parts)


def routed_model_of(message: ChatMessage) -> str | None:
    """The router model name recorded on an assistant message AvengersLLM wrote, if any."""
    meta = message.additional_kwargs.get(KEY)
    if isinstance(meta, Mapping) and isinstance(meta.get("model"), str):
        return str(meta["model"])
    return None


def to_core_messages(messages: Sequence[ChatMessage]) -> list[Message]:
    """LlamaIndex chat messages -> core messages.

    Roles map onto system/user/assistant/tool (``developer`` is a system prompt, ``function``
    a tool result). Tool calls come from ``ToolCallBlock`` blocks (or the legacy
    ``additional_kwargs["tool_calls"]``); a tool result's id from ``additional_kwargs
    ["tool_call_id"]`` and its tool name from the call it answers. The router model that wrote an
    assistant message (``additional_kwargs["avengers"]["model"]``) becomes ``Message.model``.

    Raises:
        ValueError: a message role that no chat model understands.
    """
    out: list[Message] = []
    names_by_id: dict[str, str] = {}
    for m in messages:
        role_value = m.role.value if isinstance(m.role, MessageRole) else str(m.role)
        role = _ROLES.get(role_value)
        if role is None:
            raise ValueError(
                f"unsupported message role {role_value!r}; known: {', '.join(sorted(_ROLES))}"
            )
        content = _parts(m)
        if role == "assistant":
            calls = tool_calls_of(m)
            names_by_id.update((c.id, c.name) for c in calls if c.id)
            out.append(Message("assistant", content, tool_calls=calls, model=routed_model_of(m)))
        elif role == "tool":
            call_id = m.additional_kwargs.get("tool_call_id")
            call_id = str(call_id) if call_id else None
            name = m.additional_kwargs.get("name") or names_by_id.get(call_id or "")
            out.append(Message("tool", content, tool_call_id=call_id, name=name))
        else:
            out.append(Message(role, content))  # type: ignore[arg-type]
    return out


def with_route_text(messages: Sequence[ChatMessage], text: str) -> list[ChatMessage]:
    """A copy of ``messages`` whose last user message says what to route on (``text``, e.g. the
    question inside a filled-in query-engine template)."""
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        if out[i].role == MessageRole.USER:
            m = out[i].model_copy()
            m.additional_kwargs = {**m.additional_kwargs, KEY: {"route_text": text}}
            out[i] = m
            break
    return out


def route_text_of(messages: Sequence[ChatMessage]) -> str | None:
    """The routing text set by :func:`with_route_text` on the last user message, if any."""
    for m in reversed(messages):
        if m.role == MessageRole.USER:
            meta = m.additional_kwargs.get(KEY)
            text = meta.get("route_text") if isinstance(meta, Mapping) else None
            return text if isinstance(text, str) and text.strip() else None
    return None


def without_key(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """``messages`` without our :data:`KEY` in ``additional_kwargs`` (some LlamaIndex LLMs send
    every additional kwarg to their API)."""
    out = []
    for m in messages:
        if KEY in m.additional_kwargs:
            m = m.model_copy()
            m.additional_kwargs = {k: v for k, v in m.additional_kwargs.items() if k != KEY}
        out.append(m)
    return out


# --------------------------------------------------------------------------- tools
def tool_to_spec(tool: BaseTool | ToolSpec) -> ToolSpec:
    """A LlamaIndex tool -> a core :class:`ToolSpec` (name, description, JSON schema)."""
    if isinstance(tool, ToolSpec):
        return tool
    meta = tool.metadata
    return ToolSpec(
        name=meta.get_name(),
        description=meta.description or "",
        parameters=meta.get_parameters_dict(),
    )


def tool_choice_of(tool_choice: Any, tool_required: bool) -> str | None:
    """LlamaIndex's ``tool_choice`` (``"auto"``/``"none"``/``"required"``, a tool name, or an
    OpenAI-style dict) and ``tool_required`` -> the core tool choice."""
    if isinstance(tool_choice, Mapping):
        fn = tool_choice.get("function")
        if isinstance(fn, Mapping) and fn.get("name"):
            return str(fn["name"])
        tool_choice = tool_choice.get("type")
    if isinstance(tool_choice, str) and tool_choice:
        return "required" if tool_choice == "any" else tool_choice
    return "required" if tool_required else None


# --------------------------------------------------------------------------- messages out
def to_llama_message(
    text: str, tool_calls: Sequence[ToolCall] = (), meta: Mapping[str, Any] | None = None
) -> ChatMessage:
    """An assistant message: a text block (when there is text), one ``ToolCallBlock`` per tool
    call, and the routing facts under :data:`KEY` in ``additional_kwargs``."""
    blocks: list[Any] = [TextBlock(text=text)] if text or not tool_calls else []
    blocks += [
        ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=dict(c.arguments))
        for c in tool_calls
    ]
    kwargs = {KEY: dict(meta)} if meta is not None else {}
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=kwargs)


def tool_selections(message: ChatMessage) -> list[ToolSelection]:
    """The tool calls of a message as LlamaIndex :class:`ToolSelection` objects."""
    return [
        ToolSelection(tool_id=c.id, tool_name=c.name, tool_kwargs=c.arguments)
        for c in tool_calls_of(message)
    ]


# --------------------------------------------------------------------------- usage
def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _as_mapping(obj: Any) -> Mapping[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj
    dump = getattr(obj, "model_dump", None) or getattr(obj, "to_dict", None)
    if callable(dump):
        try:
            data = dump()
        except Exception:  # noqa: BLE001 - an SDK object we cannot read is simply unknown
            return None
        return data if isinstance(data, Mapping) else None
    return None


def usage_from_mapping(usage: Mapping[str, Any]) -> Usage | None:
    """Token usage in any of the three providers' shapes (OpenAI ``prompt_tokens``, Anthropic
    ``input_tokens``, Gemini ``prompt_token_count``/``promptTokenCount``) -> :class:`Usage`,
    through the providers' own normalisers; ``None`` if the shape is not recognised."""
    from shared_core.providers._anthropic import anthropic_usage
    from shared_core.providers._google import google_usage
    from shared_core.providers._openai import openai_usage

    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return openai_usage(usage)
    if "input_tokens" in usage or "output_tokens" in usage:
        return anthropic_usage(usage)
    snake = {_snake(k): v for k, v in usage.items()}
    if "prompt_token_count" in snake or "candidates_token_count" in snake:
        return google_usage(snake)
    return None


def usage_from_response(response: Any) -> Usage | None:
    """The token usage of a LlamaIndex ``ChatResponse``/``CompletionResponse`` from any LLM, read
    from ``raw`` (the provider payload's ``usage``/``usage_metadata``) or from the token counts
    LlamaIndex integrations put in ``additional_kwargs``; ``None`` when it reports none."""
    raw = _as_mapping(getattr(response, "raw", None))
    if raw is not None:
        for key in ("usage", "usage_metadata", "usageMetadata"):
            found = _as_mapping(raw.get(key))
            if found:
                usage = usage_from_mapping(found)
                if usage is not None:
                    return usage
    extra = getattr(response, "additional_kwargs", None) or {}
    if isinstance(extra, Mapping):
        counts = {k: v for k, v in extra.items() if isinstance(v, int)}
        if counts:
            return usage_from_mapping(counts)
    return None


def model_from_response(response: Any) -> str | None:
    """The provider model name reported in a response's ``raw`` payload, if any."""
    raw = _as_mapping(getattr(response, "raw", None))
    if raw is not None:
        for key in ("model", "model_version", "modelVersion"):
            if isinstance(raw.get(key), str) and raw[key]:
                return str(raw[key])
    return None
