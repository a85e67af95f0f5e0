"""Cost accounting across a LangChain run: a callback handler and ``get_avengers_callback()``.

The handler totals tokens and dollars of every chat-model call in a chain or agent run (streamed,
async, batched and nested), in the style of ``get_openai_callback()``:

* routed calls (``AvengersChatModel``) carry their cost in ``response_metadata["cost_usd"]``,
  computed once by the core from the provider's usage and the price table;
* calls to ordinary LangChain chat models are priced from their ``usage_metadata`` and model
  name (``response_metadata["model_name"]``, else the run's ``ls_model_name``) through
  :func:`shared_core.pricing.cost`; an unknown price counts as unpriced (with a warning), a call
  without usage as unmetered. Neither is ever counted as zero dollars silently.

Example:
    >>> from langchain_avengers import AvengersChatModel, get_avengers_callback
    >>> llm = AvengersChatModel(alpha=0.7)
    >>> with get_avengers_callback() as cb:  # doctest: +SKIP
    ...     llm.invoke("What is 2 + 2?")
    ...     print(cb)                                  # tokens, requests, USD
    ...     print(cb.summary(baseline="openai:gpt-4.1"))  # per model, and what routing saved
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from langchain_avengers._convert import ROUTER_MODEL_KEY, from_usage_metadata
from langchain_avengers.chat_models import INNER_RUN_TAG
from shared_core.pricing import cost as price
from shared_core.usage import CallRecord, CostLedger, LedgerTotals, Usage

__all__ = ["AvengersCostCallbackHandler", "get_avengers_callback"]


class AvengersCostCallbackHandler(LedgerTotals, BaseCallbackHandler):
    """Totals tokens and USD of every chat-model call it sees; safe across threads and tasks.

    Attributes mirror ``OpenAICallbackHandler`` (``total_tokens``, ``prompt_tokens``,
    ``completion_tokens``, ``successful_requests``, ``total_cost``); :attr:`ledger` keeps each
    call as a :class:`~shared_core.usage.CallRecord` (``routed=False`` for plain models).

    Example:
        >>> handler = AvengersCostCallbackHandler()
        >>> handler.total_cost, handler.successful_requests
        (0.0, 0)
        >>> # chain.invoke(inputs, config={"callbacks": [handler]})
    """

    raise_error: bool = False
    run_inline: bool = True

    def __init__(self, parent: AvengersCostCallbackHandler | None = None) -> None:
        super().__init__()
        self.ledger = CostLedger()
        """Every call seen, in completion order."""
        self.unmetered_requests = 0
        """Calls that reported no token usage (not in the totals)."""
        self._parent = parent
        self._lock = threading.Lock()
        self._runs: dict[UUID, dict[str, Any]] = {}

    # ------------------------------------------------------------------ totals
    @property
    def successful_requests(self) -> int:
        return len(self.ledger) + self.unmetered_requests

    @property
    def unpriced_requests(self) -> int:
        """Calls whose model has no price in the table (not in :attr:`total_cost`)."""
        return self.unpriced_calls

    def __repr__(self) -> str:
        u = self.usage
        return (
            f"Tokens Used: {u.total_tokens}\n"
            f"\tPrompt Tokens: {u.input_tokens}\n"
            f"\t\tPrompt Tokens Cached: {u.cached_input_tokens}\n"
            f"\tCompletion Tokens: {u.output_tokens}\n"
            f"\t\tReasoning Tokens: {u.reasoning_tokens}\n"
            f"Successful Requests: {self.successful_requests}\n"
            f"Total Cost (USD): ${self.total_cost:.6f}"
            + (f" ({self.unpriced_requests} unpriced)" if self.unpriced_requests else "")
        )

    # ------------------------------------------------------------------ callbacks
    def _start(self, run_id: UUID, tags: list[str] | None, metadata: dict[str, Any] | None) -> None:
        meta = metadata or {}
        with self._lock:
            self._runs[run_id] = {
                "inner": INNER_RUN_TAG in (tags or ()),
                "model": meta.get("ls_model_name"),
            }

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        self._start(run_id, tags, metadata)

    def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
        tags: list[str] | None = None, metadata: dict[str, Any] | None = None, **kwargs: Any,
    ) -> None:
        self._start(run_id, tags, metadata)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, tags: list[str] | None = None, **kwargs: Any
    ) -> None:
        with self._lock:
            run = self._runs.pop(run_id, {})
        if run.get("inner") or INNER_RUN_TAG in (tags or ()):
            return  # a routed call served by a LangChain model: the routed run counts it
        for generations in response.generations:
            for gen in generations:
                rec = self._record_of(gen, run, response, run_id)
                if rec is None:
                    with self._lock:
                        self.unmetered_requests += 1
                else:
                    self.add(rec)

    def add(self, rec: CallRecord) -> None:
        """Count one call (also in the enclosing ``get_avengers_callback()``, if nested)."""
        self.ledger.record(rec)
        if self._parent is not None:
            self._parent.add(rec)

    @staticmethod
    def _record_of(gen: Any, run: dict[str, Any], response: LLMResult,
                   run_id: UUID) -> CallRecord | None:
        message = gen.message if isinstance(gen, ChatGeneration) else None
        meta = dict(message.response_metadata) if message is not None else {}
        usage_meta = getattr(message, "usage_metadata", None)
        if ROUTER_MODEL_KEY in meta:  # a routed call: the core priced it
            return CallRecord(
                model=meta[ROUTER_MODEL_KEY], usage=from_usage_metadata(usage_meta),
                cost_usd=meta.get("cost_usd"), spec=meta.get("spec") or meta.get("model_name")
                or "", routed=True, alpha=meta.get("alpha"), cluster=meta.get("cluster"),
                reason=(meta.get("routing") or {}).get("reason", "routed"), run_id=str(run_id),
            )
        if usage_meta:
            usage = from_usage_metadata(usage_meta)
        else:  # legacy llm_output["token_usage"] (OpenAI-style)
            token_usage = (response.llm_output or {}).get("token_usage") or {}
            if not token_usage:
                return None
            usage = Usage(input_tokens=int(token_usage.get("prompt_tokens") or 0),
                          output_tokens=int(token_usage.get("completion_tokens") or 0))
        name = (meta.get("model_name") or meta.get("model")
                or (response.llm_output or {}).get("model_name") or run.get("model") or "")
        cost_usd = price(usage, str(name)) if name else None
        return CallRecord(model=str(name) or "<unknown model>", usage=usage, cost_usd=cost_usd,
                          spec=str(name), routed=False, reason="not routed", run_id=str(run_id))


_current: ContextVar[AvengersCostCallbackHandler | None] = ContextVar(
    "avengers_cost_callback", default=None
)
register_configure_hook(_current, inheritable=True)


@contextmanager
def get_avengers_callback() -> Iterator[AvengersCostCallbackHandler]:
    """Count every chat-model call made inside the ``with`` block (threads and tasks started
    in it included). Nested blocks each count their own calls, and the outer one counts the
    inner block's calls too.

    Example:
        >>> with get_avengers_callback() as cb:  # doctest: +SKIP
        ...     agent.invoke({"messages": [("user", "Weather in Paris?")]})
        >>> cb.total_cost, cb.total_tokens, cb.by_model()  # doctest: +SKIP
    """
    handler = AvengersCostCallbackHandler(parent=_current.get())
    token = _current.set(handler)
    try:
        yield handler
    finally:
        _current.reset(token)
