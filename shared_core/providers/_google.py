"""Google Gemini (Gemini Developer API) through the ``google-genai`` SDK's ``generate_content``."""

from __future__ import annotations

import base64
import json
import uuid
from collections import OrderedDict
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
from shared_core.providers.base import ChatProvider, StreamState, status_error, tool_names_by_id
from shared_core.usage import Usage

_STOP: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
}
_SYNTHETIC_ID = "gcall_"  # ids we invent when Gemini sends none; never sent back
_MAX_SIGNATURES = 4096


def google_usage(usage: Mapping[str, Any] | None) -> Usage:
    """The one Gemini usage normaliser. Gemini's ``candidates_token_count`` excludes thoughts,
    and tool-use prompt tokens are counted apart from ``prompt_token_count``."""
    if not usage:
        return Usage()
    thoughts = int(usage.get("thoughts_token_count") or 0)
    return Usage(
        input_tokens=int(usage.get("prompt_token_count") or 0)
        + int(usage.get("tool_use_prompt_token_count") or 0),
        output_tokens=int(usage.get("candidates_token_count") or 0) + thoughts,
        cached_input_tokens=int(usage.get("cached_content_token_count") or 0),
        reasoning_tokens=thoughts,
    )


def _function_response(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


class GoogleProvider(ChatProvider):
    """Google Gemini through ``google-genai``.

    Gemini's function calls may carry no id; the provider then invents one (``gcall_...``) and
    matches tool results back by name. Thought signatures that Gemini attaches to function calls
    are remembered per call id and sent back with the conversation, as the API requires.

    Example:
        >>> from shared_core.providers import get_provider
        >>> get_provider("google:gemini-2.5-flash", api_key="g-test").provider
        'google'
    """

    provider = "google"
    env_keys = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    extra = "google"

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(model.removeprefix("models/"), **kwargs)
        self._signatures: OrderedDict[str, bytes] = OrderedDict()

    def _types(self) -> Any:
        return self._sdk("google.genai.types", "google-genai")

    def _make_client(self, api_key: str, *, async_: bool) -> Any:
        types = self._types()
        genai = self._sdk("google.genai", "google-genai")

        options: dict[str, Any] = {
            # We retry ourselves; stop the SDK's own (implicit) retries.
            "retry_options": types.HttpRetryOptions(attempts=1),
        }
        if self.base_url is not None:
            options["base_url"] = self.base_url  # else the SDK reads GOOGLE_GEMINI_BASE_URL
        if self.timeout is not None:
            options["timeout"] = int(self.timeout * 1000)
        client = genai.Client(api_key=api_key, http_options=types.HttpOptions(**options))
        return client.aio if async_ else client

    async def _aclose_client(self, client: Any) -> None:
        await client.aclose()

    # ------------------------------------------------------------------ request
    def _contents(self, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
        names = tool_names_by_id(messages)
        contents: list[dict[str, Any]] = []
        for m in messages:
            if m.role == "system":
                continue
            if m.role == "tool":
                call_id = m.tool_call_id or ""
                fr: dict[str, Any] = {
                    "name": names.get(call_id) or m.name or "",
                    "response": _function_response(m.text),
                }
                if call_id and not call_id.startswith(_SYNTHETIC_ID):
                    fr["id"] = call_id
                prev = contents[-1] if contents else None
                if prev and prev["role"] == "user" and all(
                    "function_response" in p for p in prev["parts"]
                ):
                    prev["parts"].append({"function_response": fr})
                else:
                    contents.append({"role": "user", "parts": [{"function_response": fr}]})
                continue
            parts: list[dict[str, Any]] = []
            for p in m.parts:
                if isinstance(p, TextPart):
                    parts.append({"text": p.text})
                elif isinstance(p, ImagePart):
                    if p.url is not None:
                        parts.append({"file_data": {"file_uri": p.url,
                                                    "mime_type": p.media_type}})
                    else:
                        parts.append({"inline_data": {"data": base64.b64decode(p.data or ""),
                                                      "mime_type": p.media_type}})
            for tc in m.tool_calls:
                call: dict[str, Any] = {"name": tc.name, "args": tc.arguments}
                if not tc.id.startswith(_SYNTHETIC_ID):
                    call["id"] = tc.id
                part: dict[str, Any] = {"function_call": call}
                signature = self._signatures.get(tc.id)
                if signature is not None:
                    part["thought_signature"] = signature
                parts.append(part)
            contents.append({"role": "model" if m.role == "assistant" else "user",
                             "parts": parts})
        return contents

    def _build_request(self, req: ChatRequest, *, stream: bool) -> dict[str, Any]:
        config: dict[str, Any] = {}
        system = [m.text for m in req.messages if m.role == "system"]
        if system:
            config["system_instruction"] = "\n\n".join(system)
        if req.tools:
            config["tools"] = [{"function_declarations": [
                {"name": t.name, "description": t.description,
                 "parameters_json_schema": t.parameters}
                for t in req.tools
            ]}]
            config["automatic_function_calling"] = {"disable": True}
        if req.tool_choice is not None:
            mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(req.tool_choice)
            fcc: dict[str, Any] = {"mode": mode or "ANY"}
            if mode is None:
                fcc["allowed_function_names"] = [req.tool_choice]
            config["tool_config"] = {"function_calling_config": fcc}
        if req.response_schema is not None:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = req.response_schema
        if req.temperature is not None:
            config["temperature"] = req.temperature
        if req.top_p is not None:
            config["top_p"] = req.top_p
        if req.max_tokens is not None:
            config["max_output_tokens"] = req.max_tokens
        if req.stop:
            config["stop_sequences"] = list(req.stop)
        if req.extra:
            config["http_options"] = {"extra_body": dict(req.extra)}
        return {"model": self.model, "contents": self._contents(req.messages),
                "config": config or None}

    # ------------------------------------------------------------------ response
    def _calls(self, parts: Iterable[Any]) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for part in parts:
            fc = getattr(part, "function_call", None)
            if fc is None:
                continue
            call_id = fc.id or f"{_SYNTHETIC_ID}{uuid.uuid4().hex[:20]}"
            signature = getattr(part, "thought_signature", None)
            if signature:
                self._signatures[call_id] = signature
                while len(self._signatures) > _MAX_SIGNATURES:
                    self._signatures.popitem(last=False)
            calls.append(ToolCall(call_id, fc.name or "", dict(fc.args or {})))
        return calls

    @staticmethod
    def _candidate(raw: Any) -> tuple[list[Any], str]:
        candidates = raw.candidates or []
        if not candidates:
            return [], ""
        c = candidates[0]
        parts = list(c.content.parts or []) if c.content is not None else []
        reason = c.finish_reason
        return parts, (getattr(reason, "value", reason) or "")

    @staticmethod
    def _text(parts: Iterable[Any]) -> str:
        return "".join(p.text for p in parts if p.text and not p.thought)

    def _parse_response(self, raw: Any, req: ChatRequest) -> ChatResponse:
        parts, reason = self._candidate(raw)
        data = raw.model_dump(mode="json", exclude_none=True)
        return self._response(
            text=self._text(parts),
            tool_calls=tuple(self._calls(parts)),
            stop_reason=_STOP.get(reason, "unknown"),
            usage=google_usage(data["usage_metadata"]) if data.get("usage_metadata") else None,
            model=raw.model_version or "",
            raw=data,
        )

    def _stream_events(self, chunk: Any, state: StreamState) -> Iterable[StreamEvent]:
        parts, reason = self._candidate(chunk)
        if chunk.model_version:
            state.model = chunk.model_version
        if chunk.usage_metadata is not None:
            state.usage = google_usage(chunk.usage_metadata.model_dump(exclude_none=True))
        text = self._text(parts)
        if text:
            yield TextDelta(text)
        n = len(state.tools)
        for i, call in enumerate(self._calls(parts)):
            yield ToolCallDelta(index=n + i, id=call.id, name=call.name,
                                arguments=json.dumps(call.arguments))
        if reason:
            state.stop_reason = _STOP.get(reason, "unknown")
            state.done = True
            state.raw_tail = chunk.model_dump(mode="json", exclude_none=True)

    # ------------------------------------------------------------------ errors
    def _map_sdk_error(self, e: BaseException) -> tuple[ProviderError, float | None] | None:
        try:
            from google.genai import errors
        except ImportError:  # pragma: no cover
            return None
        if isinstance(e, errors.APIError):
            message = e.message or str(e)
            return status_error(int(e.code or 0), message, provider=self.provider,
                                model=self.model), None
        return None

    # ------------------------------------------------------------------ transport
    def _send(self, client: Any, kwargs: dict[str, Any]) -> Any:
        return client.models.generate_content(**kwargs)

    async def _asend(self, client: Any, kwargs: dict[str, Any]) -> Any:
        return await client.models.generate_content(**kwargs)

    def _send_stream(self, client: Any, kwargs: dict[str, Any]) -> Iterator[Any]:
        yield from client.models.generate_content_stream(**kwargs)

    async def _asend_stream(self, client: Any, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        async for chunk in await client.models.generate_content_stream(**kwargs):
            yield chunk
