"""OpenAI Chat Completions (and any OpenAI-compatible ``base_url``) through the ``openai`` SDK."""

from __future__ import annotations

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

_STOP: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
# Models that take max_completion_tokens and reject max_tokens.
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def openai_usage(usage: Mapping[str, Any] | None) -> Usage:
    """The one OpenAI usage normaliser (``prompt_tokens`` includes cached tokens,
    ``completion_tokens`` includes reasoning tokens)."""
    if not usage:
        return Usage()
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
        cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def _content(m: Message) -> str | list[dict[str, Any]]:
    if isinstance(m.content, str):
        return m.content
    parts: list[dict[str, Any]] = []
    for p in m.content:
        if isinstance(p, TextPart):
            parts.append({"type": "text", "text": p.text})
        elif isinstance(p, ImagePart):
            url = p.url if p.url is not None else f"data:{p.media_type};base64,{p.data}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text}
    if m.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": m.text or None}
        if m.tool_calls:
            out["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments_json()},
                }
                for tc in m.tool_calls
            ]
        return out
    out = {"role": m.role, "content": m.text if m.role == "system" else _content(m)}
    if m.name:
        out["name"] = m.name
    return out


class OpenAIProvider(ChatProvider):
    """OpenAI Chat Completions; also vLLM, Ollama and other OpenAI-compatible servers.

    Example:
        >>> from shared_core.providers import get_provider
        >>> get_provider("openai:gpt-4.1-mini", api_key="sk-test").provider
        'openai'
    """

    provider = "openai"
    env_keys = ("OPENAI_API_KEY",)
    extra = "openai"

    def _make_client(self, api_key: str, *, async_: bool) -> Any:
        openai = self._sdk("openai", "openai")  # the SDK reads OPENAI_BASE_URL
        kwargs = self._client_kwargs(api_key)
        return openai.AsyncOpenAI(**kwargs) if async_ else openai.OpenAI(**kwargs)

    # ------------------------------------------------------------------ request
    def _build_request(self, req: ChatRequest, *, stream: bool) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": [_message(m) for m in req.messages],
        }
        if req.tools:
            kw["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in req.tools
            ]
        if req.tool_choice is not None:
            if req.tool_choice in ("auto", "none", "required"):
                kw["tool_choice"] = req.tool_choice
            else:
                kw["tool_choice"] = {"type": "function", "function": {"name": req.tool_choice}}
        if req.response_schema is not None:
            kw["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": req.response_schema_name, "schema": req.response_schema},
            }
        if req.temperature is not None:
            kw["temperature"] = req.temperature
        if req.top_p is not None:
            kw["top_p"] = req.top_p
        if req.max_tokens is not None:
            key = "max_completion_tokens" if self.model.startswith(_REASONING_PREFIXES) else (
                "max_tokens"
            )
            kw[key] = req.max_tokens
        if req.stop:
            kw["stop"] = list(req.stop)
        if req.extra:
            kw["extra_body"] = dict(req.extra)
        if stream:
            kw["stream"] = True
            kw["stream_options"] = {"include_usage": True}
        return kw

    # ------------------------------------------------------------------ response
    def _parse_response(self, raw: Any, req: ChatRequest) -> ChatResponse:
        data = raw.model_dump()
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        tool_calls = tuple(
            ToolCall(
                id=tc["id"],
                name=tc["function"]["name"],
                arguments=parse_args(tc["function"].get("arguments")),
            )
            for tc in message.get("tool_calls") or ()
            if tc.get("type", "function") == "function"
        )
        return self._response(
            text=message.get("content") or "",
            tool_calls=tool_calls,
            stop_reason=_STOP.get(choice.get("finish_reason") or "", "unknown"),
            usage=openai_usage(data["usage"]) if data.get("usage") else None,
            model=data.get("model") or "",
            raw=data,
        )

    def _stream_events(self, chunk: Any, state: StreamState) -> Iterable[StreamEvent]:
        if chunk.model:
            state.model = chunk.model
        if chunk.usage is not None:
            state.usage = openai_usage(chunk.usage.model_dump())
            state.raw_tail = chunk.model_dump()
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None and delta.content:
                yield TextDelta(delta.content)
            for tc in (delta.tool_calls if delta is not None else None) or ():
                fn = tc.function
                yield ToolCallDelta(
                    index=tc.index,
                    id=tc.id,
                    name=fn.name if fn is not None else None,
                    arguments=(fn.arguments if fn is not None else None) or "",
                )
            if choice.finish_reason:
                state.stop_reason = _STOP.get(choice.finish_reason, "unknown")
                state.done = True

    # ------------------------------------------------------------------ errors
    def _map_sdk_error(self, e: BaseException) -> tuple[ProviderError, float | None] | None:
        try:
            import openai
        except ImportError:  # pragma: no cover - the SDK raised, so it is importable
            return None
        if isinstance(e, openai.APIStatusError):
            err = status_error(
                e.status_code, e.message, provider=self.provider, model=self.model
            )
            return err, retry_after_seconds(e.response.headers)
        if isinstance(e, openai.APIError) and not isinstance(e, openai.APIConnectionError):
            # An error event inside a 200 stream: use its code if it is an HTTP status.
            body = e.body if isinstance(e.body, Mapping) else {}
            code = str(body.get("code") or "")
            status = int(code) if code.isdigit() else 500
            return status_error(status, e.message, provider=self.provider,
                                model=self.model), None
        return None  # connection and timeout errors are mapped by the base class

    # ------------------------------------------------------------------ transport
    def _send(self, client: Any, kwargs: dict[str, Any]) -> Any:
        return client.chat.completions.create(**kwargs)

    async def _asend(self, client: Any, kwargs: dict[str, Any]) -> Any:
        return await client.chat.completions.create(**kwargs)

    def _send_stream(self, client: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        with client.chat.completions.create(**kwargs) as stream:
            yield from stream

    async def _asend_stream(self, client: Any, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        async with await client.chat.completions.create(**kwargs) as stream:
            async for chunk in stream:
                yield chunk
