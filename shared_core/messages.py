"""Provider-neutral chat types: messages, tools, requests, responses and stream events.

These are the only types that cross the line between the framework adapters
(``langchain_avengers``, ``llamaindex_avengers``) and the providers. They are plain frozen
dataclasses so that they are cheap, hashable where it matters, and easy to build in tests.

Example:
    >>> from shared_core.messages import Message, ChatRequest
    >>> req = ChatRequest(messages=(Message.system("Be brief."), Message.user("Hi")))
    >>> req.messages[-1].text
    'Hi'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from shared_core.usage import Usage

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "unknown"]


@dataclass(frozen=True)
class TextPart:
    """A piece of text inside a message."""

    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image inside a message: either a URL or base64 ``data`` with its ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str = "image/png"

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("ImagePart needs exactly one of url= or data= (base64)")


Part = TextPart | ImagePart


@dataclass(frozen=True)
class ToolCall:
    """A tool call made by the model. ``arguments`` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Message:
    """One chat message.

    ``content`` is a string or a tuple of parts (text and images). An assistant message may carry
    ``tool_calls``; a ``tool`` message carries the result of the call named by ``tool_call_id``.
    """

    role: Role
    content: str | tuple[Part, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    model: str | None = None
    """For assistant messages: the router's model name that wrote it (pins tool exchanges)."""

    @property
    def text(self) -> str:
        """The message's text, with the text parts joined and images left out."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def parts(self) -> tuple[Part, ...]:
        """The content as a tuple of parts (a string becomes one text part, empty if blank)."""
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return self.content

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, content: str | tuple[Part, ...]) -> Message:
        return cls("user", content)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls("assistant", text, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: str | None = None) -> Message:
        return cls("tool", content, tool_call_id=tool_call_id, name=name)


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: a name, a description and a JSON-schema ``parameters`` object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


ToolChoice = Literal["auto", "none", "required"] | str  # a str other than those names one tool


@dataclass(frozen=True)
class ChatRequest:
    """Everything a provider needs for one call, independent of the provider.

    ``response_schema`` asks for structured output that follows a JSON schema (where the
    provider supports it); ``extra`` is passed through to the provider's request body unchanged.
    """

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    response_schema: dict[str, Any] | None = None
    response_schema_name: str = "response"
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "messages", tuple(self.messages))
        object.__setattr__(self, "tools", tuple(self.tools))
        object.__setattr__(self, "stop", tuple(self.stop))


@dataclass(frozen=True)
class ChatResponse:
    """A provider-neutral response.

    ``model`` is the provider's model that served the call (as the provider reported it);
    ``spec`` is the ``provider:model`` spec that was called. ``cost_usd`` is ``None`` when the
    price of the model is unknown. ``raw`` is the provider's response payload as a dict.
    """

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: StopReason = "stop"
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    provider: str = ""
    spec: str = ""
    cost_usd: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> Message:
        """The response as an assistant message, ready to append to the conversation."""
        return Message.assistant(self.text, self.tool_calls)


@dataclass(frozen=True)
class TextDelta:
    """A streamed piece of the response text."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A streamed fragment of a tool call. ``index`` identifies the call across fragments;
    ``id`` and ``name`` arrive on the first fragment, ``arguments`` is a piece of JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class UsageEvent:
    """The final usage of a streamed call (always sent before :class:`StreamEnd`)."""

    usage: Usage
    cost_usd: float | None = None


@dataclass(frozen=True)
class StreamEnd:
    """The last event of a stream: the whole response, assembled from the deltas."""

    response: ChatResponse


StreamEvent = TextDelta | ToolCallDelta | UsageEvent | StreamEnd
