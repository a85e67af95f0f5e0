"""``AvengersChatModel``: a LangChain chat model that routes every call to the model the
Avengers-Pro router picks for it (see :mod:`shared_core.engine`)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_usage
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema
from langchain_core.utils.pydantic import is_basemodel_subclass
from langchain_core.utils.utils import secret_from_env
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from langchain_avengers._convert import (
    ROUTER_MODEL_KEY,
    delta_to_chunk,
    final_chunk,
    from_usage_metadata,
    to_core_messages,
    to_openai_tool,
    to_tool_choice,
    to_tool_spec,
)
from shared_core._errors import AllModelsFailedError, AvengersError, UnknownModelError
from shared_core.engine import Feature, RoutedChat, RoutedResponse, RouteOn, Selection
from shared_core.messages import ChatRequest, ImagePart, Message, TextDelta, ToolCallDelta
from shared_core.pricing import cost as price
from shared_core.router import Router
from shared_core.usage import Budget, CostLedger

T = TypeVar("T")

INNER_RUN_TAG = "avengers:inner"
"""Tag of the nested run when a routed call is served by a LangChain model object; the cost
handler skips these runs because the routed (outer) run already carries their usage and cost."""

_ROUTING_KWARGS = ("alpha", "model", "exclude")
"""Per-call routing overrides, as kwargs or under ``config["configurable"]``."""

_FORWARDED = ("temperature", "max_tokens", "timeout", "max_retries")
"""Standard fields copied onto LangChain model objects that have a field of the same name."""

_ENGINE_FIELDS = frozenset({
    "router", "models", "route_on", "max_fallbacks", "budget", "ledger", "provider_options",
    "api_key", "timeout", *_FORWARDED,
})
"""Fields the engine or the configured model objects are built from (reset when assigned)."""


class _LangChainRoutedChat(RoutedChat):
    """The core engine with capabilities of LangChain model objects."""

    def _object_supports(self, target: Any, feature: Feature) -> bool:
        if feature == "tools":
            return isinstance(target, BaseChatModel) and (
                type(target).bind_tools is not BaseChatModel.bind_tools
            )
        if feature == "structured_output":
            # JSON-schema output goes to spec targets; tool-calling structured output
            # (the default method) only needs "tools".
            return False
        return True


@dataclass
class _Plan:
    """One call, decided: the selection, the core request and what object targets need."""

    selection: Selection
    request: ChatRequest
    messages: list[BaseMessage]
    lc_tools: list[dict[str, Any]]
    lc_tool_choice: Any
    stop: list[str] | None
    extra: dict[str, Any]
    groups: list[tuple[str, ...]] = field(default_factory=list)
    failures: list[tuple[str, BaseException]] = field(default_factory=list)


def _model_name_of(target: Any) -> str | None:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(target, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


class AvengersChatModel(BaseChatModel):
    """A drop-in chat model that routes each call to the best model for it (Avengers-Pro).

    The router embeds the latest human turn (see ``route_on``), finds its cluster and picks the
    model with the best performance-efficiency score for ``alpha`` (1 = accuracy first, 0 =
    cheapest). Candidates are ``"provider:model"`` specs (from ``models`` or the router file) or
    any LangChain chat model. Within a tool exchange the model that made the tool calls answers
    the tool results; a new human turn is routed afresh. A call that fails before producing output
    falls back to the next-ranked candidate.

    Every ``AIMessage`` has ``usage_metadata`` and ``response_metadata`` with ``router_model``,
    ``provider``, ``spec``, ``cluster``, ``alpha``, ``scores``, ``cost_usd`` and the full
    explanation under ``routing``.

    Per-call overrides (kwargs, ``bind(...)`` or ``config={"configurable": {...}}``): ``alpha``,
    ``model`` (force a router model, a spec, or a provider model name) and ``exclude``.

    Example:
        >>> from langchain_avengers import AvengersChatModel
        >>> llm = AvengersChatModel(alpha=0.7)  # the default router; no I/O yet
        >>> llm.route("Prove that sqrt(2) is irrational").model  # doctest: +SKIP
        'gpt-4-1106-preview'
        >>> msg = llm.invoke("Prove that sqrt(2) is irrational")  # doctest: +SKIP
        >>> msg.response_metadata["router_model"], msg.usage_metadata  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    router: Router | str | Path | None = None
    """A fitted :class:`Router` or a router file; ``None`` loads the default router on first use."""
    alpha: float | None = Field(default=None, ge=0.0, le=1.0)
    """Performance-efficiency trade-off in [0, 1]; ``None`` uses the router file's default."""
    models: dict[str, Any] | None = None
    """Router model name -> ``"provider:model"`` spec or a LangChain chat model; default: the
    router file's specs."""
    allowed_models: list[str] | None = None
    """Only route among these router models (e.g. those whose provider key is set)."""
    route_on: RouteOn = "last_user"
    """What is routed: the latest human turn, every human turn, or the whole conversation."""
    max_fallbacks: int = Field(default=2, ge=0)
    """How many next-ranked candidates to try when a call fails before producing output."""
    budget: Budget | None = None
    """Optional spending cap in USD; routing gets cheaper as it nears, then raises or downgrades."""
    ledger: CostLedger = Field(default_factory=CostLedger)
    """Where every routed call is recorded (tokens, USD, latency, decision)."""
    provider_options: dict[str, Any] = Field(default_factory=dict)
    """Extra provider options, e.g. ``base_url`` or ``per_model={"name": {"base_url": ...}}``."""
    temperature: float | None = None
    """Sampling temperature forwarded to the chosen model."""
    max_tokens: int | None = None
    """Maximum number of tokens to generate, forwarded to the chosen model."""
    timeout: float | None = None
    """Seconds per provider HTTP request."""
    stop: list[str] | None = None
    """Stop sequences forwarded to the chosen model."""
    max_retries: int = 2
    """Retries of one provider on rate limits, server errors and timeouts (before fallback)."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("AVENGERS_API_KEY", default=None), repr=False
    )
    """One API key for every provider spec (read from ``AVENGERS_API_KEY``); ``None`` lets
    each provider read its own variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``, ...)."""
    streaming: bool = False
    """Whether ``invoke`` streams its output internally: callbacks get tokens and LangChain
    model objects are streamed too (provider specs are always streamed; the usage is the same)."""

    _engine: RoutedChat | None = PrivateAttr(default=None)
    _targets: dict[str, Any] = PrivateAttr(default_factory=dict)
    _budget_subscribed: set[tuple[int, int]] = PrivateAttr(default_factory=set)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # ------------------------------------------------------------------ LangChain identity
    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": "AVENGERS_API_KEY"}

    @property
    def _llm_type(self) -> str:
        return "avengers-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        router = self.router if not isinstance(self.router, Router) else "<Router>"
        return {
            "router": str(router) if router is not None else None,
            "alpha": self.alpha,
            "route_on": self.route_on,
            "models": sorted(self.models) if self.models else None,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="avengers", ls_model_type="chat")
        model = kwargs.get("model")
        params["ls_model_name"] = model if isinstance(model, str) else "avengers-router"
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, int | float):
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = list(stop or self.stop or [])
        return params

    # ------------------------------------------------------------------ the engine
    @property
    def engine(self) -> RoutedChat:
        """The core :class:`RoutedChat` (created on first use; the router loads lazily)."""
        with self._lock:
            if self._engine is None:
                opts: dict[str, Any] = {"max_retries": self.max_retries, **self.provider_options}
                if self.api_key is not None:
                    opts.setdefault("api_key", self.api_key)
                if self.timeout is not None:
                    opts.setdefault("timeout", self.timeout)
                engine = _LangChainRoutedChat(
                    self.router, models=self.models, alpha=self.alpha, ledger=self.ledger,
                    route_on=self.route_on, max_fallbacks=self.max_fallbacks,
                    provider_options=opts,
                )
                engine.budget = self.budget
                key = (id(self.ledger), id(self.budget))
                if self.budget is not None and key not in self._budget_subscribed:
                    self.ledger.subscribe(self.budget)  # once, however often the engine is rebuilt
                    self._budget_subscribed.add(key)
                self._engine = engine
            return self._engine

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> AvengersChatModel:
        copy = super().model_copy(update=update, deep=deep)
        if update and _ENGINE_FIELDS.intersection(update):
            copy._engine, copy._targets = None, {}  # not the original's engine
        return copy

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _ENGINE_FIELDS and self.__pydantic_private__ is not None:
            with self._lock:  # rebuilt on next use with the new setting
                self._engine = None
                self._targets = {}

    def _target(self, name: str) -> BaseChatModel:
        """A LangChain model target with our standard parameters copied onto it (cached)."""
        targets = self.engine.targets
        with self._lock:
            target = self._targets.get(name)
            if target is None:
                target = targets[name]
                update = {
                    k: getattr(self, k) for k in _FORWARDED
                    if k in self.model_fields_set and getattr(self, k) is not None
                    and k in type(target).model_fields
                }
                if update:
                    target = target.model_copy(update=update)
                self._targets[name] = target
        return target

    # ------------------------------------------------------------------ per-call overrides
    @staticmethod
    def _configurable(config: RunnableConfig | None) -> dict[str, Any]:
        conf = (config or {}).get("configurable") or {}
        return {k: conf[k] for k in _ROUTING_KWARGS if k in conf}

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return super().invoke(input, config, stop=stop, **{**self._configurable(config), **kwargs})

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                      stop: list[str] | None = None, **kwargs: Any) -> AIMessage:
        return await super().ainvoke(
            input, config, stop=stop, **{**self._configurable(config), **kwargs}
        )

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        return super().stream(input, config, stop=stop, **{**self._configurable(config), **kwargs})

    def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        return super().astream(
            input, config, stop=stop, **{**self._configurable(config), **kwargs}
        )

    def stream_events(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                      *, version: Literal["v1", "v2", "v3"] = "v2",
                      stop: list[str] | None = None, **kwargs: Any) -> Any:
        if version == "v3":  # v1/v2 go through stream(), which reads the config itself
            kwargs = {**self._configurable(config), **kwargs}
        return super().stream_events(input, config, version=version, stop=stop, **kwargs)

    def astream_events(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                       *, version: Literal["v1", "v2", "v3"] = "v2",
                       stop: list[str] | None = None, **kwargs: Any) -> Any:
        if version == "v3":
            kwargs = {**self._configurable(config), **kwargs}
        return super().astream_events(input, config, version=version, stop=stop, **kwargs)

    # ------------------------------------------------------------------ deciding
    def _resolve_model(self, name: str) -> str:
        """A router model name for ``name``: a router model, a target spec, or a provider
        model name (``"claude-haiku-4-5"`` matches ``"anthropic:claude-haiku-4-5"``)."""
        engine = self.engine
        if name in engine.router.models_:
            return name
        for router_name, target in engine.targets.items():
            label = target if isinstance(target, str) else _model_name_of(target) or ""
            if name == label or name == label.partition(":")[2]:
                return router_name
        specs = [t for t in engine.targets.values() if isinstance(t, str)]
        known = [*engine.router.models_, *specs]
        raise UnknownModelError(name, known, "model")

    def _select(self, messages: Sequence[Message], overrides: Mapping[str, Any],
                need: Sequence[Feature] = ()) -> Selection:
        exclude = overrides.get("exclude") or ()
        if isinstance(exclude, str):
            exclude = (exclude,)
        force = overrides.get("model")
        alpha = overrides.get("alpha")
        return self.engine.select(
            messages,
            alpha=self.alpha if alpha is None else alpha,
            force=self._resolve_model(force) if force else None,
            exclude=tuple(self._resolve_model(m) for m in exclude),
            allowed=self.allowed_models,
            need=need,
        )

    def route(self, input: LanguageModelInput, **overrides: Any) -> Selection:
        """Decide which model would serve ``input`` without calling anything (a dry run).

        Args:
            input: a string, a list of messages or a prompt value.
            **overrides: ``alpha``, ``model`` (force), ``exclude``; ``tools`` restricts the
                candidates to tool-capable models.

        Returns:
            The :class:`~shared_core.engine.Selection`: ``.model``, ``.ranking``, ``.reason``
            and ``.metadata()`` (cluster, alpha, each candidate's score).
        """
        messages = self._convert_input(input).to_messages()
        need: list[Feature] = ["tools"] if overrides.pop("tools", None) else []
        return self._select(to_core_messages(messages), overrides, need)

    def _plan(self, messages: list[BaseMessage], stop: list[str] | None,
              kwargs: dict[str, Any]) -> _Plan:
        kw = dict(kwargs)
        overrides = {k: kw.pop(k) for k in _ROUTING_KWARGS if k in kw}
        lc_tools = list(kw.pop("tools", None) or [])
        lc_tool_choice = kw.pop("tool_choice", None)
        schema = kw.pop("response_schema", None)
        schema_name = kw.pop("response_schema_name", "response")
        kw.pop("ls_structured_output_format", None)
        kw.pop("stream", None)
        temperature = kw.pop("temperature", self.temperature)
        max_tokens = kw.pop("max_tokens", self.max_tokens)
        top_p = kw.pop("top_p", None)
        stop = stop if stop is not None else self.stop
        core = to_core_messages(messages)
        need: list[Feature] = []
        if lc_tools:
            need.append("tools")
        if schema is not None:
            need.append("structured_output")
        if any(isinstance(p, ImagePart) for m in core for p in m.parts):
            need.append("vision")
        selection = self._select(core, overrides, need)
        request = ChatRequest(
            messages=core,
            tools=tuple(to_tool_spec(t) for t in lc_tools),
            tool_choice=to_tool_choice(lc_tool_choice) if lc_tools else None,
            response_schema=schema,
            response_schema_name=schema_name,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            stop=tuple(stop or ()),
            extra=kw,
        )
        groups: list[tuple[str, ...]] = []
        targets = self.engine.targets
        for m in selection.ranking:
            if isinstance(targets[m], str) and groups and isinstance(targets[groups[-1][0]], str):
                groups[-1] = (*groups[-1], m)
            else:
                groups.append((m,))
        return _Plan(selection, request, messages, lc_tools, lc_tool_choice,
                     list(stop) if stop else None, kw, groups)

    # ------------------------------------------------------------------ normalising output
    def _metadata(self, plan: _Plan, meta: dict[str, Any], *, model_name: str | None,
                  provider: str | None, finish_reason: str | None) -> dict[str, Any]:
        failed = [name for name, _ in plan.failures] + list(meta.get("fallback_attempts") or [])
        routing = {**meta, "ranking": list(plan.selection.ranking), "fallback_attempts": failed}
        return {
            "model_name": model_name,
            "finish_reason": finish_reason,
            ROUTER_MODEL_KEY: meta["model"],
            "provider": provider,
            "spec": meta.get("spec"),
            "cost_usd": meta.get("cost_usd"),
            "alpha": meta.get("alpha"),
            "cluster": meta.get("cluster"),
            "scores": meta.get("scores"),
            "routing": routing,
        }

    def _spec_metadata(self, plan: _Plan, routed: RoutedResponse) -> dict[str, Any]:
        resp = routed.response
        return self._metadata(plan, routed.metadata, model_name=resp.model,
                              provider=resp.provider, finish_reason=resp.stop_reason)

    def _record_object(self, plan: _Plan, name: str, usage_meta: Any,
                       response_metadata: Mapping[str, Any], t0: float) -> dict[str, Any]:
        """Account for a call served by a LangChain model object; its response metadata."""
        target = self._target(name)
        model_name = response_metadata.get("model_name") or _model_name_of(target)
        usage = from_usage_metadata(usage_meta)
        cost_usd: float | None = None
        if not usage_meta:
            warnings.warn(f"model {name!r} ({type(target).__name__}) reports no token usage; "
                          "its cost is unknown", stacklevel=3)
        elif not model_name:
            warnings.warn(f"model {name!r} ({type(target).__name__}) reports no model name; "
                          "its cost is unknown", stacklevel=3)
        else:
            cost_usd = price(usage, model_name)
        self.engine.record(
            plan.selection, model=name, usage=usage, cost_usd=cost_usd, spec=model_name or "",
            latency_s=time.perf_counter() - t0,
            attempts=[(n, 0.0, str(e)) for n, e in plan.failures],
        )
        meta = {**plan.selection.metadata(), "model": name, "spec": None, "cost_usd": cost_usd}
        provider = response_metadata.get("model_provider") or type(target).__name__
        finish = response_metadata.get("finish_reason") or response_metadata.get("stop_reason")
        return {**response_metadata, **self._metadata(
            plan, meta, model_name=model_name, provider=provider, finish_reason=finish)}

    def _object_runnable(self, plan: _Plan, name: str,
                         run_manager: Any) -> tuple[Runnable[Any, Any], dict[str, Any]]:
        target: Runnable[Any, Any] = self._target(name)
        if plan.lc_tools:
            choice = {"tool_choice": plan.lc_tool_choice} if plan.lc_tool_choice else {}
            target = self._target(name).bind_tools(plan.lc_tools, **choice)
        config: dict[str, Any] = {"tags": [INNER_RUN_TAG]}
        if run_manager is not None:  # nest the object's run under ours (tracing, callbacks)
            manager_cls = (AsyncCallbackManager if isinstance(run_manager,
                           AsyncCallbackManagerForLLMRun) else CallbackManager)
            child = manager_cls(handlers=[], parent_run_id=run_manager.run_id)
            child.set_handlers(run_manager.inheritable_handlers)
            child.add_tags(run_manager.inheritable_tags)
            child.add_metadata(run_manager.inheritable_metadata)
            config["callbacks"] = child
        return target, {"config": config, "stop": plan.stop, **plan.extra}

    @staticmethod
    def _pass_chunk(part: AIMessage, acc: dict[str, Any]) -> ChatGenerationChunk:
        """An object target's chunk (or whole message) without usage/metadata (collected in
        ``acc`` for the last chunk, so that adding the chunks never double counts)."""
        if part.usage_metadata:
            acc["usage"] = add_usage(acc.get("usage"), part.usage_metadata)
        acc["meta"] = {**acc.get("meta", {}), **part.response_metadata}
        calls: dict[str, Any] = (
            {"tool_call_chunks": part.tool_call_chunks} if isinstance(part, AIMessageChunk)
            else {"tool_calls": part.tool_calls, "invalid_tool_calls": part.invalid_tool_calls}
        )
        return ChatGenerationChunk(message=AIMessageChunk(
            content=part.content, additional_kwargs=part.additional_kwargs, **calls))

    def _object_final(self, plan: _Plan, name: str, acc: dict[str, Any],
                      t0: float) -> ChatGenerationChunk:
        usage = acc.get("usage")
        metadata = self._record_object(plan, name, usage, acc.get("meta", {}), t0)
        return ChatGenerationChunk(message=AIMessageChunk(
            content="", usage_metadata=usage, response_metadata=metadata, chunk_position="last"))

    def _spec_chunk(self, plan: _Plan, item: Any) -> ChatGenerationChunk | None:
        if isinstance(item, TextDelta | ToolCallDelta):
            return ChatGenerationChunk(message=delta_to_chunk(item))
        if isinstance(item, RoutedResponse):
            meta = self._spec_metadata(plan, item)
            return ChatGenerationChunk(message=final_chunk(item.response.usage, meta))
        return None  # UsageEvent / StreamEnd: carried by the final chunk

    def _failed(self, plan: _Plan, group: tuple[str, ...], e: BaseException) -> None:
        if isinstance(e, AllModelsFailedError):
            plan.failures.extend(
                (next((m for m in group if self.engine.targets[m] == spec), spec), err)
                for spec, err in e.attempts
            )
        else:
            plan.failures.append((group[0], e))

    def _all_failed(self, plan: _Plan) -> AllModelsFailedError:
        err = AllModelsFailedError(list(plan.failures))
        err.__cause__ = plan.failures[-1][1] if plan.failures else None
        return err

    def _is_spec(self, group: tuple[str, ...]) -> bool:
        return isinstance(self.engine.targets[group[0]], str)

    # ------------------------------------------------------------------ calling
    # A call walks the ranking group by group (:meth:`_steps`): a run of spec targets goes to
    # the engine, which falls back within it; a LangChain object is called here. A group that
    # fails before producing output is recorded and the next one is tried. Only ``_stream`` and
    # ``_astream`` hold that loop (they differ in how they iterate, nothing else); the
    # non-streaming calls are derived from them.
    def _steps(self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any,
               kwargs: dict[str, Any], invoke_objects: bool) -> Iterator[_Step]:
        """The call's attempts in rank order; raises :class:`AllModelsFailedError` when the
        caller asks for one more after every group has failed."""
        plan = self._plan(messages, stop, kwargs)
        for group in plan.groups:
            t0 = time.perf_counter()
            target, call_kw = ((None, {}) if self._is_spec(group)
                               else self._object_runnable(plan, group[0], run_manager))
            yield _Step(self, plan, group, target, call_kw, invoke_objects, t0)
        raise self._all_failed(plan)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        return generate_from_stream(
            self._stream(messages, stop, run_manager, invoke_objects=True, **kwargs))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        return await agenerate_from_stream(
            self._astream(messages, stop, run_manager, invoke_objects=True, **kwargs))

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, *,
                invoke_objects: bool = False, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        """Stream the routed call; ``invoke_objects`` (non-streaming calls) has LangChain
        model objects answer through ``invoke``, as many report usage only then."""
        for step in self._steps(messages, stop, run_manager, kwargs, invoke_objects):
            try:
                for item in step.items():
                    if (chunk := step.chunk(item)) is not None:
                        yield chunk
            except step.fallback as e:
                step.fail(e)
                continue
            if (last := step.final()) is not None:
                yield last
            return

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None, *,
                       invoke_objects: bool = False,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        """Async :meth:`_stream`."""
        for step in self._steps(messages, stop, run_manager, kwargs, invoke_objects):
            try:
                async for item in step.aitems():
                    if (chunk := step.chunk(item)) is not None:
                        yield chunk
            except step.fallback as e:
                step.fail(e)
                continue
            if (last := step.final()) is not None:
                yield last
            return

    # ------------------------------------------------------------------ tools and schemas
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; while bound, only tool-capable candidates are routed to.

        Args:
            tools: LangChain tools, functions, pydantic models, TypedDicts or OpenAI tool dicts.
            tool_choice: ``"auto"``, ``"any"``/``"required"``/``True``, ``"none"`` or a tool name.
        """
        formatted = [to_openai_tool(t) for t in tools]
        if tool_choice is not None and tool_choice is not False:
            to_tool_choice(tool_choice)  # fail now on a bad value
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Return output that follows ``schema`` (a pydantic model, a TypedDict or a JSON schema).

        ``method="function_calling"`` (default) forces a tool call and routes among
        tool-capable candidates; ``"json_schema"`` / ``"json_mode"`` ask the provider for JSON
        that follows the schema (``ChatRequest.response_schema``) and route among candidates
        with native structured output. ``strict`` is accepted for compatibility.
        """
        if kwargs:
            raise ValueError(f"unsupported arguments {sorted(kwargs)}; expected include_raw, "
                             "method, strict")
        if method not in ("function_calling", "json_schema", "json_mode"):
            raise ValueError(f"unknown method {method!r}; expected 'function_calling', "
                             "'json_schema' or 'json_mode'")
        pydantic_schema = (cast("type[BaseModel]", schema) if isinstance(schema, type)
                           and is_basemodel_subclass(schema) else None)
        ls_format = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        if method == "function_calling":
            tool = to_openai_tool(schema)
            name = tool["function"]["name"]
            llm = self.bind_tools([tool], tool_choice=name, ls_structured_output_format=ls_format)
            parser: Runnable[Any, Any] = (
                PydanticToolsParser(tools=[pydantic_schema], first_tool_only=True)
                if pydantic_schema is not None
                else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
            )
        else:
            json_schema = convert_to_json_schema(schema)
            llm = self.bind(
                response_schema=json_schema,
                response_schema_name=str(json_schema.get("title") or "response"),
                ls_structured_output_format=ls_format,
            )
            parser = (PydanticOutputParser(pydantic_object=pydantic_schema)
                      if pydantic_schema is not None else JsonOutputParser())
        if not include_raw:
            return llm | parser
        parse = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None)
        none = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parse.with_fallbacks([none], exception_key="parsing_error")

    # ------------------------------------------------------------------ accounting
    @property
    def total_cost(self) -> float:
        """USD of every call this model (and its copies) recorded in :attr:`ledger`."""
        return float(self.ledger.total_cost)

    def usage_summary(self, baseline: str | None = None) -> str:
        """The ledger's per-model table; with ``baseline`` (a spec), what routing saved."""
        return self.ledger.summary(baseline)


@dataclass
class _Step:
    """One attempt of a routed call: a group of ranked candidates (a run of spec targets, within
    which the engine falls back, or one LangChain model object) and how its output becomes
    chunks. Everything but the iteration itself is shared by ``_stream`` and ``_astream``."""

    llm: AvengersChatModel
    plan: _Plan
    group: tuple[str, ...]
    target: Runnable[Any, Any] | None
    """The LangChain model object serving the group (tools bound); ``None`` for spec targets."""
    call_kw: dict[str, Any]
    invoke: bool
    """Call the object with ``invoke``/``ainvoke`` (one whole message) instead of streaming."""
    t0: float
    started: bool = False
    acc: dict[str, Any] = field(default_factory=dict)

    @property
    def fallback(self) -> tuple[type[BaseException], ...]:
        """The errors that move on to the next group: none once output has started; the
        engine's own for spec targets, any error of a LangChain object."""
        if self.started:
            return ()
        return (AvengersError,) if self.target is None else (Exception,)

    def _selection(self) -> Selection:
        return replace(self.plan.selection, ranking=self.group)

    def items(self) -> Iterator[Any]:
        if self.target is None:
            return self.llm.engine.stream(self.plan.request, self._selection())
        if self.invoke:
            return iter((self.target.invoke(self.plan.messages, **self.call_kw),))
        return self.target.stream(self.plan.messages, **self.call_kw)

    def aitems(self) -> AsyncIterator[Any]:
        if self.target is None:
            return self.llm.engine.astream(self.plan.request, self._selection())
        if self.invoke:
            return _one(self.target.ainvoke(self.plan.messages, **self.call_kw))
        return self.target.astream(self.plan.messages, **self.call_kw)

    def chunk(self, item: Any) -> ChatGenerationChunk | None:
        """``item`` as a chunk (``None``: carried by the final chunk); output has started."""
        chunk = (self.llm._spec_chunk(self.plan, item) if self.target is None
                 else self.llm._pass_chunk(item, self.acc))
        self.started = self.started or chunk is not None
        return chunk

    def final(self) -> ChatGenerationChunk | None:
        """An object's last chunk: its usage and our metadata (the engine's stream ends with
        its own)."""
        if self.target is None:
            return None
        return self.llm._object_final(self.plan, self.group[0], self.acc, self.t0)

    def fail(self, error: BaseException) -> None:
        self.llm._failed(self.plan, self.group, error)


async def _one(awaitable: Awaitable[T]) -> AsyncIterator[T]:
    yield await awaitable


__all__ = ["AvengersChatModel", "INNER_RUN_TAG"]
