"""AvengersChatModel against the stub server: every entry point, metadata, usage, overrides,
dry-run routing, fallback, tools, pinning and structured output."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.load import dumps
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from langchain_avengers import AvengersChatModel
from shared_core import AllModelsFailedError, RouterFileError, Selection, UnknownModelError
from shared_core.pricing import cost
from shared_core.usage import Usage
from tests.stub_llm_server import Fail, Reply, StubLLMServer, Tokens, ToolCallSpec

QUESTION = "What is the capital of France?"


def served_spec(msg: AIMessage) -> str:
    return str(msg.response_metadata["spec"])


def total(chunks: list) -> AIMessage:
    out = chunks[0]
    for c in chunks[1:]:
        out = out + c
    return out


def test_construction_does_no_io(tmp_path: Path) -> None:
    llm = AvengersChatModel(router=tmp_path / "missing.json", alpha=0.3)
    assert llm.alpha == 0.3
    with pytest.raises(RouterFileError, match="missing.json"):
        llm.invoke("hi")


def test_default_router_with_alpha_only(router_file: Path, monkeypatch, stub) -> None:
    monkeypatch.setenv("AVENGERS_ROUTER", str(router_file))
    llm = AvengersChatModel(alpha=0.7)
    decision = llm.route(QUESTION)
    assert decision.model in llm.engine.targets
    assert decision.alpha == 0.7


def test_invoke_metadata_and_usage(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    expected = llm.route(QUESTION)
    msg = llm.invoke(QUESTION)
    req = stub.requests[-1]
    meta = msg.response_metadata
    assert meta["router_model"] == expected.model
    assert meta["spec"] == expected.spec == f"{req.provider}:{req.model}"
    assert meta["provider"] == req.provider and meta["model_name"] == req.model
    assert meta["alpha"] == 0.7 and meta["cluster"] == expected.decision.cluster
    assert set(meta["scores"]) >= set(expected.ranking)
    assert meta["routing"]["ranking"] == list(expected.ranking)
    usage = Usage(input_tokens=msg.usage_metadata["input_tokens"],
                  output_tokens=msg.usage_metadata["output_tokens"])
    assert usage.output_tokens == 7 and usage.input_tokens > 0
    assert meta["cost_usd"] == pytest.approx(cost(usage, meta["spec"]))
    assert msg.content.startswith("stub reply to:")
    assert llm.ledger.total_cost == pytest.approx(meta["cost_usd"])


def test_stream_chunks_add_up_to_invoke(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    stub.script("openai", [Reply(text="Paris is the capital.", usage=Tokens(40, 9))] * 2)
    stub.script("anthropic", [Reply(text="Paris is the capital.", usage=Tokens(40, 9))] * 2)
    stub.script("google", [Reply(text="Paris is the capital.", usage=Tokens(40, 9))] * 2)
    msg = llm.invoke(QUESTION)
    chunks = list(llm.stream(QUESTION))
    assert len(chunks) > 2
    assert [c.usage_metadata for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    streamed = total(chunks)
    assert streamed.content == msg.content
    assert streamed.usage_metadata == msg.usage_metadata
    assert streamed.response_metadata["cost_usd"] == msg.response_metadata["cost_usd"]
    assert streamed.response_metadata["router_model"] == msg.response_metadata["router_model"]


async def test_async_entry_points(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    msg = await llm.ainvoke(QUESTION)
    chunks = [c async for c in llm.astream(QUESTION)]
    assert total(chunks).content == msg.content
    batch = await llm.abatch([QUESTION, "Write a haiku about the sea"])
    assert [m.response_metadata["router_model"] for m in batch][0] == (
        msg.response_metadata["router_model"])
    assert len(stub.requests) == 4
    assert len(llm.ledger) == 4


def test_batch_routes_each_input(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    prompts = [QUESTION, "Solve 3x + 5 = 11 step by step", "Translate 'cat' into German"]
    out = llm.batch(prompts)
    assert [m.response_metadata["router_model"] for m in out] == [
        llm.route(p).model for p in prompts]
    assert len(stub.requests) == 3


def test_overrides_by_kwargs_and_configurable(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    routed = llm.route(QUESTION).model
    other = next(m for m in llm.engine.targets if m != routed)
    # force by router model name, by spec and by provider model name
    assert llm.invoke(QUESTION, model=other).response_metadata["router_model"] == other
    spec = llm.engine.targets[other]
    assert llm.invoke(QUESTION, model=spec).response_metadata["router_model"] == other
    forced = llm.invoke(QUESTION, config={"configurable": {"model": spec.split(":")[1]}})
    assert forced.response_metadata["router_model"] == other
    assert forced.response_metadata["routing"]["reason"] == "forced"
    # exclude
    excluded = llm.invoke(QUESTION, exclude=[routed])
    assert excluded.response_metadata["router_model"] != routed
    excluded = llm.invoke(QUESTION, config={"configurable": {"exclude": [routed]}})
    assert excluded.response_metadata["router_model"] != routed
    # alpha: 0 is the cheapest-first decision of the router itself
    cheap = llm.invoke(QUESTION, config={"configurable": {"alpha": 0.0}})
    assert cheap.response_metadata["alpha"] == 0.0
    assert cheap.response_metadata["router_model"] == llm.route(QUESTION, alpha=0.0).model
    bound = llm.bind(alpha=1.0).invoke(QUESTION)
    assert bound.response_metadata["router_model"] == llm.route(QUESTION, alpha=1.0).model
    with pytest.raises(UnknownModelError, match="gpt-99"):
        llm.invoke(QUESTION, model="gpt-99")


def test_route_is_a_dry_run(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.2)
    sel = llm.route([SystemMessage("Be brief."), HumanMessage(QUESTION)])
    assert isinstance(sel, Selection) and sel.reason == "routed" and sel.alpha == 0.2
    assert sel.metadata()["scores"][sel.model] is not None
    assert stub.requests == [] and len(llm.ledger) == 0


def test_standard_params_reach_the_provider(make_model, stub: StubLLMServer) -> None:
    llm = make_model(temperature=0.2, max_tokens=33, stop=["END"])
    llm.invoke(QUESTION, model="gpt-4-1106-preview")
    body = stub.requests[-1].json
    assert body["temperature"] == 0.2 and body["max_tokens"] == 33 and body["stop"] == ["END"]
    assert stub.requests[-1].headers["authorization"] == "Bearer test-key"
    assert "test-key" not in repr(llm) and "test-key" not in dumps(llm)


def test_fallback_to_next_ranked_spec(make_model, stub: StubLLMServer) -> None:
    llm = make_model(max_retries=0)
    sel = llm.route(QUESTION)
    first = sel.spec
    stub.script(first, [Fail(500)])
    msg = llm.invoke(QUESTION)
    assert msg.response_metadata["router_model"] == sel.ranking[1]
    assert msg.response_metadata["routing"]["fallback_attempts"] == [first]
    assert [f"{r.provider}:{r.model}" for r in stub.requests][0] == first


def test_all_candidates_fail(make_model, stub: StubLLMServer) -> None:
    llm = make_model(max_retries=0, max_fallbacks=1)
    for p in ("openai", "anthropic", "google"):
        stub.script(p, [Fail(503)] * 3)
    with pytest.raises(AllModelsFailedError):
        llm.invoke(QUESTION)


def fake(text: str, model_name: str = "gpt-4o-mini", n: int = 5) -> GenericFakeChatModel:
    reply = AIMessage(text, response_metadata={"model_name": model_name},
                      usage_metadata={"input_tokens": 11, "output_tokens": 4, "total_tokens": 15})
    return GenericFakeChatModel(messages=iter([reply] * n))


class Broken(GenericFakeChatModel):
    def _generate(self, *args, **kwargs):
        raise RuntimeError("down")

    def _stream(self, *args, **kwargs):
        raise RuntimeError("down")
        yield  # pragma: no cover


def test_langchain_model_objects_as_candidates(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    routed = llm.route(QUESTION).model
    obj = make_model(models={routed: fake("from the object")})
    msg = obj.invoke(QUESTION)
    assert msg.content == "from the object"
    assert msg.response_metadata["router_model"] == routed
    assert msg.response_metadata["cost_usd"] == pytest.approx(
        cost(Usage(11, 4), "gpt-4o-mini"))
    assert msg.usage_metadata["total_tokens"] == 15
    assert stub.requests == []
    with pytest.warns(UserWarning, match="reports no token usage"):  # the fake streams none
        chunks = list(obj.stream(QUESTION))
    assert total(chunks).content == "from the object"
    assert total(chunks).response_metadata["router_model"] == routed
    assert len(obj.ledger) == 2


async def test_object_candidate_fallback(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    sel = llm.route(QUESTION)
    obj = make_model(models={sel.model: Broken(messages=iter([]))})
    msg = obj.invoke(QUESTION)
    assert msg.response_metadata["router_model"] == sel.ranking[1]
    assert msg.response_metadata["routing"]["fallback_attempts"] == [sel.model]
    amsg = await obj.ainvoke(QUESTION)
    assert amsg.response_metadata["router_model"] == sel.ranking[1]
    chunks = [c async for c in obj.astream(QUESTION)]
    assert total(chunks).response_metadata["router_model"] == sel.ranking[1]


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"Sunny in {city}"


def test_bind_tools_only_tool_capable_candidates(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    routed = llm.route(QUESTION).model
    no_tools = make_model(models={routed: fake("no tools here")})
    assert no_tools.invoke(QUESTION).content == "no tools here"
    stub.script("openai", [Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})])])
    stub.script("anthropic", [Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})])])
    stub.script("google", [Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})])])
    msg = no_tools.bind_tools([get_weather]).invoke("Weather in Paris?")
    assert msg.response_metadata["router_model"] != routed
    assert msg.tool_calls[0]["name"] == "get_weather" and msg.tool_calls[0]["args"] == {
        "city": "Paris"}
    tools = stub.requests[-1].json.get("tools") or stub.requests[-1].json.get("tools")
    assert tools


def test_tool_exchange_is_pinned_and_new_turn_rerouted(make_model, stub: StubLLMServer) -> None:
    llm = make_model(alpha=0.7)
    question = "Weather in Paris?"
    first = llm.route(question).model
    other = next(m for m in llm.engine.targets if m != first)
    call = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"},
                                      "id": "call_1"}],
                     response_metadata={"router_model": other})
    history = [HumanMessage(question), call, ToolMessage("Sunny", tool_call_id="call_1")]
    sel = llm.route(history)
    assert sel.model == other and sel.reason == "pinned"
    msg = llm.bind_tools([get_weather]).invoke(history)
    assert msg.response_metadata["router_model"] == other
    assert msg.response_metadata["routing"]["reason"] == "pinned"
    # a new human turn is routed afresh
    later = [*history, msg, HumanMessage(question)]
    assert llm.route(later).reason == "routed" and llm.route(later).model == first


class Capital(BaseModel):
    """The capital of a country."""

    country: str
    capital: str


def test_structured_output_function_calling(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    args = {"country": "France", "capital": "Paris"}
    for p in ("openai", "anthropic", "google"):
        stub.script(p, [Reply(tool_calls=[ToolCallSpec("Capital", args)])] * 2)
    assert llm.with_structured_output(Capital).invoke(QUESTION) == Capital(**args)
    raw = llm.with_structured_output(Capital, include_raw=True).invoke(QUESTION)
    assert raw["parsed"] == Capital(**args) and raw["parsing_error"] is None
    assert raw["raw"].response_metadata["cost_usd"] > 0


def test_structured_output_json_schema(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    args = {"country": "France", "capital": "Paris"}
    sel = llm.route(QUESTION)
    stub.script(sel.spec, [Reply(text=json.dumps(args))] * 2)
    schema = Capital.model_json_schema()
    assert llm.with_structured_output(schema, method="json_schema").invoke(QUESTION) == args
    out = llm.with_structured_output(Capital, method="json_schema").invoke(QUESTION)
    assert out == Capital(**args)


def test_usage_only_on_last_stream_chunk_with_tool_calls(make_model, stub) -> None:
    llm = make_model()
    for p in ("openai", "anthropic", "google"):
        stub.script(p, [Reply(text="Let me check.", usage=Tokens(50, 12),
                              tool_calls=[ToolCallSpec("get_weather", {"city": "Paris"})])])
    chunks = list(llm.bind_tools([get_weather]).stream("Weather in Paris?"))
    msg = total(chunks)
    assert msg.tool_calls[0]["args"] == {"city": "Paris"}
    assert msg.usage_metadata["input_tokens"] == 50 and msg.usage_metadata["output_tokens"] == 12
    assert chunks[-1].chunk_position == "last"


def test_no_unexpected_warnings_on_routed_calls(make_model, stub) -> None:
    llm = make_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm.invoke(QUESTION)


def test_streaming_field_streams_invoke(make_model, stub: StubLLMServer) -> None:
    plain = make_model().invoke(QUESTION)
    streamed = make_model(streaming=True).invoke(QUESTION)
    assert [r.stream for r in stub.requests] == [True, True]  # invoke streams either way
    assert streamed.content == plain.content
    assert streamed.usage_metadata == plain.usage_metadata
    assert streamed.response_metadata["cost_usd"] == plain.response_metadata["cost_usd"]


class ToolCalling(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


async def test_object_candidate_tool_calls_unstreamed(make_model, stub) -> None:
    """A non-streamed call invokes an object whole: its tool calls, usage and model name."""
    routed = make_model().route("Weather in Paris?", tools=True).model
    reply = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"},
                                       "id": "call_1", "type": "tool_call"}],
                      response_metadata={"model_name": "gpt-4o-mini"},
                      usage_metadata={"input_tokens": 11, "output_tokens": 4, "total_tokens": 15})
    llm = make_model(models={routed: ToolCalling(messages=iter([reply] * 2))},
                     allowed_models=[routed]).bind_tools([get_weather])
    for msg in (llm.invoke("Weather in Paris?"), await llm.ainvoke("Weather in Paris?")):
        assert msg.tool_calls == reply.tool_calls
        assert msg.usage_metadata == reply.usage_metadata
        assert msg.response_metadata["cost_usd"] == pytest.approx(
            cost(Usage(11, 4), "gpt-4o-mini"))
        assert msg.response_metadata["router_model"] == routed
    assert stub.requests == []


class Tempered(GenericFakeChatModel):
    temperature: float = 1.0
    max_tokens: int | None = None

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        result = super()._generate(messages, stop, run_manager, **kwargs)
        result.generations[0].message.content = f"t={self.temperature} max={self.max_tokens}"
        return result


def test_standard_params_forwarded_to_model_objects(make_model, stub) -> None:
    routed = make_model().route(QUESTION).model
    llm = make_model(models={routed: Tempered(messages=iter([AIMessage("x")]))},
                     temperature=0.1, max_tokens=64)
    with pytest.warns(UserWarning, match="no token usage"):
        msg = llm.invoke(QUESTION)
    assert msg.content == "t=0.1 max=64"
    assert msg.response_metadata["cost_usd"] is None  # unknown, never a silent zero
    assert llm.ledger.unpriced_calls == 1


def test_route_on_conversation(make_model) -> None:
    from shared_core.engine import query_text

    history = [HumanMessage("Prove that sqrt(2) is irrational."), AIMessage("Assume p/q ..."),
               HumanMessage("thanks!")]
    for route_on in ("last_user", "user_turns", "conversation"):
        llm = make_model(route_on=route_on)
        text = query_text(llm._plan(history, None, {}).request.messages, route_on)
        assert llm.route(history).decision.to_dict() == llm.engine.router.route(
            text, 0.7, allowed=list(llm.engine.targets)).to_dict()


def test_allowed_models(make_model, stub) -> None:
    llm = make_model(allowed_models=["claude-v1", "gpt-3.5-turbo-1106"])
    assert set(llm.route(QUESTION).ranking) <= {"claude-v1", "gpt-3.5-turbo-1106"}
    assert llm.invoke(QUESTION).response_metadata["router_model"] in (
        "claude-v1", "gpt-3.5-turbo-1106")


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
async def test_stream_events_v3_take_overrides(make_model, stub: StubLLMServer) -> None:
    llm = make_model()
    stream = llm.stream_events(QUESTION, version="v3",
                               config={"configurable": {"model": "claude-v1"}})
    list(stream)
    assert stream.output.response_metadata["router_model"] == "claude-v1"
    astream = await llm.astream_events(QUESTION, version="v3", model="gpt-4-1106-preview")
    [e async for e in astream]
    assert (await astream.output).response_metadata["router_model"] == "gpt-4-1106-preview"
    events = [e async for e in llm.astream_events(
        QUESTION, version="v2", config={"configurable": {"model": "claude-v1"}})]
    end = next(e for e in events if e["event"] == "on_chat_model_end")
    assert end["data"]["output"].response_metadata["router_model"] == "claude-v1"


def test_settings_assigned_after_first_use_take_effect(make_model, stub) -> None:
    from shared_core import Budget

    budget = Budget(10.0)
    llm = make_model(alpha=0.7, budget=budget)
    llm.invoke(QUESTION)
    llm.alpha = 0.0
    assert llm.route(QUESTION).model == llm.route(QUESTION, alpha=0.0).model
    assert llm.invoke(QUESTION).response_metadata["alpha"] == 0.0
    llm.route_on = "conversation"
    llm.max_fallbacks = 0
    assert llm.engine.route_on == "conversation" and len(llm.route(QUESTION).ranking) == 1
    llm.invoke(QUESTION)
    assert budget.spent == pytest.approx(llm.ledger.total_cost)  # subscribed once


def test_model_copy_with_new_settings_gets_its_own_engine(make_model, stub) -> None:
    llm = make_model(max_fallbacks=2)
    llm.invoke(QUESTION)
    copy = llm.model_copy(update={"max_fallbacks": 0})
    assert len(copy.route(QUESTION).ranking) == 1
    assert len(llm.route(QUESTION).ranking) == 3
    assert copy.ledger is llm.ledger  # the copy still accounts in the same ledger
