"""Fallback chains: try ranked models in turn until one serves the request.

A provider is skipped only when its call fails *before any output* (for streams: before the
first delta); a failure after output has started is raised, never silently replayed elsewhere.

Example:
    >>> from shared_core.providers import get_provider, call_with_fallback
    >>> chain = [get_provider("openai:gpt-4.1-mini"), get_provider("anthropic:claude-haiku-4-5")]
    >>> # result = call_with_fallback(chain, req); result.served_by, result.attempts
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

from shared_core._errors import AllModelsFailedError, AvengersError, ConfigurationError
from shared_core.messages import ChatRequest, ChatResponse, StreamEvent
from shared_core.providers.base import ChatProvider

__all__ = [
    "Attempt",
    "FallbackResult",
    "acall_with_fallback",
    "astream_with_fallback",
    "call_with_fallback",
    "stream_with_fallback",
]


@dataclass(frozen=True)
class Attempt:
    """One try in a fallback chain: the spec, its error (``None`` if it served) and its cost.

    Failed attempts cost ``0.0`` (providers do not bill requests that fail before output)."""

    spec: str
    error: BaseException | None
    cost_usd: float | None


@dataclass(frozen=True)
class FallbackResult:
    """The response, every attempt in order, and the spec that finally served.

    Example:
        >>> from shared_core.providers import FallbackResult, Attempt
        >>> from shared_core.messages import ChatResponse
        >>> r = FallbackResult(ChatResponse("hi"), (Attempt("openai:gpt-4o", None, 0.1),),
        ...                    "openai:gpt-4o")
        >>> r.total_cost_usd
        0.1
    """

    response: ChatResponse
    attempts: tuple[Attempt, ...]
    served_by: str

    @property
    def total_cost_usd(self) -> float | None:
        """Sum of the attempts' costs, ``None`` if any cost is unknown."""
        costs = [a.cost_usd for a in self.attempts]
        return None if any(c is None for c in costs) else sum(c for c in costs if c is not None)


def _check(providers: Sequence[ChatProvider]) -> None:
    if not providers:
        raise ConfigurationError("a fallback chain needs at least one provider; got none")


def _all_failed(attempts: list[Attempt]) -> AllModelsFailedError:
    return AllModelsFailedError([(a.spec, a.error) for a in attempts if a.error is not None])


def call_with_fallback(providers: Sequence[ChatProvider], req: ChatRequest) -> FallbackResult:
    """``chat`` on each provider in order until one succeeds.

    Raises:
        AllModelsFailedError: every provider failed; the message names each spec and cause.
    """
    _check(providers)
    attempts: list[Attempt] = []
    for p in providers:
        try:
            response = p.chat(req)
        except AvengersError as e:
            attempts.append(Attempt(p.spec, e, 0.0))
            continue
        attempts.append(Attempt(p.spec, None, response.cost_usd))
        return FallbackResult(response, tuple(attempts), p.spec)
    raise _all_failed(attempts) from attempts[-1].error


async def acall_with_fallback(
    providers: Sequence[ChatProvider], req: ChatRequest
) -> FallbackResult:
    """Async :func:`call_with_fallback`."""
    _check(providers)
    attempts: list[Attempt] = []
    for p in providers:
        try:
            response = await p.achat(req)
        except AvengersError as e:
            attempts.append(Attempt(p.spec, e, 0.0))
            continue
        attempts.append(Attempt(p.spec, None, response.cost_usd))
        return FallbackResult(response, tuple(attempts), p.spec)
    raise _all_failed(attempts) from attempts[-1].error


def stream_with_fallback(
    providers: Sequence[ChatProvider],
    req: ChatRequest,
    attempts: list[Attempt] | None = None,
) -> Iterator[StreamEvent]:
    """``stream`` on each provider in order; moves on only if no event was yielded yet.

    The final :class:`StreamEnd` response's ``spec`` names the provider that served; each
    failed attempt is appended to ``attempts`` when a list is given.
    """
    _check(providers)
    attempts = [] if attempts is None else attempts
    for p in providers:
        started = False
        try:
            for event in p.stream(req):
                started = True
                yield event
            return
        except AvengersError as e:
            if started:
                raise
            attempts.append(Attempt(p.spec, e, 0.0))
    raise _all_failed(attempts) from attempts[-1].error


async def astream_with_fallback(
    providers: Sequence[ChatProvider],
    req: ChatRequest,
    attempts: list[Attempt] | None = None,
) -> AsyncIterator[StreamEvent]:
    """Async :func:`stream_with_fallback`."""
    _check(providers)
    attempts = [] if attempts is None else attempts
    for p in providers:
        started = False
        try:
            async for event in p.astream(req):
                started = True
                yield event
            return
        except AvengersError as e:
            if started:
                raise
            attempts.append(Attempt(p.spec, e, 0.0))
    raise _all_failed(attempts) from attempts[-1].error
