"""Routed chat: pick a model for a conversation, call it (with fallback), account for it.

:class:`RoutedChat` is the one piece both framework adapters sit on. It

* loads the router lazily (the default router when none is given, see
  :mod:`shared_core.defaults`) and maps its model names to targets: a ``"provider:model"`` spec
  (from ``models=`` or the router file's ``model_specs``) or a framework model object that the
  adapter calls itself;
* decides (:meth:`RoutedChat.select`): forced model > pinned tool exchange > budget > router, with
  capability filters (tools, vision, structured output) and exclusions;
* calls spec targets through the providers with fallback to the next-ranked model when a call
  fails before producing output, and records every call in a :class:`~shared_core.usage.CostLedger`.

Example:
    >>> from shared_core.engine import RoutedChat
    >>> from shared_core.messages import Message
    >>> chat = RoutedChat("router.json", alpha=0.7)  # doctest: +SKIP
    >>> chat.select([Message.user("Prove that sqrt(2) is irrational")]).model  # doctest: +SKIP
    'gpt-4-1106-preview'
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shared_core._errors import (
    BudgetExceededError,
    ConfigurationError,
    QueryError,
    RouterFileError,
    UnknownModelError,
)
from shared_core.defaults import default_router_path
from shared_core.messages import ChatRequest, ChatResponse, Message, StreamEnd, StreamEvent
from shared_core.router import Router, RoutingDecision
from shared_core.usage import Budget, CallRecord, CostLedger, Usage

Feature = Literal["tools", "vision", "structured_output"]
RouteOn = Literal["last_user", "user_turns", "conversation"]


@dataclass(frozen=True)
class Selection:
    """Which model a call goes to, the fallback order, and why.

    ``reason`` is ``"routed"``, ``"pinned"`` (continuing a tool exchange), ``"forced"`` (a per-call
    override) or ``"budget-downgrade"``.
    """

    model: str
    ranking: tuple[str, ...]
    reason: str
    alpha: float | None = None
    decision: RoutingDecision | None = None
    target: Any = None

    @property
    def spec(self) -> str:
        return self.target if isinstance(self.target, str) else ""

    def metadata(self) -> dict[str, Any]:
        """JSON-ready facts for a response's metadata."""
        meta: dict[str, Any] = {
            "model": self.model,
            "spec": self.spec or None,
            "reason": self.reason,
            "alpha": self.alpha,
            "ranking": list(self.ranking),
        }
        if self.decision is not None:
            d = self.decision.to_dict()
            meta.update(
                cluster=d["clusters"][0],
                clusters=d["clusters"],
                distances=d["distances"],
                margin=d["margin"],
                scores={m: c["score"] for m, c in d["candidates"].items()},
            )
        return meta


@dataclass(frozen=True)
class RoutedResponse:
    """A provider response together with the selection that produced it and failed attempts."""

    response: ChatResponse
    selection: Selection
    served_by: str
    attempts: tuple[tuple[str, float | None, str], ...] = ()
    latency_s: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)


def query_text(messages: Sequence[Message], route_on: RouteOn = "last_user") -> str:
    """The text the router embeds: the latest user turn (default), all user turns, or the
    whole conversation (system prompts excluded)."""
    if route_on == "last_user":
        for m in reversed(messages):
            if m.role == "user" and m.text.strip():
                return m.text
        route_on = "conversation"  # no user text at all: use what there is
    roles = ("user",) if route_on == "user_turns" else ("user", "assistant", "tool")
    return "\n".join(m.text for m in messages if m.role in roles and m.text.strip())


def pinned_model(messages: Sequence[Message]) -> str | None:
    """The model that made the tool calls whose results end the conversation, if any.

    Within one tool exchange (an assistant message with tool calls, the tool results, the next
    assistant message) the model stays the same; a new user turn is routed afresh.
    """
    if not messages or messages[-1].role != "tool":
        return None
    for m in reversed(messages):
        if m.role == "assistant" and m.tool_calls:
            return m.model
        if m.role == "user":
            return None
    return None


class RoutedChat:
    """Routes chat requests among real models and accounts for every call.

    Args:
        router: a :class:`Router`, a router file path, or ``None`` for the default router
            (``AVENGERS_ROUTER``, else ``~/.config/avengers-router/router.json``). Loaded on
            first use, not at construction.
        models: router model name -> ``"provider:model"`` spec or a framework model object,
            added to the router file's ``model_specs`` (an entry here wins). Only models with a
            target are candidates; narrow further per call with ``select(allowed=...)``.
        alpha: default trade-off (1 = accuracy first, 0 = cheapest); default: the router's.
        ledger: where calls are recorded (a fresh :class:`CostLedger` by default).
        budget: an optional :class:`Budget`; it follows the ledger's spend.
        route_on: what text is routed (see :func:`query_text`).
        max_fallbacks: how many next-ranked models to try when a call fails before output.
        provider_options: ``api_key``, ``base_url``, ``timeout``, ``max_retries`` for providers;
            per-model overrides under ``per_model={"name": {...}}``.

    Example:
        >>> from shared_core import Router, load_data
        >>> router = Router(n_clusters=8).fit(load_data("../shared/data/routerbench/train.jsonl"))
        >>> specs = {"gpt-4-1106-preview": "openai:gpt-4.1",
        ...          "mistralai/mistral-7b-chat": "google:gemini-2.5-flash-lite"}
        >>> chat = RoutedChat(router, models=specs)  # no I/O, no key needed to decide
        >>> chat.select([Message.user("Say hi")], alpha=0.0).spec  # the dry run: cheapest
        'google:gemini-2.5-flash-lite'
        >>> result = chat.chat(ChatRequest(messages=(Message.user("hi"),)))  # doctest: +SKIP
        >>> result.served_by, result.response.cost_usd  # doctest: +SKIP
    """

    def __init__(
        self,
        router: Router | str | os.PathLike[str] | None = None,
        *,
        models: Mapping[str, Any] | None = None,
        alpha: float | None = None,
        ledger: CostLedger | None = None,
        budget: Budget | None = None,
        route_on: RouteOn = "last_user",
        max_fallbacks: int = 2,
        provider_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._router_arg = router
        self._router: Router | None = router if isinstance(router, Router) else None
        self._models_arg = dict(models) if models else None
        self.alpha = alpha
        self.ledger = ledger if ledger is not None else CostLedger()
        self.budget = budget
        if budget is not None:
            self.ledger.subscribe(budget)
        self.route_on: RouteOn = route_on
        self.max_fallbacks = max_fallbacks
        self.provider_options = dict(provider_options or {})
        self._providers: dict[str, Any] = {}
        self._targets: dict[str, Any] | None = None

    # ------------------------------------------------------------------ set-up
    @property
    def router(self) -> Router:
        if self._router is None:
            arg = self._router_arg
            path = default_router_path() if arg is None or isinstance(arg, Router) else Path(arg)
            if not path.exists():
                raise RouterFileError(
                    f"no router file at {path}. Fit one with `avengers fit DATA -o {path} "
                    "--models MAP`, set AVENGERS_ROUTER, or pass router=..."
                )
            self._router = Router.load(path)
        return self._router

    @property
    def targets(self) -> dict[str, Any]:
        """Router model name -> spec string or framework object (only models with a target)."""
        if self._targets is None:
            router = self.router
            targets: dict[str, Any] = dict(router.model_specs)
            if self._models_arg:
                unknown = [m for m in self._models_arg if m not in router.models_]
                if unknown:
                    raise UnknownModelError(unknown[0], router.models_, "router model")
                targets.update(self._models_arg)
            if not targets:
                raise ConfigurationError(
                    "the router file records no provider spec for its models and models= was "
                    f"not given; map some of {', '.join(router.models_)} to specs such as "
                    "'openai:gpt-4.1-mini' (models={...} or `avengers fit ... --models MAP`)"
                )
            for t in targets.values():
                if isinstance(t, str):
                    from shared_core.providers import parse_spec

                    parse_spec(t)  # a bad spec fails here, naming the known providers
            self._targets = targets
        return self._targets

    def supports(self, model: str, feature: Feature) -> bool:
        """Whether ``model``'s target supports ``feature``."""
        target = self.targets[model]
        if isinstance(target, str):
            from shared_core.providers import model_info

            return bool(getattr(model_info(target), feature))
        return self._object_supports(target, feature)

    def _object_supports(self, target: Any, feature: Feature) -> bool:
        """Capabilities of framework objects; adapters override this."""
        return True

    def provider(self, model: str) -> Any:
        """The (cached) :class:`ChatProvider` for a model with a spec target."""
        prov = self._providers.get(model)
        if prov is None:
            spec = self.targets[model]
            if not isinstance(spec, str):
                raise ConfigurationError(
                    f"model {model!r} is served by a framework object, not a spec"
                )
            from shared_core.providers import get_provider

            opts = {k: v for k, v in self.provider_options.items() if k != "per_model"}
            opts.update(self.provider_options.get("per_model", {}).get(model, {}))
            prov = get_provider(spec, **opts)
            self._providers[model] = prov
        return prov

    # ---------------------------------------------------------------- deciding
    def select(
        self,
        messages: Sequence[Message],
        *,
        alpha: float | None = None,
        force: str | None = None,
        exclude: Sequence[str] = (),
        allowed: Sequence[str] | None = None,
        need: Sequence[Feature] = (),
    ) -> Selection:
        """Decide which model serves ``messages`` (see the module docstring for the order)."""
        targets = self.targets
        known = tuple(self.router.models_)
        for m in (*exclude, *(allowed or ()), *([force] if force else [])):
            if m not in known:
                raise UnknownModelError(m, known, "router model")
        candidates = [
            m
            for m in known
            if m in targets
            and m not in exclude
            and (allowed is None or m in allowed)
            and all(self.supports(m, f) for f in need)
        ]
        if not candidates:
            raise ConfigurationError(
                f"no candidate model can serve this call (needs {list(need) or 'nothing'}, "
                f"excluded {list(exclude)}); models with targets: {', '.join(targets)}"
            )
        alpha = self.alpha if alpha is None else alpha
        alpha = self.router.default_alpha if alpha is None else float(alpha)

        def ranked(
            first: str, reason: str, a: float | None, decision: RoutingDecision | None
        ) -> Selection:
            order = list(decision.ranking) if decision is not None else []
            rest = [m for m in order if m != first and m in candidates]
            rest += [m for m in candidates if m != first and m not in rest]
            ranking = (first, *rest[: self.max_fallbacks])
            return Selection(first, ranking, reason, a, decision, targets[first])

        if force:
            if force not in targets:
                raise ConfigurationError(
                    f"forced model {force!r} has no target; "
                    f"models with targets: {', '.join(targets)}"
                )
            return ranked(force, "forced", None, None)
        pin = pinned_model(messages)
        if pin is not None and pin in candidates:
            return ranked(pin, "pinned", None, None)
        reason = "routed"
        if self.budget is not None:
            if self.budget.exhausted:
                if self.budget.on_exceed == "raise":
                    raise BudgetExceededError(
                        f"budget of ${self.budget.limit_usd:g} is spent (${self.budget.spent:.6f})"
                    )
                alpha, reason = 0.0, "budget-downgrade"
            else:
                alpha = self.budget.effective_alpha(alpha)
        text = query_text(messages, self.route_on)
        if not text.strip():
            raise QueryError("nothing to route on: the conversation has no text")
        decision = self.router.route(text, alpha, allowed=candidates)
        return ranked(decision.model, reason, alpha, decision)

    # ----------------------------------------------------------------- calling
    def record(
        self,
        selection: Selection,
        *,
        model: str,
        usage: Usage,
        cost_usd: float | None,
        spec: str = "",
        latency_s: float = 0.0,
        attempts: Sequence[tuple[str, float | None, str]] = (),
        run_id: str | None = None,
    ) -> CallRecord:
        """Record one served call in the ledger (adapters call this for object targets)."""
        rec = CallRecord(
            model=model,
            usage=usage,
            cost_usd=cost_usd,
            spec=spec,
            latency_s=latency_s,
            alpha=selection.alpha,
            cluster=selection.decision.cluster if selection.decision else None,
            reason=selection.reason,
            run_id=run_id,
            attempts=tuple(attempts),
        )
        self.ledger.record(rec)
        return rec

    def _spec_chain(self, selection: Selection) -> list[str]:
        chain = []
        for m in selection.ranking:
            if not isinstance(self.targets[m], str):
                break  # framework objects are the adapter's to call
            chain.append(m)
        if not chain:
            raise ConfigurationError(
                f"model {selection.model!r} is a framework object; the adapter calls it"
            )
        return chain

    def _finish(
        self, selection: Selection, result: Any, chain: list[str], t0: float
    ) -> RoutedResponse:
        served_spec = result.served_by
        served = next(m for m in chain if self.targets[m] == served_spec)
        attempts = tuple(
            (a.spec, a.cost_usd, str(a.error)) for a in result.attempts if a.error is not None
        )
        latency = time.perf_counter() - t0
        resp = result.response
        self.record(
            selection,
            model=served,
            usage=resp.usage,
            cost_usd=resp.cost_usd,
            spec=served_spec,
            latency_s=latency,
            attempts=attempts,
        )
        meta = {
            **selection.metadata(),
            "model": served,
            "spec": served_spec,
            "cost_usd": resp.cost_usd,
            "fallback_attempts": [a[0] for a in attempts],
        }
        return RoutedResponse(resp, selection, served, attempts, latency, meta)

    def chat(
        self, request: ChatRequest, selection: Selection | None = None, **select_kwargs: Any
    ) -> RoutedResponse:
        """Select (unless given) and call, falling back down the ranking on early failure."""
        from shared_core.providers import call_with_fallback

        selection = selection or self.select(request.messages, **select_kwargs)
        chain = self._spec_chain(selection)
        t0 = time.perf_counter()
        result = call_with_fallback([self.provider(m) for m in chain], request)
        return self._finish(selection, result, chain, t0)

    async def achat(
        self, request: ChatRequest, selection: Selection | None = None, **select_kwargs: Any
    ) -> RoutedResponse:
        """Async :meth:`chat`."""
        from shared_core.providers import acall_with_fallback

        selection = selection or self.select(request.messages, **select_kwargs)
        chain = self._spec_chain(selection)
        t0 = time.perf_counter()
        result = await acall_with_fallback([self.provider(m) for m in chain], request)
        return self._finish(selection, result, chain, t0)

    def _stream_end(
        self,
        selection: Selection,
        chain: list[str],
        event: StreamEnd,
        t0: float,
        failed: Sequence[Any],
    ) -> RoutedResponse:
        resp = event.response
        served = next((m for m in chain if self.targets[m] == resp.spec), selection.model)
        latency = time.perf_counter() - t0
        # a stream only moves on before its first event: failed attempts cost nothing
        attempts = tuple((a.spec, a.cost_usd, str(a.error)) for a in failed)
        self.record(
            selection,
            model=served,
            usage=resp.usage,
            cost_usd=resp.cost_usd,
            spec=resp.spec,
            latency_s=latency,
            attempts=attempts,
        )
        meta = {
            **selection.metadata(),
            "model": served,
            "spec": resp.spec,
            "cost_usd": resp.cost_usd,
            "fallback_attempts": [a[0] for a in attempts],
        }
        return RoutedResponse(resp, selection, served, attempts, latency, meta)

    def stream(
        self, request: ChatRequest, selection: Selection | None = None, **select_kwargs: Any
    ) -> Iterator[StreamEvent | RoutedResponse]:
        """Stream events; the last item is the :class:`RoutedResponse` (after ``StreamEnd``)."""
        from shared_core.providers import stream_with_fallback

        selection = selection or self.select(request.messages, **select_kwargs)
        chain = self._spec_chain(selection)
        t0 = time.perf_counter()
        failed: list[Any] = []
        for event in stream_with_fallback([self.provider(m) for m in chain], request, failed):
            yield event
            if isinstance(event, StreamEnd):
                yield self._stream_end(selection, chain, event, t0, failed)

    async def astream(
        self, request: ChatRequest, selection: Selection | None = None, **select_kwargs: Any
    ) -> AsyncIterator[StreamEvent | RoutedResponse]:
        """Async :meth:`stream`."""
        from shared_core.providers import astream_with_fallback

        selection = selection or self.select(request.messages, **select_kwargs)
        chain = self._spec_chain(selection)
        t0 = time.perf_counter()
        failed: list[Any] = []
        providers = [self.provider(m) for m in chain]
        async for event in astream_with_fallback(providers, request, failed):
            yield event
            if isinstance(event, StreamEnd):
                yield self._stream_end(selection, chain, event, t0, failed)
