"""AvengersLLM with candidates served by the loopback stub of the provider APIs (real SDKs)."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.embeddings import BaseEmbedding, MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool

from llamaindex_avengers import RESPONSE_KEY, AvengersLLM, track_costs
from shared_core import Budget
from shared_core._errors import BudgetExceededError
from shared_core.pricing import cost
from shared_core.usage import Usage
from tests.conftest import ROUTERBENCH_SPECS
from tests.stub_llm_server import (
    DEFAULT_OUTPUT_TOKENS,
    Fail,
    Reply,
    StubLLMServer,
    Tokens,
    ToolCallSpec,
    default_input_tokens,
)

QUESTION = "What is the capital of France?"
# One router model per provider.
BY_PROVIDER = {"openai": "gpt-4-1106-preview", "anthropic": "claude-v1",
               "google": "zero-one-ai/Yi-34B-Chat"}


async def final(llm: AvengersLLM, method: str, **kwargs):
    """The final response of any of the eight call forms."""
    msgs = [ChatMessage(role="user", content=QUESTION)]
    if method == "chat":
        return llm.chat(msgs, **kwargs)
    if method == "achat":
        return await llm.achat(msgs, **kwargs)
    if method == "complete":
        return llm.complete(QUESTION, **kwargs)
    if method == "acomplete":
        return await llm.acomplete(QUESTION, **kwargs)
    if method == "stream_chat":
        return list(llm.stream_chat(msgs, **kwargs))[-1]
    if method == "stream_complete":
        return list(llm.stream_complete(QUESTION, **kwargs))[-1]
    if method == "astream_chat":
        return [c async for c in await llm.astream_chat(msgs, **kwargs)][-1]
    return [c async for c in await llm.astream_complete(QUESTION, **kwargs)][-1]


METHODS = ["chat", "achat", "complete", "acomplete", "stream_chat", "stream_complete",
           "astream_chat", "astream_complete"]


def stub_cost(stub: StubLLMServer) -> tuple[Usage, float]:
    """Tokens and dollars of every default reply the stub sent, priced independently."""
    usage, dollars = Usage(), 0.0
    for r in stub.requests:
        u = Usage(default_input_tokens(r.provider, r.json), DEFAULT_OUTPUT_TOKENS)
        usage, dollars = usage + u, dollars + cost(u, f"{r.provider}:{r.model}")
    return usage, dollars


@pytest.mark.parametrize("provider", list(BY_PROVIDER))
@pytest.mark.parametrize("method", METHODS)
async def test_every_method_on_every_provider(stub_llm, stub, provider, method) -> None:
    llm = stub_llm()
    name = BY_PROVIDER[provider]
    resp = await final(llm, method, force=name)
    text = getattr(resp, "text", None) or resp.message.content
    assert text == "stub reply to: " + QUESTION
    (req,) = stub.requests
    assert f"{req.provider}:{req.model}" == ROUTERBENCH_SPECS[name]
    assert req.stream  # every form streams: the non-streaming ones are derived from the stream
    f = resp.additional_kwargs[RESPONSE_KEY]
    usage, dollars = stub_cost(stub)
    assert f["model"] == name and f["spec"] == ROUTERBENCH_SPECS[name]
    assert Usage(**f["usage"]) == usage
    assert f["cost_usd"] == pytest.approx(dollars, rel=1e-12)
    assert llm.ledger.total_cost == pytest.approx(dollars, rel=1e-12)


@pytest.mark.parametrize("provider", list(BY_PROVIDER))
async def test_streamed_and_unstreamed_report_the_same(stub_llm, provider) -> None:
    llm = stub_llm()
    name = BY_PROVIDER[provider]
    plain = llm.chat([ChatMessage(role="user", content=QUESTION)], force=name)
    streamed = list(llm.stream_chat([ChatMessage(role="user", content=QUESTION)], force=name))
    a, b = plain.additional_kwargs[RESPONSE_KEY], streamed[-1].additional_kwargs[RESPONSE_KEY]
    assert a["usage"] == b["usage"] and a["cost_usd"] == b["cost_usd"] is not None
    assert "".join(c.delta or "" for c in streamed) == plain.message.content
    r1, r2 = llm.ledger.records
    assert (r1.usage, r1.cost_usd) == (r2.usage, r2.cost_usd)


def test_models_are_named_by_router_name_spec_or_provider_model(stub_llm) -> None:
    llm = stub_llm()
    assert llm.route(QUESTION, model="claude-v1").model == "claude-v1"
    assert llm.route(QUESTION, model="anthropic:claude-sonnet-4-5").model == "claude-v1"
    assert llm.route(QUESTION, force="gemini-2.5-flash").model == "zero-one-ai/Yi-34B-Chat"
    sel = llm.route(QUESTION, allowed=["gpt-4.1", "openai:gpt-4.1-mini"])
    assert set(sel.ranking) == {"gpt-4-1106-preview", "gpt-3.5-turbo-1106"}
    assert "claude-v1" not in llm.route(QUESTION, exclude="claude-sonnet-4-5").ranking


def test_routed_call_reaches_the_routed_model(stub_llm, stub) -> None:
    llm = stub_llm(alpha=0.7)
    sel = llm.route(QUESTION)
    resp = llm.chat([ChatMessage(role="user", content=QUESTION)])
    assert resp.additional_kwargs[RESPONSE_KEY]["model"] == sel.model
    assert f"{stub.requests[0].provider}:{stub.requests[0].model}" == sel.spec


def test_fallback_after_an_error_before_output(stub_llm, stub) -> None:
    llm = stub_llm(max_retries=0)
    sel = llm.route(QUESTION)
    stub.script(sel.spec, [Fail(500)])
    resp = llm.chat([ChatMessage(role="user", content=QUESTION)])
    f = resp.additional_kwargs[RESPONSE_KEY]
    assert f["model"] == sel.ranking[1] and f["fallback_attempts"] == [sel.spec]
    assert len(stub.requests) == 2


def _tools() -> list[FunctionTool]:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    return [FunctionTool.from_defaults(add), FunctionTool.from_defaults(multiply)]


@pytest.mark.parametrize("streaming", [True, False])
async def test_function_agent_tool_exchange_stays_on_one_model(stub_llm, stub, streaming) -> None:
    llm = stub_llm()
    ask = "What is (2 + 3) * 4? Use the tools."
    sel = llm.route(ask, tools=_tools())
    usages = [Tokens(input=120, output=20), Tokens(input=160, output=18, cached=100),
              Tokens(input=200, output=9)]
    stub.script(sel.spec.split(":")[0], [
        Reply(tool_calls=[ToolCallSpec("add", {"a": 2, "b": 3}, id="call_1")], usage=usages[0]),
        Reply(tool_calls=[ToolCallSpec("multiply", {"a": 5, "b": 4}, id="call_2")],
              usage=usages[1]),
        Reply(text="(2 + 3) * 4 = 20", usage=usages[2]),
    ])
    agent = FunctionAgent(tools=_tools(), llm=llm, streaming=streaming)
    with track_costs() as costs:
        result = await agent.run(user_msg=ask)
    assert "20" in str(result)
    assert [t.tool_output.raw_output for t in result.tool_calls] == [5, 20]
    assert {f"{r.provider}:{r.model}" for r in stub.requests} == {sel.spec}
    assert [r.reason for r in llm.ledger.records] == ["routed", "pinned", "pinned"]
    assert "5" in str(stub.requests[1].json) and "20" in str(stub.requests[2].json)
    expected = sum(cost(Usage(u.input, u.output, cached_input_tokens=u.cached), sel.spec)
                   for u in usages)
    assert len(stub.requests) == costs.successful_requests == 3
    assert costs.total_cost == pytest.approx(expected, rel=1e-12)
    assert costs.prompt_tokens == sum(u.input for u in usages)
    assert costs.by_model()[sel.model].calls == 3


class RouterEmbedding(BaseEmbedding):
    """The router's own local embedder as a LlamaIndex embedding model."""

    embedder: Any = None

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embedder.embed([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embedder.embed([text])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


DOCS = ["Avengers-Pro clusters queries with k-means and routes each to the best model.",
        "Paris is the capital of France and its largest city.",
        "Photosynthesis turns light, water and carbon dioxide into sugar."]


def test_query_engine_routes_on_the_question(stub_llm, stub, fitted_router) -> None:
    embed = RouterEmbedding(embedder=fitted_router.embedder)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS], embed_model=embed)
    llm = stub_llm()
    seen: list[dict] = []

    class Capture(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, LLMChatEndEvent):
                seen.append(event.response.additional_kwargs[RESPONSE_KEY])

    capture = Capture()
    get_dispatcher().add_event_handler(capture)
    try:
        with track_costs() as costs:
            response = index.as_query_engine(llm=llm, similarity_top_k=1).query(QUESTION)
    finally:
        get_dispatcher().event_handlers.remove(capture)
    assert str(response).startswith("stub reply to:")
    assert "Paris" in response.source_nodes[0].node.get_content()  # local retrieval works
    (req,) = stub.requests
    assert "Paris is the capital of France" in str(req.json)
    # Routed on the question, not on the template filled with retrieved context.
    (facts,) = seen
    dry_run = llm.route(QUESTION).metadata()
    assert (facts["model"], facts["distances"]) == (dry_run["model"], dry_run["distances"])
    assert costs.total_cost == pytest.approx(stub_cost(stub)[1], rel=1e-12)


async def test_async_chat_engine_with_settings_llm(stub_llm, stub, monkeypatch) -> None:
    from llama_index.core import Settings

    llm = stub_llm()
    monkeypatch.setattr(Settings, "_llm", llm)
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCS],
                                            embed_model=MockEmbedding(embed_dim=8))
    chat_engine = index.as_chat_engine(chat_mode="condense_plus_context")
    reply = await chat_engine.achat(QUESTION)
    assert str(reply).startswith("stub reply to:")
    assert len(llm.ledger) == len(stub.requests) >= 1


def test_budget_stops_routing_when_spent(stub_llm) -> None:
    llm = stub_llm(budget=Budget(1e-9, on_exceed="raise"))
    llm.chat([ChatMessage(role="user", content=QUESTION)])
    with pytest.raises(BudgetExceededError, match="budget of"):
        llm.chat([ChatMessage(role="user", content=QUESTION)])


def test_budget_downgrade_goes_to_the_cheapest(stub_llm) -> None:
    llm = stub_llm(budget=Budget(1e-9, on_exceed="downgrade"))
    llm.chat([ChatMessage(role="user", content=QUESTION)])
    resp = llm.chat([ChatMessage(role="user", content=QUESTION)])
    f = resp.additional_kwargs[RESPONSE_KEY]
    assert f["reason"] == "budget-downgrade" and f["alpha"] == 0.0


async def test_concurrent_calls_add_up_exactly(stub_llm, stub) -> None:
    import asyncio

    llm = stub_llm()
    questions = [f"Question number {i}: what is {i} squared?" for i in range(40)]

    async def ask(i: int, q: str):
        msgs = [ChatMessage(role="user", content=q)]
        if i % 2:
            return [c async for c in await llm.astream_chat(msgs)][-1]
        return await llm.achat(msgs)

    with track_costs() as costs:
        responses = await asyncio.gather(*(ask(i, q) for i, q in enumerate(questions)))
    usage, dollars = stub_cost(stub)
    per_call = sum(r.additional_kwargs[RESPONSE_KEY]["cost_usd"] for r in responses)
    assert len(stub.requests) == costs.successful_requests == len(llm.ledger) == 40
    assert costs.usage == llm.ledger.total_usage == usage
    assert costs.total_cost == pytest.approx(dollars, rel=1e-12)
    assert costs.total_cost == pytest.approx(per_call, rel=1e-12)
    for model, totals in costs.by_model().items():
        assert totals.cost_usd == pytest.approx(llm.ledger.by_model()[model].cost_usd, rel=1e-12)


@pytest.mark.parametrize("provider", list(BY_PROVIDER))
async def test_tool_calls_through_each_provider(stub_llm, stub, provider) -> None:
    llm = stub_llm()
    name = BY_PROVIDER[provider]
    stub.script(provider, [Reply(tool_calls=[ToolCallSpec("add", {"a": 2, "b": 3})])] * 2)
    resp = await llm.achat_with_tools(_tools(), user_msg="add 2 and 3", tool_required=True,
                                      force=name)
    (call,) = llm.get_tool_calls_from_response(resp)
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 2, "b": 3})
    body = stub.requests[0].json
    assert "multiply" in str(body) and "add" in str(body)  # both tool schemas were sent
    out = await llm.apredict_and_call(_tools(), user_msg="add 2 and 3", force=name)
    assert out.response == "5"


async def test_streamed_tool_calls(stub_llm, stub) -> None:
    llm = stub_llm()
    stub.script("anthropic", [Reply(text="Let me add.",
                                    tool_calls=[ToolCallSpec("add", {"a": 1, "b": 4})])])
    gen = await llm.astream_chat_with_tools(_tools(), user_msg="add", force="claude-v1")
    chunks = [c async for c in gen]
    assert "".join(c.delta or "" for c in chunks) == "Let me add."
    (call,) = llm.get_tool_calls_from_response(chunks[-1])
    assert (call.tool_name, call.tool_kwargs) == ("add", {"a": 1, "b": 4})
    assert chunks[-1].additional_kwargs[RESPONSE_KEY]["usage"]["output_tokens"] > 0


def test_stream_falls_back_before_output(stub_llm, stub) -> None:
    llm = stub_llm(max_retries=0)
    sel = llm.route(QUESTION)
    stub.script(sel.spec, [Fail(503)])
    chunks = list(llm.stream_chat([ChatMessage(role="user", content=QUESTION)]))
    assert chunks[-1].message.content == "stub reply to: " + QUESTION
    assert chunks[-1].additional_kwargs[RESPONSE_KEY]["model"] == sel.ranking[1]


def test_structured_predict_uses_tool_calling(stub_llm, stub) -> None:
    from llama_index.core.prompts import PromptTemplate
    from pydantic import BaseModel

    class Capital(BaseModel):
        """The capital of a country."""

        country: str
        city: str

    llm = stub_llm()
    provider = llm.route("Capital of France?", tools=_tools()).spec.split(":")[0]
    stub.script(provider, [Reply(tool_calls=[ToolCallSpec(
        "Capital", {"country": "France", "city": "Paris"})])])
    out = llm.structured_predict(Capital, PromptTemplate("Capital of {country}?"),
                                 country="France")
    assert out == Capital(country="France", city="Paris")
    assert "Capital" in str(stub.requests[0].json)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_failing_llm_object_falls_back_to_a_spec(stub_llm, stub, streamed) -> None:
    from llama_index.core.llms.mock import MockFunctionCallingLLM

    class Down(MockFunctionCallingLLM):
        def chat(self, messages, **kwargs):
            raise ConnectionError("object candidate down")

        def stream_chat(self, messages, **kwargs):
            raise ConnectionError("object candidate down")

    first = stub_llm().route(QUESTION).model
    llm = stub_llm(models={first: Down()})
    msgs = [ChatMessage(role="user", content=QUESTION)]
    resp = list(llm.stream_chat(msgs))[-1] if streamed else llm.chat(msgs)
    f = resp.additional_kwargs[RESPONSE_KEY]
    assert f["model"] != first and f["spec"] == f"{stub.requests[0].provider}:" \
        f"{stub.requests[0].model}"
    assert f["fallback_attempts"] == [first] and "object candidate down" in f["attempts"][0][2]
    assert [r.model for r in llm.ledger.records] == [f["model"]]
