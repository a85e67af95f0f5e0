"""A scripted fake of the OpenAI, Anthropic and Gemini HTTP APIs on 127.0.0.1, for tests.

It speaks each provider's wire format (JSON and SSE streaming, with token usage), so the real SDK
clients talk to it unchanged; it replies from a per-provider script, fails on demand and records
every request.

Example::

    from tests.stub_llm_server import StubLLMServer, Reply, Fail, ToolCallSpec, Tokens

    with StubLLMServer() as stub:
        stub.script("openai", [
            Fail(429),                                           # first request: HTTP 429
            Reply(text="Hello!", usage=Tokens(input=12, output=3)),
        ])
        stub.script("anthropic:claude-haiku-4-5", [               # only for this model
            Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})]),
        ])
        p = get_provider("openai:gpt-4.1-mini", api_key="test", base_url=stub.base_url("openai"))
        ...
        assert stub.requests[-1].json["model"] == "gpt-4.1-mini"

As a pytest fixture: add ``pytest_plugins = ["tests.conftest_stub"]`` to ``tests/conftest.py`` and
take the ``stub`` fixture (a fresh, running :class:`StubLLMServer` per test).

Script items, consumed one per request (a model-specific queue ``"provider:model"`` is used
before the provider's queue):

* :class:`Reply` - a successful response: text and/or tool calls, token usage, stop reason;
  ``delay`` before answering; ``drop_after=n`` sends n stream events then drops the connection.
* :class:`Fail` - an HTTP error with the provider's error body (``retry_after`` header in seconds,
  small by default so SDK/back-off tests are fast); ``Fail(0)`` closes the connection without
  answering.

When a queue is empty the stub answers the default reply: ``"stub reply to: <last user text>"``
(first 40 characters), with ``input = number of characters of all message text in the request``
(see :func:`default_input_tokens`) and ``output = 7`` tokens, so concurrent tests can check that
each call got its own usage.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "Fail",
    "RecordedRequest",
    "Reply",
    "StubLLMServer",
    "Tokens",
    "ToolCallSpec",
    "default_input_tokens",
    "request_text",
]

PROVIDERS = ("openai", "anthropic", "google")
DEFAULT_OUTPUT_TOKENS = 7


@dataclass(frozen=True)
class Tokens:
    """Token usage the stub reports, in neutral terms.

    ``input`` includes ``cached`` and ``cache_write``; ``output`` includes ``reasoning``. The stub
    converts this to each wire format (e.g. Anthropic's ``input_tokens`` excludes cache tokens,
    Gemini's ``candidatesTokenCount`` excludes thoughts), so providers must normalise it back.
    """

    input: int = 10
    output: int = 5
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass(frozen=True)
class ToolCallSpec:
    """A tool call the stub's model makes. ``id`` defaults to a generated one (OpenAI and
    Anthropic); the Gemini wire format carries no id unless one is given."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    thought_signature: str | None = None
    """Gemini only: a base64 signature the client must send back with this call."""


@dataclass(frozen=True)
class Reply:
    """A successful reply. ``stop`` defaults to tool calls when there are any, else stop;
    ``usage`` defaults to ``Tokens()`` (10 in, 5 out); ``model`` overrides the reported model.

    ``stop`` is neutral: ``"stop"``, ``"length"``, ``"tool_calls"`` or ``"content_filter"``.
    """

    text: str = ""
    tool_calls: Sequence[ToolCallSpec] = ()
    usage: Tokens | None = None
    stop: str | None = None
    delay: float = 0.0
    drop_after: int | None = None
    model: str | None = None
    chunk_size: int = 4
    omit_usage: bool = False
    """Send no usage at all (as some OpenAI-compatible servers do)."""
    stream_error: Fail | None = None
    """Streams only: after ``drop_after`` events (default 0) send the provider's in-stream error
    event for this failure (status and message) and end the stream."""


@dataclass(frozen=True)
class Fail:
    """An error reply: HTTP ``status`` with the provider's JSON error body, or ``status=0`` to
    close the connection without an answer. ``retry_after`` (seconds) is sent as
    ``retry-after-ms``/``retry-after`` when not ``None``."""

    status: int
    message: str = "scripted failure"
    retry_after: float | None = 0.001
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stub received it."""

    provider: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any
    model: str
    stream: bool
    time: float


def request_text(provider: str, body: Any) -> list[str]:
    """All text of a request's messages (system included), in order."""
    out: list[str] = []

    def walk_parts(parts: Any) -> None:
        if isinstance(parts, str):
            out.append(parts)
            return
        for part in parts or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
            if isinstance(part, dict) and isinstance(part.get("content"), str | list):
                walk_parts(part["content"])  # Anthropic tool_result

    if provider == "openai":
        for m in body.get("messages", ()):
            walk_parts(m.get("content"))
    elif provider == "anthropic":
        walk_parts(body.get("system"))
        for m in body.get("messages", ()):
            walk_parts(m.get("content"))
    else:
        si = body.get("systemInstruction") or body.get("system_instruction")
        if si:
            walk_parts(si.get("parts"))
        for c in body.get("contents", ()):
            walk_parts(c.get("parts"))
    return out


def default_input_tokens(provider: str, body: Any) -> int:
    """The input tokens of the default reply: the number of characters of all message text."""
    return sum(len(t) for t in request_text(provider, body))


def _last_user_text(provider: str, body: Any) -> str:
    key = "contents" if provider == "google" else "messages"
    for m in reversed(body.get(key, ())):
        if m.get("role") == "user":
            parts = m.get("parts") if provider == "google" else m.get("content")
            if isinstance(parts, str):
                return parts
            texts = [p["text"] for p in parts or () if isinstance(p, dict) and "text" in p]
            if texts:
                return "".join(texts)
    return ""


class StubLLMServer:
    """The stub server. Use as a context manager, or call :meth:`start` / :meth:`stop`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._queues: dict[str, deque[Reply | Fail]] = {}
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        """Every request received, in arrival order."""
        self._server = _Server((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StubLLMServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> StubLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ API
    def base_url(self, provider: str) -> str:
        """The ``base_url`` to give the provider's SDK: ``openai`` -> ``.../openai/v1``,
        ``anthropic`` -> ``.../anthropic``, ``google``/``gemini`` -> ``.../google``."""
        provider = "google" if provider == "gemini" else provider
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
        return f"{self.url}/openai/v1" if provider == "openai" else f"{self.url}/{provider}"

    def script(self, target: str, items: Iterable[Reply | Fail]) -> None:
        """Queue replies for ``"provider"`` or ``"provider:model"`` (model queue wins)."""
        provider, _, model = target.partition(":")
        provider = "google" if provider == "gemini" else provider
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
        key = f"{provider}:{model}" if model else provider
        with self._lock:
            self._queues.setdefault(key, deque()).extend(items)

    def requests_for(self, provider: str, model: str | None = None) -> list[RecordedRequest]:
        """The recorded requests of one provider (and model)."""
        provider = "google" if provider == "gemini" else provider
        return [
            r for r in self.requests
            if r.provider == provider and (model is None or r.model == model)
        ]

    def pending(self) -> int:
        """How many scripted items are not consumed yet."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    def reset(self) -> None:
        """Forget scripts and recorded requests."""
        with self._lock:
            self._queues.clear()
            self.requests.clear()

    # ------------------------------------------------------------------ internals
    def _next(self, provider: str, model: str) -> Reply | Fail | None:
        with self._lock:
            for key in (f"{provider}:{model}", provider):
                q = self._queues.get(key)
                if q:
                    return q.popleft()
        return None

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)


# ====================================================================== wire formats
_OPENAI_STOP = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                "content_filter": "content_filter"}
_ANTHROPIC_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                   "content_filter": "refusal"}
_GOOGLE_STOP = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP",
                "content_filter": "SAFETY"}


def _stop(reply: Reply) -> str:
    return reply.stop or ("tool_calls" if reply.tool_calls else "stop")


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or []


def _call_id(tc: ToolCallSpec, provider: str) -> str:
    if tc.id:
        return tc.id
    prefix = {"openai": "call_", "anthropic": "toolu_"}.get(provider, "")
    return prefix + uuid.uuid4().hex[:20]


def _openai_usage(u: Tokens) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0,
                                  "cache_write_tokens": u.cache_write},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def _anthropic_usage(u: Tokens) -> dict[str, Any]:
    d: dict[str, Any] = {
        "input_tokens": u.input - u.cached - u.cache_write,
        "cache_read_input_tokens": u.cached,
        "cache_creation_input_tokens": u.cache_write,
        "output_tokens": u.output,
    }
    if u.reasoning:
        d["output_tokens_details"] = {"thinking_tokens": u.reasoning}
    return d


def _google_usage(u: Tokens) -> dict[str, Any]:
    d: dict[str, Any] = {
        "promptTokenCount": u.input,
        "candidatesTokenCount": u.output - u.reasoning,
        "totalTokenCount": u.input + u.output,
    }
    if u.cached:
        d["cachedContentTokenCount"] = u.cached
    if u.reasoning:
        d["thoughtsTokenCount"] = u.reasoning
    return d


def openai_body(reply: Reply, model: str, usage: Tokens) -> dict[str, Any]:
    tool_calls = [
        {"id": _call_id(tc, "openai"), "type": "function",
         "function": {"name": tc.name, "arguments": json.dumps(tc.arguments)}}
        for tc in reply.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None,
                               "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:12], "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": _OPENAI_STOP[_stop(reply)]}],
        "usage": _openai_usage(usage),
    }


def openai_events(reply: Reply, model: str, usage: Tokens,
                  include_usage: bool) -> list[tuple[str | None, Any]]:
    base = {"id": "chatcmpl-" + uuid.uuid4().hex[:12], "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}]}

    events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}))]
    events += [(None, chunk({"content": piece})) for piece in _chunks(reply.text,
                                                                      reply.chunk_size)]
    for i, tc in enumerate(reply.tool_calls):
        events.append((None, chunk({"tool_calls": [{
            "index": i, "id": _call_id(tc, "openai"), "type": "function",
            "function": {"name": tc.name, "arguments": ""}}]})))
        for piece in _chunks(json.dumps(tc.arguments), reply.chunk_size * 3):
            events.append((None, chunk({"tool_calls": [{
                "index": i, "function": {"arguments": piece}}]})))
    events.append((None, chunk({}, _OPENAI_STOP[_stop(reply)])))
    if include_usage:
        events.append((None, {**base, "choices": [], "usage": _openai_usage(usage)}))
    events.append((None, "[DONE]"))
    return events


def anthropic_body(reply: Reply, model: str, usage: Tokens) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for tc in reply.tool_calls:
        content.append({"type": "tool_use", "id": _call_id(tc, "anthropic"), "name": tc.name,
                        "input": tc.arguments})
    return {
        "id": "msg_" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
        "model": model, "content": content, "stop_reason": _ANTHROPIC_STOP[_stop(reply)],
        "stop_sequence": None, "usage": _anthropic_usage(usage),
    }


def anthropic_events(reply: Reply, model: str, usage: Tokens) -> list[tuple[str | None, Any]]:
    start_usage = {**_anthropic_usage(usage), "output_tokens": 1}
    message = {"id": "msg_" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
               "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": start_usage}
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": message}),
        ("ping", {"type": "ping"}),
    ]
    index = 0
    if reply.text:
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                               "content_block": {"type": "text", "text": ""}}))
        for piece in _chunks(reply.text, reply.chunk_size):
            events.append(("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "text_delta", "text": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for tc in reply.tool_calls:
        events.append(("content_block_start", {
            "type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": _call_id(tc, "anthropic"),
                              "name": tc.name, "input": {}}}))
        for piece in _chunks(json.dumps(tc.arguments), reply.chunk_size * 3):
            events.append(("content_block_delta", {
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    events.append(("message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": _ANTHROPIC_STOP[_stop(reply)], "stop_sequence": None},
        "usage": {k: v for k, v in _anthropic_usage(usage).items()
                  if k in ("output_tokens", "output_tokens_details")}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _google_parts(reply: Reply) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if reply.text:
        parts.append({"text": reply.text})
    for tc in reply.tool_calls:
        call: dict[str, Any] = {"name": tc.name, "args": tc.arguments}
        if tc.id:
            call["id"] = tc.id
        part: dict[str, Any] = {"functionCall": call}
        if tc.thought_signature:
            part["thoughtSignature"] = tc.thought_signature
        parts.append(part)
    return parts


def google_body(reply: Reply, model: str, usage: Tokens) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": _google_parts(reply)},
                        "finishReason": _GOOGLE_STOP[_stop(reply)], "index": 0}],
        "usageMetadata": _google_usage(usage),
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:16],
    }


def google_events(reply: Reply, model: str, usage: Tokens) -> list[tuple[str | None, Any]]:
    pieces = _chunks(reply.text, reply.chunk_size)
    bodies: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": p}]}, "index": 0}],
         "modelVersion": model}
        for p in pieces
    ]
    calls = [part for part in _google_parts(Reply(tool_calls=reply.tool_calls))]
    last = {"candidates": [{"content": {"role": "model", "parts": calls},
                            "finishReason": _GOOGLE_STOP[_stop(reply)], "index": 0}],
            "usageMetadata": _google_usage(usage), "modelVersion": model}
    # Gemini reports (running) usage on the chunks; the last one has the totals.
    for b in bodies:
        b["usageMetadata"] = {"promptTokenCount": usage.input, "totalTokenCount": usage.input}
    return [(None, b) for b in bodies] + [(None, last)]


def error_body(provider: str, status: int, message: str) -> dict[str, Any]:
    if provider == "openai":
        return {"error": {"message": message, "type": "stub_error", "param": None,
                          "code": str(status)}}
    if provider == "anthropic":
        kind = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}
    status_name = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                   404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                   503: "UNAVAILABLE"}.get(status, "UNKNOWN")
    return {"error": {"code": status, "message": message, "status": status_name}}


def stream_error_event(provider: str, fail: Fail) -> tuple[str | None, Any]:
    """The error event a provider sends inside an SSE stream."""
    body = error_body(provider, fail.status, fail.message)
    if provider == "anthropic":
        return ("error", body)
    return (None, body)


# ====================================================================== HTTP handler
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # many concurrent clients connect at once (default backlog: 5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing an idle keep-alive connection is normal, not worth a traceback.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        stub: StubLLMServer = self.server.stub  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        segments = parts.path.strip("/").split("/")
        provider = segments[0] if segments else ""
        if provider not in PROVIDERS:
            self._json(404, {"error": {"message": f"no route {parts.path}"}})
            return
        if provider == "google":
            # /google/v1beta/models/{model}:generateContent | :streamGenerateContent
            last = segments[-1]
            model, _, method = last.partition(":")
            stream = method == "streamGenerateContent"
        else:
            model = str(body.get("model", ""))
            stream = bool(body.get("stream"))
        stub._record(RecordedRequest(
            provider=provider, method="POST", path=parts.path, query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()}, json=body, model=model,
            stream=stream, time=time.time()))
        item = stub._next(provider, model)
        if isinstance(item, Fail):
            if item.delay:
                time.sleep(item.delay)
            if item.status == 0:
                self._drop()
                return
            headers = {}
            if item.retry_after is not None:
                headers["retry-after-ms"] = str(int(item.retry_after * 1000))
                headers["retry-after"] = f"{item.retry_after:g}"
            self._json(item.status, error_body(provider, item.status, item.message), headers)
            return
        reply = item or Reply(
            text="stub reply to: " + _last_user_text(provider, body)[:40],
            usage=Tokens(input=default_input_tokens(provider, body),
                         output=DEFAULT_OUTPUT_TOKENS),
        )
        if reply.delay:
            time.sleep(reply.delay)
        usage = reply.usage or Tokens()
        served = reply.model or model
        if not stream:
            make = {"openai": openai_body, "anthropic": anthropic_body,
                    "google": google_body}[provider]
            payload = make(reply, served, usage)
            if reply.omit_usage:
                for key in ("usage", "usageMetadata"):
                    payload.pop(key, None)
            self._json(200, payload)
            return
        if provider == "openai":
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            include = include and not reply.omit_usage
            events = openai_events(reply, served, usage, include)
        elif provider == "anthropic":
            events = anthropic_events(reply, served, usage)
        else:
            events = google_events(reply, served, usage)
        if reply.stream_error is not None:
            cut = reply.drop_after or 0
            events = events[:cut] + [stream_error_event(provider, reply.stream_error)]
            self._sse(events, None)
            return
        self._sse(events, reply.drop_after)

    # ------------------------------------------------------------------ writers
    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, Any]], drop_after: int | None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i, (name, data) in enumerate(events):
            if drop_after is not None and i >= drop_after:
                self.wfile.flush()
                self._drop()
                return
            text = data if isinstance(data, str) else json.dumps(data)
            frame = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
            payload = frame.encode()
            self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection abruptly (no terminating chunk, no response)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
