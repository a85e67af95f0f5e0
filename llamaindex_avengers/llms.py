"""``AvengersLLM``: a LlamaIndex ``FunctionCallingLLM`` that routes every call.

Each call is converted to core messages, :class:`~shared_core.engine.RoutedChat` picks the model
(Avengers-Pro routing, per-call overrides, tool-exchange pinning, budget, capability filters), the
model is called (a ``"provider:model"`` spec through the providers, or any LlamaIndex ``LLM``
given in ``models=``), and the answer comes back as a LlamaIndex response carrying the routing
facts under the ``"avengers"`` key.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM, ToolSelection
from pydantic import Field, PrivateAttr, SecretStr, field_serializer, field_validator

from llamaindex_avengers._convert import (
    KEY,
    model_from_response,
    route_text_of,
    to_core_messages,
    to_llama_message,
    tool_choice_of,
    tool_selections,
    tool_to_spec,
    usage_from_response,
    with_route_text,
    without_key,
)
from llamaindex_avengers.instrumentation import inside_routed_call
from shared_core._errors import AllModelsFailedError, UnknownModelError
from shared_core.engine import Feature, RoutedChat, RoutedResponse, Selection
from shared_core.messages import ChatRequest, ImagePart, Message, TextDelta
from shared_core.router import Router
from shared_core.usage import Budget, CostLedger, Usage

if TYPE_CHECKING:
    from llama_index.core.prompts import BasePromptTemplate
    from llama_index.core.tools.types import BaseTool

__all__ = ["AvengersLLM"]

_ROUTING_KWARGS = ("alpha", "force", "model", "exclude", "allowed")
_DROPPED_KWARGS = ("formatted",)  # LlamaIndex-internal flags no model takes
_ENGINE_FIELDS = ("router", "models", "ledger", "budget", "route_on", "max_fallbacks",
                  "provider_options", "api_key", "base_url", "timeout", "max_retries")


class _LlamaIndexRoutedChat(RoutedChat):
    """The routing engine, told what LlamaIndex LLM objects can do."""

    def _object_supports(self, target: Any, feature: Feature) -> bool:
        if feature == "tools":
            return isinstance(target, FunctionCallingLLM) and bool(
                target.metadata.is_function_calling_model
            )
        # LlamaIndex metadata does not say; the model catalog does for models it knows.
        from shared_core.pricing import model_info

        info = model_info(target.metadata.model_name)
        return info.known and bool(getattr(info, feature))


@dataclass
class _Call:
    """One prepared call: the LlamaIndex input, its core form, the decision and the request."""

    messages: list[ChatMessage]
    selection: Selection
    request: ChatRequest
    tools: list[Any] = field(default_factory=list)
    tool_kwargs: dict[str, Any] = field(default_factory=dict)
    passthrough: dict[str, Any] = field(default_factory=dict)
    failures: list[tuple[str, BaseException]] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)


_END: Any = object()  # after the last chunk of a LlamaIndex LLM object's stream


def _scoped(gen: Iterator[ChatResponse]) -> Iterator[Any]:
    """A LlamaIndex LLM object's stream, each step taken inside :func:`inside_routed_call`
    (so cost handlers do not count the inner call), then ``_END``."""
    while True:
        with inside_routed_call():
            inner = next(gen, _END)
        yield inner
        if inner is _END:
            return


async def _ascoped(gen: AsyncIterator[ChatResponse]) -> AsyncIterator[Any]:
    """Async :func:`_scoped`."""
    while True:
        with inside_routed_call():
            inner = await anext(gen, _END)
        yield inner
        if inner is _END:
            return


@dataclass
class _Try:
    """One step of a call's fallback plan, shared by the sync and async streams.

    As a context manager it records a failure raised before any output and lets the plan move on
    to the next step; after output, or at the last step, the failure is raised.
    """

    llm: AvengersLLM
    call: _Call
    step: Selection
    last: bool
    started: bool = False
    text: list[str] = field(default_factory=list)
    inner: ChatResponse | None = None

    def __enter__(self) -> _Try:
        return self

    def __exit__(self, exc_type: Any, e: BaseException | None, tb: Any) -> bool:
        if not isinstance(e, Exception) or self.started:
            return False
        self.llm._failed(self.call, self.step, e, self.last)
        return True  # fall back to the next step

    def items(self) -> Iterator[Any]:
        """What the step streams: engine events for a spec, else the object's chunks."""
        if isinstance(self.step.target, str):
            return self.llm.engine.stream(self.call.request, self.step)
        with inside_routed_call():
            return _scoped(self.llm._object_stream(self.call, self.step.target, False)())

    async def aitems(self) -> AsyncIterator[Any]:
        """Async :meth:`items`."""
        if isinstance(self.step.target, str):
            return self.llm.engine.astream(self.call.request, self.step)
        with inside_routed_call():
            gen = await self.llm._object_stream(self.call, self.step.target, True)()
        return _ascoped(gen)

    def chunks(self, item: Any) -> tuple[ChatResponse, ...]:
        """The LlamaIndex chunks for one streamed item (none for items not shown)."""
        if isinstance(item, ChatResponse):  # a LlamaIndex LLM object's chunk
            self.started, self.inner = True, item
            return (ChatResponse(message=item.message, delta=item.delta, raw=item.raw,
                                 logprobs=item.logprobs,
                                 additional_kwargs=dict(item.additional_kwargs)),)
        if item is _END:  # the object's stream is over: its last chunk holds the whole answer
            self.started = True
            return (self.llm._from_object(self.call, self.step, self.inner or ChatResponse(
                message=ChatMessage(role=MessageRole.ASSISTANT, content=""))),)
        if isinstance(item, TextDelta) and item.text:
            self.started = True
            self.text.append(item.text)
            return (ChatResponse(message=to_llama_message("".join(self.text)), delta=item.text),)
        if isinstance(item, RoutedResponse):  # after the engine's StreamEnd: the whole answer
            self.started = True
            return (self.llm._from_routed(self.call, item),)
        return ()  # tool-call fragments, usage and StreamEnd arrive whole in RoutedResponse


def _cost_of(usage: Usage | None, model_name: str | None) -> float | None:
    """The price of a LlamaIndex LLM object's call, when both usage and model are known."""
    if usage is None or not model_name or model_name == "unknown":
        return None
    from shared_core.pricing import cost

    return cost(usage, model_name)


class AvengersLLM(FunctionCallingLLM):
    """A LlamaIndex LLM that sends every call to the model the Avengers-Pro router picks.

    Use it anywhere a LlamaIndex ``LLM`` goes: ``Settings.llm``, query and chat engines,
    ``FunctionAgent``. Each response carries, under the key ``"avengers"`` in
    ``response.additional_kwargs``, in the assistant message's ``additional_kwargs`` and in
    ``response.raw``, the facts of the call: ``model`` (router name that served), ``spec``,
    ``reason`` (routed / pinned / forced / budget-downgrade), ``alpha``, ``cluster``, ``scores``,
    ``ranking``, ``usage`` (tokens by kind, ``None`` if the model reported none), ``cost_usd``
    (``None`` if unknown), ``latency_s`` and ``fallback_attempts``.

    Per-call keyword arguments (``chat``, ``complete``, streams and async forms): ``alpha=``
    (trade-off for this call), ``force=`` or ``model=`` (the model to use), ``exclude=`` /
    ``allowed=`` (models), ``temperature=``, ``max_tokens=``, ``stop=``, ``extra_body=`` (a dict
    passed through to the provider's request body). Models are named by
    router name, by spec (``"openai:gpt-4.1"``) or by provider model name (``"gpt-4.1"``).
    Candidates given as LlamaIndex LLM objects keep their own generation settings.

    Query engines and refine steps fill a prompt template with retrieved context; by default the
    router sees only the template's ``query_str`` (see ``route_on_query_str``).

    Within a tool exchange (tool results that answer an assistant message written by this LLM) the
    call stays on the model that made the tool calls; a new user turn is routed afresh.

    Example:
        >>> from llamaindex_avengers import AvengersLLM
        >>> llm = AvengersLLM(alpha=0.7)  # the default router, with its recorded model specs
        >>> r = llm.complete("Prove that sqrt(2) is irrational")  # doctest: +SKIP
        >>> facts = r.additional_kwargs["avengers"]  # doctest: +SKIP
        >>> facts["model"], facts["cost_usd"]  # doctest: +SKIP
        ('gpt-4-1106-preview', 0.00042)
        >>> llm.route("What is 2 + 2?").model  # dry run, no model is called  # doctest: +SKIP
        'mistralai/mistral-7b-chat'
    """

    router: Any = Field(
        default=None,
        description="A fitted Router, a router file path, or None for the default router "
        "(AVENGERS_ROUTER, else ~/.config/avengers-router/router.json); loaded on first use.",
    )
    alpha: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="Trade-off: 1 = accuracy first, 0 = cheapest first; None = the router's.",
    )
    models: dict[str, Any] | None = Field(
        default=None,
        description="Router model name -> 'provider:model' spec or a LlamaIndex LLM instance, "
        "added over the specs recorded in the router file.",
    )
    allowed_models: list[str] | None = Field(
        default=None,
        description="Route only among these router models (default: every model with a target).",
    )
    temperature: float | None = Field(default=None, description="Sampling temperature.")
    max_tokens: int | None = Field(default=None, gt=0, description="Maximum output tokens.")
    stop: list[str] | None = Field(default=None, description="Stop sequences.")
    timeout: float | None = Field(default=None, gt=0, description="Seconds per HTTP request.")
    max_retries: int = Field(default=2, ge=0, description="Retries per model on transient errors.")
    api_key: SecretStr | None = Field(
        default=None, exclude=True,
        description="API key for every spec's provider (default: each provider's environment "
        "variable). Never serialised.",
    )
    base_url: str | None = Field(
        default=None, description="Endpoint override for every spec's provider (gateways, stubs)."
    )
    provider_options: dict[str, Any] = Field(
        default_factory=dict, exclude=True,
        description="More provider options, e.g. per_model={'name': {'base_url': ...}}.",
    )
    budget: Budget | None = Field(
        default=None, exclude=True, description="A spending cap in USD (see shared_core.Budget)."
    )
    ledger: CostLedger | None = Field(
        default=None, exclude=True,
        description="Where every call is recorded (a fresh CostLedger by default).",
    )
    route_on: str = Field(
        default="last_user",
        description="Text the router embeds: last_user, user_turns or conversation.",
    )
    max_fallbacks: int = Field(
        default=2, ge=0, description="Next-ranked models to try when a call fails before output."
    )
    route_on_query_str: bool = Field(
        default=True,
        description="For prompt templates with a query_str (query engines, refine steps), route "
        "on the question itself rather than on the filled-in template with its context.",
    )

    _engine: RoutedChat | None = PrivateAttr(default=None)
    _engine_source: tuple[Any, ...] = PrivateAttr(default=())
    _engine_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if self.ledger is None:
            self.ledger = CostLedger()

    @classmethod
    def class_name(cls) -> str:
        return "AvengersLLM"

    @field_validator("router")
    @classmethod
    def _check_router(cls, v: Any) -> Any:
        if v is None or isinstance(v, Router | str | os.PathLike):
            return v
        raise ValueError(f"router must be a Router, a file path or None, not {type(v).__name__}")

    @field_validator("models")
    @classmethod
    def _check_models(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        for name, target in (v or {}).items():
            if not isinstance(target, str | LLM):
                raise ValueError(
                    f"models[{name!r}] must be a 'provider:model' spec or a LlamaIndex LLM, "
                    f"not {type(target).__name__}"
                )
        return v

    @field_validator("route_on")
    @classmethod
    def _check_route_on(cls, v: str) -> str:
        if v not in ("last_user", "user_turns", "conversation"):
            raise ValueError(f"route_on must be last_user, user_turns or conversation, not {v!r}")
        return v

    @field_serializer("router")
    def _ser_router(self, v: Any) -> str | None:
        return None if v is None or isinstance(v, Router) else os.fspath(v)

    @field_serializer("models")
    def _ser_models(self, v: dict[str, Any] | None) -> dict[str, str] | None:
        if v is None:
            return None
        return {k: t if isinstance(t, str) else t.class_name() for k, t in v.items()}

    # ------------------------------------------------------------------ engine and metadata
    @property
    def engine(self) -> RoutedChat:
        """The routing engine, created on first use (the router is loaded then) and again only
        if a field it is built from is replaced (e.g. by ``model_copy(update=...)``)."""
        source = tuple(getattr(self, name) for name in _ENGINE_FIELDS)
        with self._engine_lock:
            stale = len(source) != len(self._engine_source) or any(
                a is not b for a, b in zip(source, self._engine_source, strict=False))
            if self._engine is None or stale:
                opts: dict[str, Any] = {"max_retries": self.max_retries, **self.provider_options}
                for name in ("api_key", "base_url", "timeout"):
                    if getattr(self, name) is not None:
                        opts.setdefault(name, getattr(self, name))
                self._engine = _LlamaIndexRoutedChat(
                    self.router, models=self.models, alpha=self.alpha, ledger=self.ledger,
                    budget=self.budget, route_on=self.route_on,  # type: ignore[arg-type]
                    max_fallbacks=self.max_fallbacks, provider_options=opts,
                )
                self._engine_source = source
            return self._engine

    @property
    def metadata(self) -> LLMMetadata:
        """The truth about the candidates: the smallest context window among them, function
        calling only when every one supports it."""
        from shared_core.providers import model_info

        engine = self.engine
        targets = {m: t for m, t in engine.targets.items()
                   if self.allowed_models is None or m in self.allowed_models}
        windows = [
            model_info(t).context_window if isinstance(t, str) else t.metadata.context_window
            for t in targets.values()
        ]
        return LLMMetadata(
            context_window=min(windows, default=DEFAULT_CONTEXT_WINDOW),
            num_output=self.max_tokens or -1,
            is_chat_model=True,
            is_function_calling_model=bool(targets)
            and all(engine.supports(m, "tools") for m in targets),
            model_name="avengers-router",
        )

    # ------------------------------------------------------------------ deciding
    def _resolve(self, name: str) -> str:
        """A router model name for ``name``: a router model, a target spec, or a provider model
        name (``"claude-haiku-4-5"`` matches ``"anthropic:claude-haiku-4-5"``)."""
        engine = self.engine
        if name in engine.router.models_:
            return name
        for router_name, target in engine.targets.items():
            label = target if isinstance(target, str) else target.metadata.model_name
            if name in (label, label.partition(":")[2]):
                return router_name
        specs = [t for t in engine.targets.values() if isinstance(t, str)]
        raise UnknownModelError(name, [*engine.router.models_, *specs], "model")

    def _select(self, core: Sequence[Message], routing: Mapping[str, Any],
                need: Sequence[Feature]) -> Selection:
        def names(value: Any) -> tuple[str, ...] | None:
            if value is None:
                return None
            return tuple(self._resolve(m) for m in ((value,) if isinstance(value, str) else value))

        force = routing.get("force") or routing.get("model")
        return self.engine.select(
            core,
            alpha=routing.get("alpha", self.alpha),
            force=self._resolve(force) if force else None,
            exclude=names(routing.get("exclude")) or (),
            allowed=names(routing.get("allowed", self.allowed_models)),
            need=need,
        )

    def _prepare(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> _Call:
        """Pop our keyword arguments, convert, decide, and build the core request."""
        kwargs = dict(kwargs)
        routing = {k: kwargs.pop(k) for k in _ROUTING_KWARGS if k in kwargs}
        tools = list(kwargs.pop("tools", None) or ())
        tool_required = bool(kwargs.pop("tool_required", False))
        tool_choice = kwargs.pop("tool_choice", None)
        parallel = kwargs.pop("allow_parallel_tool_calls", None)
        for k in _DROPPED_KWARGS:
            kwargs.pop(k, None)
        temperature = kwargs.pop("temperature", self.temperature)
        max_tokens = kwargs.pop("max_tokens", self.max_tokens)
        stop = kwargs.pop("stop", None) or self.stop or ()
        extra = dict(kwargs.pop("extra_body", None) or {})

        core = to_core_messages(messages)
        need: list[Feature] = ["tools"] if tools else []
        if any(isinstance(p, ImagePart) for m in core for p in m.parts):
            need.append("vision")
        route_text = route_text_of(messages)
        selection = self._select([Message.user(route_text)] if route_text else core, routing, need)
        choice = tool_choice_of(tool_choice, tool_required) if tools else None
        request = ChatRequest(
            messages=tuple(core),
            tools=tuple(tool_to_spec(t) for t in tools),
            tool_choice=choice,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=tuple([stop] if isinstance(stop, str) else stop),
            extra=extra,
        )
        tool_kwargs: dict[str, Any] = {"tool_required": tool_required}
        if parallel is not None:
            tool_kwargs["allow_parallel_tool_calls"] = parallel
        if tool_choice is not None:
            tool_kwargs["tool_choice"] = tool_choice
        return _Call(without_key(messages), selection, request, tools, tool_kwargs, kwargs)

    def route(self, messages: str | Sequence[ChatMessage], **kwargs: Any) -> Selection:
        """Dry run: the decision for ``messages`` (a prompt or chat messages), calling no model.

        Takes the same per-call keyword arguments as :meth:`chat` (``alpha``, ``force``,
        ``exclude``, ``allowed``, ``tools``). ``Selection.metadata()`` gives the JSON-ready facts.
        """
        if isinstance(messages, str):
            messages = [ChatMessage(role=MessageRole.USER, content=messages)]
        return self._prepare(messages, kwargs).selection

    def _get_messages(self, prompt: BasePromptTemplate, **prompt_args: Any) -> list[ChatMessage]:
        """LlamaIndex's prompt formatting, plus what to route on (see ``route_on_query_str``)."""
        messages = super()._get_messages(prompt, **prompt_args)
        query = prompt_args.get("query_str")
        for template in (prompt, getattr(prompt, "default_template", None)):
            if query is None:  # response synthesizers fill query_str in with partial_format
                query = (getattr(template, "kwargs", None) or {}).get("query_str")
        if self.route_on_query_str and isinstance(query, str) and query.strip():
            messages = with_route_text(messages, query)
        return messages

    # ------------------------------------------------------------------ fallback plan
    def _steps(self, selection: Selection) -> list[Selection]:
        """The tries in ranking order: a run of spec targets is one try (the engine falls back
        within it), each LlamaIndex LLM object is one try."""
        targets = self.engine.targets
        ranking = selection.ranking
        steps: list[Selection] = []
        i = 0
        while i < len(ranking):
            name = ranking[i]
            steps.append(replace(selection, model=name, ranking=ranking[i:], target=targets[name]))
            i += 1
            if isinstance(targets[name], str):
                while i < len(ranking) and isinstance(targets[ranking[i]], str):
                    i += 1
        return steps

    @staticmethod
    def _failed(call: _Call, step: Selection, e: BaseException, last: bool) -> None:
        if isinstance(e, AllModelsFailedError):
            call.failures.extend((spec, err) for spec, err in e.attempts)
        else:
            call.failures.append((step.spec or step.model, e))
        if last:
            if len(call.failures) == 1:
                raise e
            raise AllModelsFailedError(call.failures) from e

    def _attempts(self, call: _Call, extra: Sequence[tuple[str, float | None, str]] = ()
                  ) -> list[tuple[str, float | None, str]]:
        return [(name, 0.0, str(err)) for name, err in call.failures] + list(extra)

    # ------------------------------------------------------------------ responses
    @staticmethod
    def _meta(base: Mapping[str, Any], usage: Usage | None,
              cost_usd: float | None, latency_s: float,
              attempts: Sequence[tuple[str, float | None, str]]) -> dict[str, Any]:
        meta = dict(base)
        meta.update(
            usage=usage.to_dict() if usage is not None else None,
            cost_usd=cost_usd,
            latency_s=latency_s,
            fallback_attempts=[a[0] for a in attempts],
            attempts=[list(a) for a in attempts],
        )
        return meta

    def _from_routed(self, call: _Call, rr: RoutedResponse) -> ChatResponse:
        """A LlamaIndex response from the engine's answer for a spec target."""
        attempts = self._attempts(call, rr.attempts)
        resp = rr.response
        meta = self._meta(rr.metadata, resp.usage, resp.cost_usd, rr.latency_s, attempts)
        raw = {**resp.raw, KEY: meta} if isinstance(resp.raw, Mapping) else {KEY: meta}
        return ChatResponse(
            message=to_llama_message(resp.text, resp.tool_calls, meta),
            raw=raw, delta="", additional_kwargs={KEY: meta},
        )

    def _from_object(self, call: _Call, step: Selection, inner: ChatResponse) -> ChatResponse:
        """A LlamaIndex response from a LlamaIndex LLM object's answer; records the call."""
        target: LLM = step.target
        usage = usage_from_response(inner)
        model_name = model_from_response(inner) or target.metadata.model_name
        cost_usd = _cost_of(usage, model_name)
        latency = time.perf_counter() - call.t0
        attempts = self._attempts(call)
        self.engine.record(step, model=step.model, usage=usage or Usage(), cost_usd=cost_usd,
                           latency_s=latency, attempts=attempts)
        base = {**step.metadata(), "reason": call.selection.reason,
                "ranking": list(call.selection.ranking), "spec": None,
                "target": target.class_name(), "target_model": model_name}
        meta = self._meta(base, usage, cost_usd, latency, attempts)
        message = inner.message.model_copy(deep=True)
        message.additional_kwargs[KEY] = meta
        raw = inner.raw
        if isinstance(raw, Mapping):
            raw = {**raw, KEY: meta}
        else:
            raw = {KEY: meta, "raw": raw}
        return ChatResponse(message=message, raw=raw, delta="",
                            logprobs=inner.logprobs, additional_kwargs={KEY: meta})

    def _object_kwargs(self, call: _Call) -> dict[str, Any]:
        if call.tools:
            return {"chat_history": call.messages, **call.tool_kwargs, **call.passthrough}
        return dict(call.passthrough)

    # ------------------------------------------------------------------ calling
    def _tries(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> list[_Try]:
        """The fallback plan of one call: prepare it, then one :class:`_Try` per step."""
        call = self._prepare(messages, kwargs)
        steps = self._steps(call.selection)
        return [_Try(self, call, step, last=i == len(steps) - 1) for i, step in enumerate(steps)]

    def _object_stream(self, call: _Call, target: Any, asynchronous: bool) -> Callable[[], Any]:
        """The streaming call on a LlamaIndex LLM object (with tools when the call has them)."""
        if call.tools:
            fn = target.astream_chat_with_tools if asynchronous else target.stream_chat_with_tools
            return partial(fn, call.tools, **self._object_kwargs(call))
        fn = target.astream_chat if asynchronous else target.stream_chat
        return partial(fn, call.messages, **self._object_kwargs(call))

    # The fallback loop lives only in the two streams (sync and async differ only in how they
    # iterate); the non-streaming forms return a stream's final response, which carries the
    # whole message, the usage and the routing facts.
    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        for t in self._tries(messages, kwargs):
            with t:
                for item in t.items():
                    yield from t.chunks(item)
                return

    async def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any
                            ) -> ChatResponseAsyncGen:
        for t in self._tries(messages, kwargs):
            with t:
                async for item in await t.aitems():
                    for chunk in t.chunks(item):
                        yield chunk
                return

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return deque(self._stream_chat(messages, **kwargs), maxlen=1)[0]

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        async for last in self._astream_chat(messages, **kwargs):  # noqa: B007 - the final one
            pass
        return last

    # ------------------------------------------------------------------ LlamaIndex API
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return chat_to_completion_decorator(self._chat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any
                        ) -> CompletionResponseGen:
        return stream_chat_to_completion_decorator(self._stream_chat)(prompt, **kwargs)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any
                           ) -> ChatResponseAsyncGen:
        return self._astream_chat(messages, **kwargs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any
                        ) -> CompletionResponse:
        return await achat_to_completion_decorator(self._achat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any
                               ) -> CompletionResponseAsyncGen:
        async def astream(messages: Sequence[ChatMessage], **kw: Any) -> ChatResponseAsyncGen:
            return self._astream_chat(messages, **kw)

        return await astream_chat_to_completion_decorator(astream)(prompt, **kwargs)

    # ------------------------------------------------------------------ tools
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The chat arguments for a call with tools (routed only among tool-capable models)."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        return {
            "messages": messages,
            "tools": list(tools),
            "tool_required": tool_required,
            "allow_parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call unless parallel calls are allowed."""
        if not allow_parallel_tool_calls:
            blocks, seen = [], False
            for b in response.message.blocks:
                if isinstance(b, ToolCallBlock):
                    if seen:
                        continue
                    seen = True
                blocks.append(b)
            response.message.blocks = blocks
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The tool calls of a response (whichever model served it)."""
        selections = tool_selections(response.message)
        if not selections and error_on_no_tool_call:
            raise ValueError(
                f"expected at least one tool call, got none; the response was: "
                f"{response.message.content!r}"
            )
        return selections

