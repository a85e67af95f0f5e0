"""A real agent loop over routed models, and cost accounting: the callback handler's total
equals the sum over the calls the stub received (scripted usage x catalog prices)."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda

from langchain_avengers import AvengersCostCallbackHandler, get_avengers_callback
from shared_core import Budget, BudgetExceededError
from shared_core.pricing import cost
from shared_core.usage import Usage
from tests.stub_llm_server import (
    DEFAULT_OUTPUT_TOKENS,
    RecordedRequest,
    Reply,
    StubLLMServer,
    Tokens,
    ToolCallSpec,
    default_input_tokens,
)

QUESTION = "What's the weather and the local time in Paris?"


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"Sunny, 21 C in {city}"


def get_time(city: str) -> str:
    """Local time in a city."""
    return f"14:05 in {city}"


def spec_of(r: RecordedRequest) -> str:
    return f"{r.provider}:{r.model}"


def default_cost(requests: list[RecordedRequest]) -> float:
    """Cost of stub requests answered with the default reply."""
    return sum(
        cost(Usage(default_input_tokens(r.provider, r.json), DEFAULT_OUTPUT_TOKENS), spec_of(r))
        for r in requests
    )


def script_agent(stub: StubLLMServer, spec: str, times: int = 1) -> list[Tokens]:
    """Script ``spec``: two tool calls, then the answer (``times`` runs); returns the usages."""
    usages = []
    for _ in range(times):
        calls, answer = Tokens(120, 25), Tokens(180, 14)
        stub.script(spec, [
            Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"}),
                              ToolCallSpec("get_time", {"city": "Paris"})], usage=calls),
            Reply(text="Sunny, 21 C; it is 14:05.", usage=answer),
        ])
        usages += [calls, answer]
    return usages


def scripted_cost(usages: list[Tokens], spec: str) -> float:
    return sum(cost(Usage(u.input, u.output), spec) for u in usages)


def test_agent_loop_stays_on_one_model(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    sel = llm.route(QUESTION, tools=True)
    usages = script_agent(stub, sel.spec)
    agent = create_agent(llm, tools=[get_weather, get_time])
    with get_avengers_callback() as cb:
        result = agent.invoke({"messages": [HumanMessage(QUESTION)]})
    messages = result["messages"]
    assert messages[-1].content == "Sunny, 21 C; it is 14:05."
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage", "AIMessage", "ToolMessage", "ToolMessage", "AIMessage"]
    # the tool exchange stayed on the model that made the calls
    assert [spec_of(r) for r in stub.requests] == [sel.spec, sel.spec]
    assert messages[1].response_metadata["routing"]["reason"] == "routed"
    assert messages[-1].response_metadata["routing"]["reason"] == "pinned"
    assert {m.response_metadata["router_model"] for m in messages if isinstance(m, AIMessage)} == {
        sel.model}
    assert "Sunny, 21 C in Paris" in str(stub.requests[1].json)
    # cost: the handler's total is the stub's scripted usage at catalog prices
    assert cb.successful_requests == 2
    assert cb.total_cost == pytest.approx(scripted_cost(usages, sel.spec), rel=1e-12)
    assert cb.prompt_tokens == sum(u.input for u in usages)
    assert cb.completion_tokens == sum(u.output for u in usages)
    assert cb.total_cost == pytest.approx(llm.ledger.total_cost, rel=1e-12)


def test_new_human_turn_is_routed_afresh(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    agent = create_agent(llm, tools=[get_weather, get_time])
    sel = llm.route(QUESTION, tools=True)
    script_agent(stub, sel.spec)
    first = agent.invoke({"messages": [HumanMessage(QUESTION)]})["messages"]
    follow_up = "Now write a limerick about a cat, no tools needed."
    expected = llm.route([*first, HumanMessage(follow_up)], tools=True)
    assert expected.reason == "routed"
    out = agent.invoke({"messages": [*first, HumanMessage(follow_up)]})["messages"]
    assert out[-1].response_metadata["router_model"] == expected.model
    assert out[-1].response_metadata["routing"]["reason"] == "routed"


def test_streamed_and_unstreamed_agent_cost_the_same(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    sel = llm.route(QUESTION, tools=True)
    usages = script_agent(stub, sel.spec, times=2)
    agent = create_agent(llm, tools=[get_weather, get_time])
    with get_avengers_callback() as plain:
        agent.invoke({"messages": [HumanMessage(QUESTION)]})
    with get_avengers_callback() as streamed:
        chunks = list(agent.stream({"messages": [HumanMessage(QUESTION)]},
                                   stream_mode="messages"))
    assert chunks
    assert [r.stream for r in stub.requests] == [True, True, True, True]  # invoke streams too
    assert plain.usage == streamed.usage
    assert plain.total_tokens == sum(u.input + u.output for u in usages[:2])
    assert streamed.total_cost == pytest.approx(plain.total_cost, rel=1e-12)
    assert streamed.total_cost == pytest.approx(scripted_cost(usages[2:], sel.spec), rel=1e-12)


async def test_async_agent_and_concurrent_batch(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    sel = llm.route(QUESTION, tools=True)
    script_agent(stub, sel.spec)
    agent = create_agent(llm, tools=[get_weather, get_time])
    prompts = [f"Question number {i}: what is {i} + {i}?" for i in range(12)]
    with get_avengers_callback() as cb:
        await agent.ainvoke({"messages": [HumanMessage(QUESTION)]})
        await llm.abatch(prompts, config={"max_concurrency": 6})
        llm.batch(prompts[:4])
    assert len(stub.requests) == 2 + 12 + 4
    agent_cost = sum(cost(Usage(u.input, u.output), sel.spec)
                     for u in (Tokens(120, 25), Tokens(180, 14)))
    assert cb.successful_requests == 18
    assert cb.total_cost == pytest.approx(agent_cost + default_cost(stub.requests[2:]),
                                          rel=1e-12)
    assert cb.total_cost == pytest.approx(llm.ledger.total_cost, rel=1e-12)


def fake(text: str, model_name: str | None = "gpt-4o-mini", n: int = 3) -> GenericFakeChatModel:
    meta = {"model_name": model_name} if model_name else {}
    reply = AIMessage(text, response_metadata=meta,
                      usage_metadata={"input_tokens": 11, "output_tokens": 4, "total_tokens": 15})
    return GenericFakeChatModel(messages=iter([reply] * n))


def test_nested_chains_and_plain_models_in_one_run(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    plain = fake("a plain model's answer")
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")])
    inner = prompt | llm | StrOutputParser()
    outer = RunnableLambda(lambda q: inner.invoke({"q": q})) | (lambda s: plain.invoke(s))
    with get_avengers_callback() as cb:
        with get_avengers_callback() as nested:
            out = outer.invoke("What is the capital of France?")
        llm.stream("And of Italy?")
        for _ in llm.stream("And of Spain?"):
            pass
    assert out.content == "a plain model's answer"
    plain_cost = cost(Usage(11, 4), "gpt-4o-mini")
    assert nested.successful_requests == 2
    assert nested.total_cost == pytest.approx(default_cost(stub.requests[:1]) + plain_cost,
                                              rel=1e-12)
    by_model = nested.by_model()
    assert by_model["gpt-4o-mini"].calls == 1
    # the outer block counts the nested block's calls and its own (one stream was not consumed)
    assert cb.successful_requests == 3
    assert cb.total_cost == pytest.approx(default_cost(stub.requests) + plain_cost, rel=1e-12)


def test_object_candidate_is_counted_once(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    routed = llm.route(QUESTION).model
    obj = make_model(models={routed: fake("from the object")})
    handler = AvengersCostCallbackHandler()
    obj.invoke(QUESTION, config={"callbacks": [handler]})
    assert handler.successful_requests == 1
    assert handler.by_model()[routed].calls == 1
    assert handler.total_cost == pytest.approx(cost(Usage(11, 4), "gpt-4o-mini"))
    assert stub.requests == []


def test_unpriced_and_unmetered_plain_models(stub: StubLLMServer) -> None:
    unknown = fake("x", model_name="my-local-llama")
    no_usage = GenericFakeChatModel(messages=iter([AIMessage("y")]))
    with get_avengers_callback() as cb:
        with pytest.warns(UserWarning, match="my-local-llama"):
            unknown.invoke("hi")
        no_usage.invoke("hi")
    assert cb.successful_requests == 2
    assert cb.unpriced_requests == 1 and cb.unmetered_requests == 1
    assert cb.total_cost == 0.0 and cb.total_tokens == 15
    assert "unpriced" in repr(cb)


def test_budget_raises_at_the_cap(make_model, stub: StubLLMServer) -> None:
    llm = make_model(budget=Budget(0.5, on_exceed="raise"))
    spec = llm.route(QUESTION).spec
    stub.script(spec, [Reply(text="expensive", usage=Tokens(input=1_000_000, output=100_000))])
    with get_avengers_callback() as cb:
        llm.invoke(QUESTION)
        with pytest.raises(BudgetExceededError, match=r"\$0.5"):
            llm.invoke(QUESTION)
    assert len(stub.requests) == 1  # the cap is overshot by at most the one call in flight
    assert cb.successful_requests == 1 and cb.total_cost > 0.5


def test_budget_downgrades_to_cheapest(make_model, stub: StubLLMServer) -> None:
    llm = make_model(budget=Budget(0.5, on_exceed="downgrade"), alpha=1.0)
    first = llm.route(QUESTION)
    stub.script(first.spec, [Reply(text="expensive", usage=Tokens(input=1_000_000, output=0))])
    llm.invoke(QUESTION)
    msg = llm.invoke(QUESTION)
    assert msg.response_metadata["routing"]["reason"] == "budget-downgrade"
    assert msg.response_metadata["alpha"] == 0.0
    assert msg.response_metadata["router_model"] == llm.route(QUESTION, alpha=0.0).model


def test_handler_in_config_counts_tool_message_history(make_model, stub) -> None:
    llm = make_model()
    handler = AvengersCostCallbackHandler()
    history = [HumanMessage(QUESTION),
               AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"},
                                          "id": "c1"}]),
               ToolMessage("Sunny", tool_call_id="c1")]
    llm.bind_tools([get_weather]).invoke(history, config={"callbacks": [handler]})
    assert handler.total_cost == pytest.approx(default_cost(stub.requests), rel=1e-12)
    assert "Total Cost (USD)" in repr(handler)


def test_agent_passes_configurable_overrides(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    cheap = llm.route(QUESTION, tools=True, alpha=0.0)
    script_agent(stub, cheap.spec)
    agent = create_agent(llm, tools=[get_weather, get_time])
    out = agent.invoke({"messages": [HumanMessage(QUESTION)]},
                       config={"configurable": {"alpha": 0.0}})["messages"]
    assert out[1].response_metadata["router_model"] == cheap.model
    assert out[1].response_metadata["alpha"] == 0.0
    assert [spec_of(r) for r in stub.requests] == [cheap.spec, cheap.spec]
    bound = llm.with_config(configurable={"model": "gpt-4-1106-preview"})
    assert bound.invoke("hi").response_metadata["router_model"] == "gpt-4-1106-preview"


async def test_many_concurrent_calls_total_exactly(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    prompts = [f"Concurrent question {i}: name a prime above {i * 7}." for i in range(60)]
    with get_avengers_callback() as cb:
        out = await llm.abatch(prompts, config={"max_concurrency": 30})
    assert len(out) == len(stub.requests) == 60
    assert cb.successful_requests == 60
    assert cb.total_cost == pytest.approx(default_cost(stub.requests), rel=1e-12)
    assert cb.total_cost == pytest.approx(sum(m.response_metadata["cost_usd"] for m in out),
                                          rel=1e-12)
    per_model = cb.by_model()
    for name, totals in llm.ledger.by_model().items():
        assert per_model[name].calls == totals.calls
        assert per_model[name].usage == totals.usage
