"""The cost event handler: routed and non-routed calls, nesting, isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    LLMMetadata,
)
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM, MockLLM

from llamaindex_avengers import AvengersLLM, CostEventHandler, track_costs
from shared_core.pricing import cost
from shared_core.usage import Usage

QUESTION = "What is the capital of France?"


class UsageReportingLLM(CustomLLM):
    """A stand-in for a third-party LlamaIndex LLM that reports OpenAI-style usage in ``raw``
    (CustomLLM derives chat from complete, so one chat fires two nested LLM events)."""

    model: str = "gpt-4.1-mini"
    prompt_tokens: int = 100
    completion_tokens: int = 10

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model)

    def _raw(self) -> dict[str, Any]:
        return {"model": self.model, "usage": {"prompt_tokens": self.prompt_tokens,
                                               "completion_tokens": self.completion_tokens}}

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="ok", raw=self._raw())

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
        def gen():
            yield CompletionResponse(text="o", delta="o")
            yield CompletionResponse(text="ok", delta="k", raw=self._raw())

        return gen()


class BareUsageLLM(MockLLM):
    """A non-routed chat LLM whose usage is in ``additional_kwargs`` (as llama-index-llms-openai
    reports it) and whose model name is only in its metadata."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="claude-haiku-4-5", is_chat_model=True)

    @llm_chat_callback()
    def chat(self, messages, **kwargs: Any) -> ChatResponse:
        return ChatResponse(message=ChatMessage(role="assistant", content="hi"),
                            additional_kwargs={"prompt_tokens": 40, "completion_tokens": 4,
                                               "total_tokens": 44})


def test_non_routed_llm_with_usage_is_priced_once_per_call() -> None:
    llm = UsageReportingLLM()
    with track_costs() as costs:
        llm.complete(QUESTION)
        llm.chat([ChatMessage(role="user", content=QUESTION)])  # chat -> complete, nested
        list(llm.stream_complete(QUESTION))
        list(llm.stream_chat([ChatMessage(role="user", content=QUESTION)]))
    one = cost(Usage(100, 10), "gpt-4.1-mini")
    assert costs.successful_requests == 4
    assert costs.total_cost == pytest.approx(4 * one, rel=1e-12)
    assert costs.by_model()["gpt-4.1-mini"].usage == Usage(400, 40)
    assert costs.ledger.records[0].routed is False


def test_model_name_from_metadata_and_usage_from_additional_kwargs() -> None:
    with track_costs() as costs:
        BareUsageLLM().chat([ChatMessage(role="user", content=QUESTION)])
    assert costs.by_model()["claude-haiku-4-5"].usage == Usage(40, 4)
    assert costs.total_cost == pytest.approx(cost(Usage(40, 4), "claude-haiku-4-5"))


def test_calls_without_usage_are_counted_apart() -> None:
    with track_costs() as costs:
        MockLLM().complete(QUESTION)
    assert costs.successful_requests == 0 and costs.unaccounted_calls == 1


def test_routed_calls_count_once_not_again_for_the_candidate(make_router) -> None:
    llm = AvengersLLM(router=make_router(), models={
        "gpt-4-1106-preview": MockFunctionCallingLLM(), "claude-v1": UsageReportingLLM()})
    msgs = [ChatMessage(role="user", content=QUESTION)]
    with track_costs() as costs:
        for name in ("gpt-4-1106-preview", "claude-v1"):
            llm.chat(msgs, force=name)
            list(llm.stream_chat(msgs, force=name))
            llm.complete(QUESTION, force=name)
    assert costs.successful_requests == 6 == len(llm.ledger)
    assert costs.unaccounted_calls == 0
    by_model = costs.by_model()
    assert set(by_model) == {"gpt-4-1106-preview", "claude-v1"}
    assert by_model["claude-v1"].usage == Usage(300, 30)  # the candidate's own usage
    assert by_model["gpt-4-1106-preview"].unpriced_calls == 3  # the mock reports no usage
    assert costs.total_cost == pytest.approx(llm.ledger.total_cost, rel=1e-12)
    assert costs.total_cost == pytest.approx(3 * cost(Usage(100, 10), "gpt-4.1-mini"))


def test_blocks_nest_and_calls_outside_are_not_counted() -> None:
    llm = UsageReportingLLM()
    llm.complete("before")
    with track_costs() as outer:
        llm.complete("a")
        with track_costs() as inner:
            llm.complete("b")
        llm.complete("c")
    llm.complete("after")
    assert (outer.successful_requests, inner.successful_requests) == (3, 1)


async def test_concurrent_tasks_keep_their_own_totals() -> None:
    async def run(n: int) -> CostEventHandler:
        llm = UsageReportingLLM(prompt_tokens=n)
        with track_costs() as costs:
            for _ in range(n):
                await llm.acomplete(QUESTION)
                await asyncio.sleep(0)
        return costs

    a, b = await asyncio.gather(run(3), run(5))
    assert (a.successful_requests, b.successful_requests) == (3, 5)
    assert (a.prompt_tokens, b.prompt_tokens) == (9, 25)


def test_a_handler_on_the_dispatcher_sees_everything() -> None:
    handler = CostEventHandler()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    try:
        UsageReportingLLM().complete(QUESTION)
    finally:
        dispatcher.event_handlers.remove(handler)
    assert handler.successful_requests == 1
    assert "gpt-4.1-mini" in handler.summary(baseline="openai:gpt-4.1")
    handler.reset()
    assert handler.successful_requests == 0 and handler.total_cost == 0.0


def test_failed_calls_leave_nothing_open() -> None:
    class Failing(UsageReportingLLM):
        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any):
            raise RuntimeError("down")

    with track_costs() as costs:
        for _ in range(3):
            with pytest.raises(RuntimeError):
                Failing().complete(QUESTION)
        UsageReportingLLM().complete(QUESTION)
    assert costs.successful_requests == 1
    assert costs._open_calls == {}
