"""Fallback chains: a failing model never loses the request when a fallback is configured."""

from __future__ import annotations

import pytest

from shared_core._errors import (
    AllModelsFailedError,
    AuthenticationError,
    ProviderConnectionError,
    RateLimitError,
)
from shared_core.messages import ChatRequest, Message, StreamEnd, TextDelta
from shared_core.providers import (
    FallbackResult,
    acall_with_fallback,
    astream_with_fallback,
    call_with_fallback,
    stream_with_fallback,
)
from tests.stub_llm_server import Fail, Reply, StubLLMServer, Tokens

REQ = ChatRequest(messages=(Message.user("route me"),))
FAILURES = {
    "429x3": [Fail(429, "slow down")] * 3,
    "500": [Fail(500, "boom")] * 3,
    "timeout": [Reply(text="late", delay=0.6)] * 3,
    "401": [Fail(401, "invalid x-api-key")],
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_fallback_serves_the_request(make, stub: StubLLMServer, failure: str) -> None:
    stub.script("openai", FAILURES[failure])
    stub.script("anthropic", [Reply(text="served by claude", usage=Tokens(100, 10))])
    chain = [make("openai", timeout=0.2, max_retries=2), make("anthropic")]
    result = call_with_fallback(chain, REQ)
    assert isinstance(result, FallbackResult)
    assert result.response.text == "served by claude"
    assert result.served_by == "anthropic:claude-haiku-4-5" == result.response.spec
    first, second = result.attempts
    assert first.spec == "openai:gpt-4.1-mini" and first.error is not None
    assert first.cost_usd == 0.0
    assert second.error is None and second.cost_usd == result.response.cost_usd > 0
    assert result.total_cost_usd == second.cost_usd


async def test_async_fallback(make, stub) -> None:
    stub.script("openai", [Fail(429)] * 3)
    stub.script("google", [Fail(500)] * 3)
    stub.script("anthropic", [Reply(text="third time lucky")])
    chain = [make("openai"), make("google"), make("anthropic")]
    result = await acall_with_fallback(chain, REQ)
    assert result.response.text == "third time lucky"
    assert [type(a.error) for a in result.attempts[:2]] == [RateLimitError,
                                                             type(result.attempts[1].error)]
    assert result.served_by.startswith("anthropic:")


def test_first_success_stops_the_chain(make, stub) -> None:
    result = call_with_fallback([make("openai"), make("anthropic")], REQ)
    assert result.served_by == "openai:gpt-4.1-mini" and len(result.attempts) == 1
    assert stub.requests_for("anthropic") == []


def test_all_failed_names_each_model_provider_and_cause(make, stub) -> None:
    stub.script("openai", [Fail(429, "rate limited by stub")] * 3)
    stub.script("anthropic", [Fail(401, "invalid x-api-key")])
    with pytest.raises(AllModelsFailedError) as info:
        call_with_fallback([make("openai"), make("anthropic")], REQ)
    msg = str(info.value)
    for part in ("openai:gpt-4.1-mini", "RateLimitError", "HTTP 429", "rate limited by stub",
                 "anthropic:claude-haiku-4-5", "AuthenticationError", "invalid x-api-key"):
        assert part in msg
    assert [spec for spec, _ in info.value.attempts] == [
        "openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"]


@pytest.mark.parametrize(
    ("script", "cls", "cause"),
    [
        ([Fail(429, "slow down")] * 3, RateLimitError, "slow down"),
        ([Fail(401, "invalid key")], AuthenticationError, "invalid key"),
        ([Fail(0)] * 3, ProviderConnectionError, ""),
    ],
)
def test_without_fallback_the_error_names_model_provider_cause(make, stub, script, cls,
                                                               cause) -> None:
    stub.script("google", script)
    p = make("google")
    with pytest.raises(cls) as info:
        p.chat(REQ)
    msg = str(info.value)
    assert "google:gemini-2.5-flash" in msg and cls.__name__ in msg and cause in msg


def test_missing_key_falls_back(make, stub) -> None:
    result = call_with_fallback([make("openai", api_key=None), make("google")], REQ)
    assert result.served_by == "google:gemini-2.5-flash"
    assert "OPENAI_API_KEY" in str(result.attempts[0].error)


def test_stream_fallback_before_first_delta(make, stub) -> None:
    stub.script("openai", [Fail(503)] * 3)
    stub.script("anthropic", [Reply(text="streamed by claude")])
    events = list(stream_with_fallback([make("openai"), make("anthropic")], REQ))
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.response.text == "streamed by claude"
    assert end.response.spec == "anthropic:claude-haiku-4-5"


async def test_astream_fallback_before_first_delta(make, stub) -> None:
    stub.script("anthropic", [Fail(429)] * 3)
    events = [e async for e in astream_with_fallback([make("anthropic"), make("openai")], REQ)]
    assert events[-1].response.spec == "openai:gpt-4.1-mini"


def test_stream_failure_after_first_delta_is_not_replayed(make, stub) -> None:
    stub.script("openai", [Reply(text="partial output then the line drops", drop_after=4)])
    seen = []
    with pytest.raises(ProviderConnectionError):
        for event in stream_with_fallback([make("openai"), make("anthropic")], REQ):
            seen.append(event)
    assert any(isinstance(e, TextDelta) for e in seen)
    assert stub.requests_for("anthropic") == []


def test_empty_chain_is_a_configuration_error() -> None:
    from shared_core._errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        call_with_fallback([], REQ)
