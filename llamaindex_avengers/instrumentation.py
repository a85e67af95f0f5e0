"""Cost accounting over LlamaIndex instrumentation: tokens and dollars per model for a run.

:class:`CostEventHandler` listens to LlamaIndex's LLM events (chat and completion, streamed or
not, sync or async) and totals, per model, the calls of

* :class:`~llamaindex_avengers.AvengersLLM`: from the routing facts every response carries
  (routed model, tokens by kind, cost, failed fallback attempts); the candidate LLM object an
  AvengersLLM calls internally is not counted a second time;
* any other LlamaIndex LLM, when its response reports token usage (``raw["usage"]`` or the
  token counts in ``additional_kwargs``) and its model name is known (``raw["model"]`` or the
  LLM's ``metadata.model_name``), priced with :mod:`shared_core.pricing`. Calls without usage
  are counted in :attr:`CostEventHandler.unaccounted_calls`.

:func:`track_costs` scopes a handler to a ``with`` block (and the asyncio tasks started in it), in
the style of LangChain's ``get_openai_callback()``.

Example:
    >>> from llamaindex_avengers import track_costs
    >>> with track_costs() as costs:  # doctest: +SKIP
    ...     index.as_query_engine(llm=AvengersLLM()).query("What did the author do?")
    >>> print(costs.total_cost, costs.total_tokens)  # doctest: +SKIP
    >>> print(costs.summary(baseline="openai:gpt-4.1"))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.events.span import SpanDropEvent
from llama_index.core.instrumentation.span_handlers import NullSpanHandler
from pydantic import Field, PrivateAttr

from llamaindex_avengers._convert import KEY, model_from_response, usage_from_response
from shared_core.usage import CallRecord, CostLedger, LedgerTotals, Usage

__all__ = ["CostEventHandler", "track_costs"]

_ROUTED_DEPTH: ContextVar[int] = ContextVar("avengers_routed_call_depth", default=0)
_ACTIVE: ContextVar[tuple[CostEventHandler, ...]] = ContextVar(
    "avengers_cost_handlers", default=()
)


@contextmanager
def inside_routed_call() -> Iterator[None]:
    """Marks LLM calls that AvengersLLM makes on a candidate object (they are accounted by the
    routed response, so cost handlers skip them)."""
    token = _ROUTED_DEPTH.set(_ROUTED_DEPTH.get() + 1)
    try:
        yield
    finally:
        _ROUTED_DEPTH.reset(token)


class _SpanParents(NullSpanHandler):
    """Remembers the parent of every open span, so that an LLM call made inside another LLM call
    (``CustomLLM.chat`` calls ``complete``; both fire LLM events) is counted once."""

    _parents: dict[str, str | None] = PrivateAttr(default_factory=dict)

    @classmethod
    def class_name(cls) -> str:
        return "AvengersSpanParents"

    def span_enter(self, id_: str, bound_args: Any, instance: Any = None,
                   parent_id: str | None = None, tags: Any = None, **kwargs: Any) -> None:
        self._parents[id_] = parent_id

    def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None,
                  **kwargs: Any) -> None:
        self._parents.pop(id_, None)

    def span_drop(self, id_: str, bound_args: Any, instance: Any = None,
                  err: BaseException | None = None, **kwargs: Any) -> None:
        self._parents.pop(id_, None)

    def ancestors(self, span_id: str) -> Iterator[str]:
        seen: set[str] = set()
        parent = self._parents.get(span_id)
        while parent is not None and parent not in seen:
            seen.add(parent)
            yield parent
            parent = self._parents.get(parent)


_install_lock = threading.Lock()
_span_parents: _SpanParents | None = None


def _spans() -> _SpanParents:
    """The process-wide span-parent tracker (registered on first use, not at import)."""
    global _span_parents
    with _install_lock:
        if _span_parents is None:
            from llama_index.core.instrumentation import get_dispatcher

            _span_parents = _SpanParents()
            get_dispatcher().add_span_handler(_span_parents)
        return _span_parents


class CostEventHandler(LedgerTotals, BaseEventHandler):
    """Totals tokens and dollars per model over every LLM call it sees.

    Add it to a dispatcher for global accounting, or use :func:`track_costs` for one block.
    Thread- and task-safe (it records into a :class:`~shared_core.usage.CostLedger`).

    Example:
        >>> from llama_index.core.instrumentation import get_dispatcher
        >>> from llamaindex_avengers import CostEventHandler
        >>> handler = CostEventHandler()
        >>> get_dispatcher().add_event_handler(handler)  # doctest: +SKIP
        >>> handler.total_cost, handler.successful_requests
        (0.0, 0)
    """

    ledger: CostLedger = Field(default_factory=CostLedger, exclude=True,
                               description="Every counted call, routed or not.")
    unaccounted_calls: int = Field(default=0, description="Calls that reported no token usage.")

    _open_calls: dict[str, tuple[str | None, bool]] = PrivateAttr(default_factory=dict)
    """span id of an LLM call seen starting -> (model name, nested in another LLM call)."""
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any) -> None:
        _spans()  # track span parents from now on

    @classmethod
    def class_name(cls) -> str:
        return "AvengersCostEventHandler"

    # ------------------------------------------------------------------ events
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, LLMChatStartEvent | LLMCompletionStartEvent):
            if not _ROUTED_DEPTH.get() and event.span_id:
                name = (event.model_dict or {}).get("model_name")
                name = name if isinstance(name, str) and name and name != "unknown" else None
                with self._lock:
                    nested = any(a in self._open_calls for a in _spans().ancestors(event.span_id))
                    self._open_calls[event.span_id] = (name, nested)
        elif isinstance(event, LLMChatEndEvent | LLMCompletionEndEvent):
            with self._lock:
                span_model, nested = self._open_calls.pop(event.span_id or "", (None, False))
            if event.response is not None and not nested:
                self._on_response(event.response, span_model)
        elif isinstance(event, SpanDropEvent | ExceptionEvent):
            with self._lock:  # a call that failed: no end event will come
                self._open_calls.pop(event.span_id or "", None)

    def _on_response(self, response: Any, span_model: str | None) -> None:
        meta = (getattr(response, "additional_kwargs", None) or {}).get(KEY)
        if isinstance(meta, Mapping) and "cost_usd" in meta:
            self.ledger.record(_routed_record(meta))
            return
        if _ROUTED_DEPTH.get():
            return  # a candidate object called by AvengersLLM: its routed response counts it
        usage = usage_from_response(response)
        model = model_from_response(response) or span_model
        if usage is None or not model:
            with self._lock:
                self.unaccounted_calls += 1
            return
        from shared_core.pricing import cost

        self.ledger.record(CallRecord(model=model, usage=usage, cost_usd=cost(usage, model),
                                      routed=False, reason="not routed"))

    # ------------------------------------------------------------------ totals
    @property
    def successful_requests(self) -> int:
        """Counted calls (routed or not)."""
        return len(self.ledger)

    def reset(self) -> None:
        """Forget every call counted so far."""
        self.ledger = CostLedger()
        with self._lock:
            self.unaccounted_calls = 0
            self._open_calls.clear()


def _routed_record(meta: Mapping[str, Any]) -> CallRecord:
    usage = meta.get("usage")
    return CallRecord(
        model=str(meta.get("model")),
        usage=Usage(**usage) if isinstance(usage, Mapping) else Usage(),
        cost_usd=meta.get("cost_usd"),
        spec=str(meta.get("spec") or ""),
        latency_s=float(meta.get("latency_s") or 0.0),
        alpha=meta.get("alpha"),
        cluster=meta.get("cluster"),
        reason=str(meta.get("reason") or "routed"),
        attempts=tuple(tuple(a) for a in meta.get("attempts") or ()),  # type: ignore[misc]
    )


class _Relay(BaseEventHandler):
    """Forwards events to the handlers of the active :func:`track_costs` blocks."""

    @classmethod
    def class_name(cls) -> str:
        return "AvengersCostRelay"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        for handler in _ACTIVE.get():
            handler.handle(event, **kwargs)


_relay: _Relay | None = None


def _install_relay() -> None:
    global _relay
    with _install_lock:
        if _relay is None:
            from llama_index.core.instrumentation import get_dispatcher

            _relay = _Relay()
            get_dispatcher().add_event_handler(_relay)


@contextmanager
def track_costs(handler: CostEventHandler | None = None) -> Iterator[CostEventHandler]:
    """Count the LLM calls made in this block (and in asyncio tasks it starts).

    Blocks nest: a call inside an inner block counts in the outer block's handler too. The
    block follows the context (``contextvars``): calls in asyncio tasks started inside it are
    counted, calls in threads that do not copy the context are not; for process-wide totals add a
    :class:`CostEventHandler` to the root dispatcher instead.

    Example:
        >>> from llamaindex_avengers import track_costs
        >>> with track_costs() as costs:
        ...     pass  # run query engines and agents here
        >>> costs.total_cost
        0.0
    """
    handler = handler if handler is not None else CostEventHandler()
    _install_relay()
    token = _ACTIVE.set((*_ACTIVE.get(), handler))
    try:
        yield handler
    finally:
        _ACTIVE.reset(token)
