"""Anthropic Messages API through the ``anthropic`` SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from shared_core._errors import ProviderError
from shared_core.messages import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
)
from shared_core.providers.base import (
    ChatProvider,
    StreamState,
    parse_args,
    retry_after_seconds,
    status_error,
)
from shared_core.usage import Usage

DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` is required by the Messages API; used when the request sets none."""

# Above this (21,333 in general, 8,192 for Opus 4.0/4.1) the SDK refuses non-streaming calls
# that have no explicit timeout.
_SDK_NONSTREAMING_TOKENS = 8_192

_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_STOP: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def anthropic_usage(usage: Mapping[str, Any] | None) -> Usage:
    """The one Anthropic usage normaliser. Anthropic's ``input_tokens`` excludes cache reads
    and writes; ours includes them."""
    if not usage:
        return Usage()
    read = int(usage.get("cache_read_input_tokens") or 0)
    write = int(usage.get("cache_creation_input_tokens") or 0)
    details = usage.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0) + read + write,
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_input_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


def _parts(m: Message) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        elif isinstance(p, ImagePart):
            source = (
                {"type": "url", "url": p.url}
                if p.url is not None
                else {"type": "base64", "media_type": p.media_type, "data": p.data}
            )
            out.append({"type": "image", "source": source})
    return out


def _messages(messages: Iterable[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """System text and Messages-API turns; consecutive tool results share one user turn."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            system.append(m.text)
        elif m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.text}
            prev = turns[-1] if turns else None
            if prev and prev["role"] == "user" and prev.get("_tool_results"):
                prev["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block], "_tool_results": True})
        elif m.role == "assistant":
            content: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
            content += [
                {"type": "tool_use", "id": tc.id, "name": tc.name, "input": tc.arguments}
                for tc in m.tool_calls
            ]
            turns.append({"role": "assistant", "content": content})
        else:
            turns.append({"role": "user", "content": _parts(m)})
    for t in turns:
        t.pop("_tool_results", None)
    return ("\n\n".join(system) if system else None), turns


class AnthropicProvider(ChatProvider):
    """Anthropic Messages API.

    Structured output uses the API's ``output_config.format`` JSON schema on models the catalog
    marks ``structured_output``, and a forced tool named ``response_schema_name`` on the others
    (its input is returned as the response text).

    Example:
        >>> from shared_core.providers import get_provider
        >>> get_provider("anthropic:claude-haiku-4-5", api_key="sk-ant-test").provider
        'anthropic'
    """

    provider = "anthropic"
    env_keys = ("ANTHROPIC_API_KEY",)
    extra = "anthropic"

    def _make_client(self, api_key: str, *, async_: bool) -> Any:
        anthropic = self._sdk("anthropic", "anthropic")  # the SDK reads ANTHROPIC_BASE_URL
        kwargs = self._client_kwargs(api_key)
        return anthropic.AsyncAnthropic(**kwargs) if async_ else anthropic.Anthropic(**kwargs)

    def _forced_schema_tool(self, req: ChatRequest) -> str | None:
        """The tool name carrying structured output, when the model lacks native support."""
        if req.response_schema is None or self.info.structured_output:
            return None
        return req.response_schema_name

    # ------------------------------------------------------------------ request
    def _build_request(self, req: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system, turns = _messages(req.messages)
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": req.max_tokens or min(DEFAULT_MAX_TOKENS, self.info.max_output),
        }
        if system is not None:
            kw["system"] = system
        tools: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in req.tools
        ]
        forced = self._forced_schema_tool(req)
        if forced is not None:
            tools.append(
                {
                    "name": forced,
                    "description": "Give the final answer in this structure.",
                    "input_schema": req.response_schema,
                }
            )
            kw["tool_choice"] = {"type": "tool", "name": forced}
        elif req.response_schema is not None:
            kw["output_config"] = {
                "format": {"type": "json_schema", "schema": req.response_schema}
            }
        if tools:
            kw["tools"] = tools
        if req.tool_choice is not None and forced is None:
            choice = {"auto": {"type": "auto"}, "none": {"type": "none"},
                      "required": {"type": "any"}}.get(req.tool_choice)
            kw["tool_choice"] = choice or {"type": "tool", "name": req.tool_choice}
        if req.stop:
            kw["stop_sequences"] = list(req.stop)
        # This SDK version no longer lists sampling parameters; the API still takes them on
        # the models that support them, so they go in the body directly.
        body: dict[str, Any] = {}
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        body.update(req.extra)
        if body:
            kw["extra_body"] = body
        if stream:
            kw["stream"] = True
        elif self.timeout is None and kw["max_tokens"] > _SDK_NONSTREAMING_TOKENS:
            # The SDK refuses long non-streaming calls unless a timeout is given; give the
            # time its own estimate expects (1 h per 128k tokens) instead of failing.
            kw["timeout"] = max(600.0, 3600.0 * kw["max_tokens"] / 128_000)
        return kw

    # ------------------------------------------------------------------ response
    def _parse_response(self, raw: Any, req: ChatRequest) -> ChatResponse:
        data = raw.model_dump()
        forced = self._forced_schema_tool(req)
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in data.get("content") or ():
            if block.get("type") == "text":
                text.append(block.get("text") or "")
            elif block.get("type") == "tool_use":
                if block.get("name") == forced:
                    text.append(json.dumps(block.get("input") or {}))
                else:
                    calls.append(ToolCall(block["id"], block["name"],
                                          parse_args(block.get("input"))))
        stop = _STOP.get(data.get("stop_reason") or "", "unknown")
        if forced is not None and stop == "tool_calls" and not calls:
            stop = "stop"
        return self._response(
            text="".join(text),
            tool_calls=tuple(calls),
            stop_reason=stop,
            usage=anthropic_usage(data["usage"]) if data.get("usage") else None,
            model=data.get("model") or "",
            raw=data,
        )

    def _stream_events(self, chunk: Any, state: StreamState) -> Iterable[StreamEvent]:
        kind = chunk.type
        blocks: dict[int, tuple[str, int]] = state.scratch.setdefault("blocks", {})
        if kind == "message_start":
            state.model = chunk.message.model
            state.scratch["usage"] = chunk.message.usage.model_dump()
            state.usage = anthropic_usage(state.scratch["usage"])
        elif kind == "content_block_start":
            block = chunk.content_block
            if block.type == "tool_use":
                if block.name == self._forced_schema_tool(state.request):
                    blocks[chunk.index] = ("schema", 0)
                else:
                    n = sum(1 for k, _ in blocks.values() if k == "tool")
                    blocks[chunk.index] = ("tool", n)
                    yield ToolCallDelta(index=n, id=block.id, name=block.name)
            elif block.type == "text":
                blocks[chunk.index] = ("text", 0)
                if block.text:
                    yield TextDelta(block.text)
        elif kind == "content_block_delta":
            delta = chunk.delta
            where = blocks.get(chunk.index, ("", 0))
            if delta.type == "text_delta":
                yield TextDelta(delta.text)
            elif delta.type == "input_json_delta" and where[0] == "schema":
                yield TextDelta(delta.partial_json)
            elif delta.type == "input_json_delta" and where[0] == "tool":
                yield ToolCallDelta(index=where[1], arguments=delta.partial_json)
        elif kind == "message_delta":
            # message_delta usage is cumulative; keep message_start's fields it leaves unset.
            merged = dict(state.scratch.get("usage") or {})
            merged.update({k: v for k, v in chunk.usage.model_dump().items() if v is not None})
            state.scratch["usage"] = merged
            state.usage = anthropic_usage(merged)
            reason = chunk.delta.stop_reason
            stop = _STOP.get(reason or "", "unknown")
            if stop == "tool_calls" and not any(k == "tool" for k, _ in blocks.values()):
                stop = "stop"
            state.stop_reason = stop
            state.raw_tail = {"stop_reason": reason, "usage": merged, "model": state.model}
        elif kind == "message_stop":
            state.done = True

    # ------------------------------------------------------------------ errors
    def _map_sdk_error(self, e: BaseException) -> tuple[ProviderError, float | None] | None:
        try:
            import anthropic
        except ImportError:  # pragma: no cover
            return None
        if isinstance(e, anthropic.APIStatusError):
            status = e.status_code
            if status < 400:  # an error event inside a 200 stream: status from its type
                body: Mapping[str, Any] = e.body if isinstance(e.body, Mapping) else {}
                found = body.get("error")
                error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
                status = _ERROR_TYPE_STATUS.get(str(error.get("type")), 500)
                message = str(error.get("message") or e.message)
            else:
                message = e.message
            err = status_error(status, message, provider=self.provider, model=self.model)
            return err, retry_after_seconds(e.response.headers)
        return None

    # ------------------------------------------------------------------ transport
    def _send(self, client: Any, kwargs: dict[str, Any]) -> Any:
        return client.messages.create(**kwargs)

    async def _asend(self, client: Any, kwargs: dict[str, Any]) -> Any:
        return await client.messages.create(**kwargs)

    def _send_stream(self, client: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        with client.messages.create(**kwargs) as stream:
            yield from stream

    async def _asend_stream(self, client: Any, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        async with await client.messages.create(**kwargs) as stream:
            async for event in stream:
                yield event
