"""RoutedChat, the core both framework adapters sit on: selection, fallback, the ledger and
budgets, through the real provider SDKs against the loopback stub."""

import asyncio

import pytest

from shared_core import (
    Budget,
    BudgetExceededError,
    ChatRequest,
    ConfigurationError,
    Message,
    RoutedChat,
    RouterFileError,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolSpec,
    UnknownModelError,
)
from shared_core.engine import RoutedResponse
from shared_core.pricing import cost
from shared_core.usage import Usage
from tests.stub_llm_server import Fail, Reply, Tokens

QUESTION = "Which gas do plants absorb from the air? A) oxygen B) carbon dioxide"


def engine_for(router, stub, **kw) -> RoutedChat:
    per_model = {
        m: {"base_url": stub.base_url(spec.split(":")[0])} for m, spec in router.model_specs.items()
    }
    return RoutedChat(
        router,
        provider_options={"api_key": "test-key", "per_model": per_model, "retry_backoff": 0.0},
        **kw,
    )


def ask(text: str = QUESTION) -> ChatRequest:
    return ChatRequest(messages=(Message.user(text),))


def test_construction_does_no_io(tmp_path):
    chat = RoutedChat(tmp_path / "missing.json")
    with pytest.raises(RouterFileError, match="no router file at .*avengers fit"):
        chat.select([Message.user("hi")])


def test_select_routes_like_the_router_among_models_with_targets(fitted_router, stub):
    chat = engine_for(fitted_router, stub, alpha=0.6)
    sel = chat.select([Message.user(QUESTION)])
    expected = fitted_router.route(QUESTION, 0.6, allowed=list(fitted_router.model_specs))
    assert (sel.model, sel.reason, sel.alpha) == (expected.model, "routed", 0.6)
    assert sel.ranking[0] == sel.model and len(sel.ranking) == 3  # chosen + 2 fallbacks
    assert set(sel.ranking) <= set(fitted_router.model_specs)
    assert sel.metadata()["scores"][sel.model] == pytest.approx(expected.score_of(sel.model))


def test_forced_pinned_and_unknown(fitted_router, stub):
    chat = engine_for(fitted_router, stub)
    assert chat.select([Message.user("hi")], force="claude-v1").reason == "forced"
    exchange = [
        Message.user("weather in Paris?"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "weather", {}),), model="claude-v1"),
        Message.tool("c1", "sunny"),
    ]
    sel = chat.select(exchange)
    assert (sel.model, sel.reason) == ("claude-v1", "pinned")
    sel = chat.select([*exchange, Message.assistant("Sunny."), Message.user("and Rome?")])
    assert sel.reason == "routed"  # a new human turn is routed afresh
    with pytest.raises(UnknownModelError, match="unknown router model 'gpt5'; known: "):
        chat.select([Message.user("hi")], exclude=["gpt5"])


def test_capability_filter(fitted_router, stub):
    chat = engine_for(fitted_router, stub, alpha=0.0)
    sel = chat.select([Message.user("hi")], need=("tools",))
    assert all(chat.supports(m, "tools") for m in sel.ranking)


def test_chat_records_the_exact_cost(fitted_router, stub):
    chat = engine_for(fitted_router, stub)
    out = chat.chat(ask())
    assert isinstance(out, RoutedResponse)
    spec = fitted_router.model_specs[out.served_by]
    assert out.response.usage.output_tokens == 7
    assert out.response.cost_usd == pytest.approx(cost(out.response.usage, spec))
    (rec,) = chat.ledger.records
    assert (rec.model, rec.spec, rec.cost_usd) == (out.served_by, spec, out.response.cost_usd)
    assert len(stub.requests) == 1


def test_fallback_on_early_failure_reports_each_attempt(fitted_router, stub):
    chat = engine_for(fitted_router, stub)
    sel = chat.select([Message.user(QUESTION)])
    first, second = (fitted_router.model_specs[m] for m in sel.ranking[:2])
    stub.script(first, [Fail(401)])
    out = chat.chat(ask(), sel)
    assert out.served_by == sel.ranking[1]
    assert [a[0] for a in out.attempts] == [first]
    assert out.metadata["fallback_attempts"] == [first]
    stub.script(first, [Fail(401)])
    events = list(chat.stream(ask(), sel))
    final = events[-1]
    assert isinstance(final, RoutedResponse) and final.served_by == sel.ranking[1]
    assert final.metadata["fallback_attempts"] == [first]
    assert "AuthenticationError" in final.attempts[0][2] and final.attempts[0][1] == 0.0
    assert second == fitted_router.model_specs[final.served_by]


def test_streamed_and_unstreamed_cost_the_same(fitted_router, stub):
    chat = engine_for(fitted_router, stub, alpha=0.9)
    sel = chat.select([Message.user(QUESTION)])
    spec = fitted_router.model_specs[sel.model]
    usage = Tokens(input=321, output=45, cached=100)
    stub.script(spec, [Reply(text="carbon dioxide", usage=usage)] * 2)
    plain = chat.chat(ask(), sel)
    events = list(chat.stream(ask(), sel))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    streamed = next(e for e in events if isinstance(e, StreamEnd)).response
    assert text == plain.response.text == "carbon dioxide"
    assert streamed.usage == plain.response.usage
    assert streamed.usage.cached_input_tokens == 100
    assert streamed.cost_usd == plain.response.cost_usd is not None
    a, b = chat.ledger.records
    assert (a.usage, a.cost_usd) == (b.usage, b.cost_usd)


async def test_200_concurrent_calls_total_exactly(fitted_router, stub):
    chat = engine_for(fitted_router, stub)
    texts = [f"Question {i}: " + "why is the sky blue? " * (1 + i % 7) for i in range(200)]
    results = await asyncio.gather(*(chat.achat(ask(t)) for t in texts))
    assert len(stub.requests) == 200
    assert chat.ledger.total_cost == pytest.approx(
        sum(r.response.cost_usd for r in results), rel=1e-12
    )
    per_model = chat.ledger.by_model()
    for model, totals in per_model.items():
        mine = [r for r in results if r.served_by == model]
        assert totals.calls == len(mine)
        assert totals.cost_usd == pytest.approx(sum(r.response.cost_usd for r in mine), rel=1e-12)
        assert totals.usage == sum((r.response.usage for r in mine), Usage())
    # each call got its own usage back (the stub reports the characters it received as tokens)
    for text, r in zip(texts, results, strict=True):
        assert r.response.usage.input_tokens == len(text)


def test_budget_raise_stops_after_the_cap(fitted_router, stub):
    chat = engine_for(fitted_router, stub, budget=Budget(1e-9, on_exceed="raise"))
    chat.chat(ask())  # under the cap before the call: it runs
    with pytest.raises(BudgetExceededError, match="budget of \\$1e-09 is spent"):
        chat.chat(ask())
    assert len(stub.requests) == 1  # the cap is overshot by one call at most


def test_budget_downgrade_routes_cheapest(fitted_router, stub):
    chat = engine_for(fitted_router, stub, alpha=1.0, budget=Budget(1e-9, on_exceed="downgrade"))
    chat.chat(ask())
    out = chat.chat(ask())
    assert out.selection.reason == "budget-downgrade" and out.selection.alpha == 0.0
    cheapest = chat.router.route(QUESTION, 0.0, allowed=list(fitted_router.model_specs)).model
    assert out.served_by == cheapest


def test_budget_lowers_alpha_as_spend_nears_the_cap(fitted_router, stub):
    budget = Budget(1.0, soft_fraction=0.5)
    chat = engine_for(fitted_router, stub, alpha=0.8, budget=budget)
    budget.add(0.75)
    assert chat.select([Message.user(QUESTION)]).alpha == pytest.approx(0.4)


def test_no_targets_is_a_clear_error(fitted_router, tmp_path):
    from shared_core import Router

    bare = Router.load(fitted_router.save(tmp_path / "r.json"))
    bare.model_specs = {}
    with pytest.raises(ConfigurationError, match="records no provider spec"):
        RoutedChat(bare).select([Message.user("hi")])


def test_tools_round_trip_through_the_engine(fitted_router, stub):
    from tests.stub_llm_server import ToolCallSpec

    chat = engine_for(fitted_router, stub)
    tool = ToolSpec(
        "weather",
        "Weather in a city",
        {"type": "object", "properties": {"city": {"type": "string"}}},
    )
    req = ChatRequest(messages=(Message.user("Weather in Paris?"),), tools=(tool,))
    sel = chat.select(req.messages, need=("tools",))
    stub.script(
        fitted_router.model_specs[sel.model],
        [Reply(tool_calls=[ToolCallSpec("weather", {"city": "Paris"})])],
    )
    out = chat.chat(req, sel)
    (call,) = out.response.tool_calls
    assert (call.name, call.arguments) == ("weather", {"city": "Paris"})
