"""The :class:`ChatProvider` base: lazy SDK clients, keys, retries, errors and streaming.

A concrete provider (``_openai.py``, ``_anthropic.py``, ``_google.py``) supplies exactly one of
each of these, shared by ``chat``, ``achat``, ``stream`` and ``astream``:

* ``_build_request(req)``  -> the SDK call's keyword arguments (the one request builder);
* ``_parse_response(raw, req)`` -> a :class:`ChatResponse` (the one response normaliser);
* ``_stream_events(chunk, state)`` -> stream events for one SDK stream chunk;
* a module-level usage normaliser (SDK usage -> :class:`Usage`);
* ``_map_sdk_error(e)`` -> our error for the SDK's exceptions;

plus four one-line transport methods that call the SDK (sync, async, stream, async stream).
Everything else (key lookup, lazy clients, retries with backoff, mapping transport errors,
assembling streamed responses, cost) lives here, once.

Retries: the SDKs' own retries are switched off (``max_retries=0`` for openai/anthropic,
``HttpRetryOptions(attempts=1)`` for google-genai) and one loop here retries 408/429/5xx,
timeouts and connection errors for all three, with the same exponential backoff
(``retry_backoff`` doubling, 0-25 % jitter, capped at ``max_retry_delay``) and honouring the
server's ``retry-after-ms`` / ``Retry-After``. The SDKs' backoff is not configurable (OpenAI,
Anthropic) or differs per SDK (google-genai sleeps 1-10 s on connection errors), and one loop
also lets a stream be retried only while it has produced no output.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import random
import threading
import time
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from pydantic import SecretStr

from shared_core._errors import (
    AuthenticationError,
    AvengersError,
    BadRequestError,
    MissingDependencyError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitError,
)
from shared_core.messages import (
    ChatRequest,
    ChatResponse,
    Message,
    StopReason,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UsageEvent,
)
from shared_core.pricing import ModelInfo, cost, model_info
from shared_core.usage import Usage

__all__ = ["ChatProvider", "StreamState", "status_error"]


def status_error(
    status: int, message: str, *, provider: str, model: str
) -> ProviderError:
    """The error class for an HTTP status, keeping the provider's message."""
    kw: dict[str, Any] = {"provider": provider, "model": model, "status_code": status}
    if status in (401, 403):
        return AuthenticationError(message, **kw)
    if status == 429:
        return RateLimitError(message, **kw)
    if status == 408:
        return ProviderTimeoutError(message, **kw)
    if status >= 500:
        return ProviderServerError(message, **kw)
    if 400 <= status < 500:
        return BadRequestError(message, **kw)
    return ProviderError(message, **kw)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Server-directed delay from ``retry-after-ms`` / ``retry-after`` headers, if any."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    after = headers.get("retry-after")
    if after:
        try:
            return float(after)
        except ValueError:
            try:
                return max(parsedate_to_datetime(after).timestamp() - time.time(), 0.0)
            except (TypeError, ValueError):
                return None
    return None


_TIMEOUT_NAMES = {"TimeoutException", "TimeoutError", "APITimeoutError", "ServerTimeoutError"}
_CONNECTION_NAMES = {
    "TransportError",  # httpx / httpx2: connect, read, write, protocol errors
    "APIConnectionError",  # openai / anthropic
    "ClientError",  # aiohttp
    "ConnectionError",
    "IncompleteRead",
}


def _transport_error(e: BaseException) -> type[ProviderError] | None:
    names = {cls.__name__ for cls in type(e).__mro__}
    if names & _TIMEOUT_NAMES:
        return ProviderTimeoutError
    if names & _CONNECTION_NAMES:
        return ProviderConnectionError
    return None


@dataclass
class StreamState:
    """What a stream has produced so far; providers fill ``usage``, ``stop_reason``, ``done``."""

    request: ChatRequest
    text: list[str] = field(default_factory=list)
    tools: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: Usage | None = None
    stop_reason: StopReason | None = None
    model: str = ""
    done: bool = False
    started: bool = False
    scratch: dict[str, Any] = field(default_factory=dict)
    raw_tail: dict[str, Any] = field(default_factory=dict)

    def add(self, event: StreamEvent) -> None:
        self.started = True
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            slot = self.tools.setdefault(event.index, {"id": None, "name": None, "args": []})
            if event.id:
                slot["id"] = event.id
            if event.name:
                slot["name"] = event.name
            slot["args"].append(event.arguments)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=s["id"] or f"call_{i}", name=s["name"] or "", arguments=parse_args(
                "".join(s["args"])))
            for i, s in sorted(self.tools.items())
        )


def parse_args(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Tool-call arguments as a dict (``{"_raw": text}`` when the model sent invalid JSON)."""
    if text is None or text == "":
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_value": value}


def tool_names_by_id(messages: Iterable[Message]) -> dict[str, str]:
    """Tool-call id -> tool name, from the assistant messages of a conversation."""
    return {tc.id: tc.name for m in messages for tc in m.tool_calls}


class _Retry:
    """Counts attempts of one call and decides, for each failure, to wait or to raise."""

    def __init__(self, provider: ChatProvider) -> None:
        self.provider = provider
        self.attempt = 0

    def delay_or_raise(self, e: BaseException, *, output_started: bool = False) -> float:
        err, after = self.provider._to_error(e)
        p = self.provider
        if output_started or not getattr(err, "retryable", False) or self.attempt >= p.max_retries:
            if err is e:
                raise e
            raise err from e
        backoff = p.retry_backoff * (2.0**self.attempt) * (1.0 - 0.25 * random.random())
        self.attempt += 1
        delay = after if after is not None and after >= 0 else backoff
        return min(delay, p.max_retry_delay)


class ChatProvider(ABC):
    """One model of one provider behind the provider-neutral chat interface.

    Construct through :func:`shared_core.providers.get_provider`. Nothing is imported, read or
    connected at construction: the SDK is imported and the client created (with the key from
    ``api_key`` or the provider's environment variable) on the first call.

    Example:
        >>> from shared_core.providers import get_provider
        >>> p = get_provider("openai:gpt-4.1-mini", api_key="sk-test")
        >>> p.spec, p.info.tools
        ('openai:gpt-4.1-mini', True)
        >>> "sk-test" in repr(p)
        False
    """

    provider: ClassVar[str]
    """The provider's name in specs (``openai``, ``anthropic``, ``google``)."""
    env_keys: ClassVar[tuple[str, ...]]
    """Environment variables holding the API key, in order of preference."""
    extra: ClassVar[str]
    """The pip extra that installs the SDK."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_retries: int = 2,
        retry_backoff: float = 0.5,
        max_retry_delay: float = 8.0,
    ) -> None:
        if not model:
            raise ValueError("model must be a non-empty model name")
        self.model = model
        """The provider's model name."""
        self.base_url = base_url
        """Endpoint override; ``None`` keeps the SDK's default and its environment variable."""
        self.timeout = timeout
        """Seconds per HTTP request; ``None`` keeps the SDK's default."""
        self.max_retries = max_retries
        """Retries after the first attempt on 408/429/5xx, timeouts and connection errors."""
        self.retry_backoff = retry_backoff
        """First retry delay in seconds, doubled each retry (with jitter) unless the server
        sends ``Retry-After``."""
        self.max_retry_delay = max_retry_delay
        """Upper bound of one retry delay, in seconds."""
        self._api_key: SecretStr | None = (
            SecretStr(api_key) if isinstance(api_key, str) else api_key
        )
        self._lock = threading.Lock()
        self._sync_client: Any = None
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    # ------------------------------------------------------------------ identity
    @property
    def spec(self) -> str:
        """``"provider:model"``."""
        return f"{self.provider}:{self.model}"

    @property
    def info(self) -> ModelInfo:
        """Capabilities and prices from the catalog (defaults with ``known=False`` if unknown)."""
        return model_info(self.spec)

    def __repr__(self) -> str:
        key = "**********" if self._api_key is not None else None
        return (
            f"{type(self).__name__}(spec={self.spec!r}, base_url={self.base_url!r}, "
            f"api_key={key!r}, timeout={self.timeout!r}, max_retries={self.max_retries!r})"
        )

    # ------------------------------------------------------------------ clients
    def _resolve_api_key(self) -> str:
        from shared_core._errors import MissingAPIKeyError

        if self._api_key is not None:
            value = self._api_key.get_secret_value()
            if value:
                return value
        for name in self.env_keys:
            value = os.environ.get(name, "")
            if value:
                return value
        raise MissingAPIKeyError(self.provider, self.env_keys)

    def _client(self, *, async_: bool) -> Any:
        if not async_:
            with self._lock:
                if self._sync_client is None:
                    self._sync_client = self._make_client(self._resolve_api_key(), async_=False)
                return self._sync_client
        loop = asyncio.get_running_loop()  # async clients are bound to their event loop
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                client = self._make_client(self._resolve_api_key(), async_=True)
                self._async_clients[loop] = client
            return client

    def close(self) -> None:
        """Close the sync SDK client and its connections (a later call opens a new one)."""
        with self._lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the async SDK client of the running event loop (a later call opens a new one)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.pop(loop, None)
        if client is not None:
            await self._aclose_client(client)

    async def _aclose_client(self, client: Any) -> None:
        await client.close()

    # ------------------------------------------------------------------ provider hooks
    def _sdk(self, module: str, package: str) -> Any:
        """Import the provider's SDK (module) lazily; a missing one names the extra to install."""
        try:
            return importlib.import_module(module)
        except ImportError as e:
            raise MissingDependencyError(package, self.extra) from e

    def _client_kwargs(self, api_key: str) -> dict[str, Any]:
        """Constructor arguments shared by the OpenAI and Anthropic SDK clients: our own retry
        loop replaces the SDK's, and base URL / timeout only when set (else the SDK's own
        environment variable or default applies)."""
        kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": 0}
        if self.base_url is not None:
            kwargs["base_url"] = self.base_url
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs

    @abstractmethod
    def _make_client(self, api_key: str, *, async_: bool) -> Any:
        """Import the SDK (MissingDependencyError naming the extra) and build a client."""

    @abstractmethod
    def _build_request(self, req: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The SDK call's keyword arguments for ``req``."""

    @abstractmethod
    def _parse_response(self, raw: Any, req: ChatRequest) -> ChatResponse:
        """A neutral response from the SDK's response object."""

    @abstractmethod
    def _stream_events(self, chunk: Any, state: StreamState) -> Iterable[StreamEvent]:
        """Deltas for one SDK stream chunk; sets ``state.usage/stop_reason/model/done``."""

    @abstractmethod
    def _map_sdk_error(self, e: BaseException) -> tuple[ProviderError, float | None] | None:
        """Our error (and a server-directed retry delay) for an SDK exception, else None."""

    @abstractmethod
    def _send(self, client: Any, kwargs: dict[str, Any]) -> Any: ...

    @abstractmethod
    async def _asend(self, client: Any, kwargs: dict[str, Any]) -> Any: ...

    @abstractmethod
    def _send_stream(self, client: Any, kwargs: dict[str, Any]) -> Iterator[Any]: ...

    @abstractmethod
    def _asend_stream(self, client: Any, kwargs: dict[str, Any]) -> AsyncIterator[Any]: ...

    # ------------------------------------------------------------------ shared pieces
    def _to_error(self, e: BaseException) -> tuple[BaseException, float | None]:
        if isinstance(e, AvengersError):
            return e, None
        mapped = self._map_sdk_error(e)
        if mapped is not None:
            return mapped
        cls = _transport_error(e)
        message = str(e) or type(e).__name__
        if cls is not None:
            return cls(message, provider=self.provider, model=self.model), None
        return e, None  # not a provider failure (e.g. a bug): raised unchanged

    def _response(
        self,
        *,
        text: str,
        tool_calls: tuple[ToolCall, ...],
        stop_reason: StopReason,
        usage: Usage | None,
        model: str,
        raw: dict[str, Any],
    ) -> ChatResponse:
        """The one place where a response gets its spec and cost.

        ``usage=None`` (a server that reports no usage, e.g. some OpenAI-compatible hosts)
        gives zero tokens, ``cost_usd=None`` and a warning: never a silent zero cost."""
        if tool_calls and stop_reason == "stop":
            stop_reason = "tool_calls"
        if usage is None:
            warnings.warn(
                f"{self.spec} reported no token usage; usage is zero and cost is None",
                stacklevel=3,
            )
            cost_usd = None
        else:
            cost_usd = cost(usage, self.spec)
        return ChatResponse(
            text=text,
            tool_calls=tool_calls,
            stop_reason=stop_reason,
            usage=usage or Usage(),
            model=model or self.model,
            provider=self.provider,
            spec=self.spec,
            cost_usd=cost_usd,
            raw=raw,
        )

    def _stream_response(self, state: StreamState) -> ChatResponse:
        if not state.done:
            raise ProviderConnectionError(
                "the stream ended before the provider finished the response",
                provider=self.provider,
                model=self.model,
            )
        return self._response(
            text="".join(state.text),
            tool_calls=state.tool_calls(),
            stop_reason=state.stop_reason or "unknown",
            usage=state.usage,
            model=state.model,
            raw=state.raw_tail,
        )

    # ------------------------------------------------------------------ public calls
    def chat(self, req: ChatRequest) -> ChatResponse:
        """Send ``req`` and wait for the whole response (retrying retryable failures)."""
        kwargs = self._build_request(req, stream=False)
        retry = _Retry(self)
        while True:
            try:
                return self._parse_response(self._send(self._client(async_=False), kwargs), req)
            except Exception as e:
                time.sleep(retry.delay_or_raise(e))

    async def achat(self, req: ChatRequest) -> ChatResponse:
        """Async :meth:`chat`."""
        kwargs = self._build_request(req, stream=False)
        retry = _Retry(self)
        while True:
            try:
                raw = await self._asend(self._client(async_=True), kwargs)
                return self._parse_response(raw, req)
            except Exception as e:
                await asyncio.sleep(retry.delay_or_raise(e))

    def stream(self, req: ChatRequest) -> Iterator[StreamEvent]:
        """Stream ``req``: text and tool-call deltas, then one :class:`UsageEvent`, then
        :class:`StreamEnd` with the assembled response. A failure before the first delta is
        retried; a failure after it raises (the partial output is not replayed)."""
        kwargs = self._build_request(req, stream=True)
        retry = _Retry(self)
        while True:
            state = StreamState(req)
            try:
                for chunk in self._send_stream(self._client(async_=False), kwargs):
                    for event in self._stream_events(chunk, state):
                        state.add(event)
                        yield event
                response = self._stream_response(state)
                break
            except Exception as e:
                time.sleep(retry.delay_or_raise(e, output_started=state.started))
        yield UsageEvent(response.usage, response.cost_usd)
        yield StreamEnd(response)

    async def astream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Async :meth:`stream`."""
        kwargs = self._build_request(req, stream=True)
        retry = _Retry(self)
        while True:
            state = StreamState(req)
            try:
                async for chunk in self._asend_stream(self._client(async_=True), kwargs):
                    for event in self._stream_events(chunk, state):
                        state.add(event)
                        yield event
                response = self._stream_response(state)
                break
            except Exception as e:
                await asyncio.sleep(retry.delay_or_raise(e, output_started=state.started))
        yield UsageEvent(response.usage, response.cost_usd)
        yield StreamEnd(response)
