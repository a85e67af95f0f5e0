"""Errors: each HTTP failure maps to our hierarchy, retries with backoff, timeouts, keys,
missing SDKs and secrets."""

from __future__ import annotations

import logging
import socket
import sys

import pytest
from pydantic import SecretStr

from shared_core._errors import (
    AuthenticationError,
    BadRequestError,
    MissingAPIKeyError,
    MissingDependencyError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitError,
)
from shared_core.messages import ChatRequest, Message
from shared_core.providers import get_provider
from tests.stub_llm_server import Fail, Reply, StubLLMServer

REQ = ChatRequest(messages=(Message.user("hi"),))


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, BadRequestError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ProviderServerError),
        (503, ProviderServerError),
        (529, ProviderServerError),
    ],
)
def test_status_maps_to_error_class(make, stub: StubLLMServer, provider_name, status, cls) -> None:
    stub.script(provider_name, [Fail(status, f"stub says {status}")] * 5)
    p = make(provider_name, max_retries=2)
    with pytest.raises(cls) as info:
        p.chat(REQ)
    err = info.value
    assert type(err) is cls
    assert (err.provider, err.model, err.status_code) == (provider_name, p.model, status)
    assert f"stub says {status}" in str(err)  # the provider's message is kept
    assert p.spec in str(err)
    assert err.__cause__ is not None  # raised from the SDK's exception
    expected_requests = 3 if err.retryable else 1
    assert len(stub.requests) == expected_requests


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retryable_failures_are_retried_then_succeed(make, stub, provider_name, status) -> None:
    stub.script(provider_name, [Fail(status), Fail(status), Reply(text="finally")])
    r = make(provider_name, max_retries=2).chat(REQ)
    assert r.text == "finally"
    assert len(stub.requests) == 3


async def test_async_retries(make, stub, provider_name) -> None:
    stub.script(provider_name, [Fail(429), Fail(502), Reply(text="async finally")])
    r = await make(provider_name, max_retries=2).achat(REQ)
    assert r.text == "async finally" and len(stub.requests) == 3


def test_stream_retries_before_first_delta(make, stub, provider_name) -> None:
    stub.script(provider_name, [Fail(429), Reply(text="streamed")])
    events = list(make(provider_name, max_retries=1).stream(REQ))
    assert events[-1].response.text == "streamed" and len(stub.requests) == 2


def test_no_retries_when_disabled(make, stub, provider_name) -> None:
    stub.script(provider_name, [Fail(429)])
    with pytest.raises(RateLimitError):
        make(provider_name, max_retries=0).chat(REQ)
    assert len(stub.requests) == 1


def test_backoff_honours_retry_after_and_its_cap(make, stub, provider_name) -> None:
    import time

    stub.script(provider_name, [Fail(429, retry_after=0.3), Reply(text="ok")])
    t0 = time.perf_counter()
    make(provider_name, max_retries=1, max_retry_delay=0.05).chat(REQ)
    assert time.perf_counter() - t0 < 2.0  # the 0.3 s Retry-After was capped to 0.05 s


def test_timeout(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="too late", delay=1.0)])
    p = make(provider_name, timeout=0.2, max_retries=0)
    with pytest.raises(ProviderTimeoutError) as info:
        p.chat(REQ)
    assert info.value.retryable and p.spec in str(info.value)


async def test_async_timeout(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="too late", delay=1.0)])
    with pytest.raises(ProviderTimeoutError):
        await make(provider_name, timeout=0.2, max_retries=0).achat(REQ)


def test_timeout_then_retry_succeeds(make, stub, provider_name) -> None:
    stub.script(provider_name, [Reply(text="too late", delay=1.0), Reply(text="in time")])
    r = make(provider_name, timeout=0.3, max_retries=1).chat(REQ)
    assert r.text == "in time"


def test_connection_dropped_without_answer(make, stub, provider_name) -> None:
    stub.script(provider_name, [Fail(0), Fail(0), Fail(0)])
    with pytest.raises(ProviderConnectionError):
        make(provider_name, max_retries=2).chat(REQ)
    assert len(stub.requests) == 3


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused(provider_name) -> None:
    spec = {"openai": "openai:gpt-4o", "anthropic": "anthropic:claude-haiku-4-5",
            "google": "google:gemini-2.5-flash"}[provider_name]
    base = f"http://127.0.0.1:{_closed_port()}"
    p = get_provider(spec, api_key="k", base_url=base, max_retries=1, retry_backoff=0.001)
    with pytest.raises(ProviderConnectionError) as info:
        p.chat(REQ)
    assert provider_name in str(info.value)


def test_missing_key_names_the_variable_at_first_call(make, provider_name) -> None:
    p = make(provider_name, api_key=None)  # construction needs no key
    with pytest.raises(MissingAPIKeyError) as info:
        p.chat(REQ)
    names = {"openai": ["OPENAI_API_KEY"], "anthropic": ["ANTHROPIC_API_KEY"],
             "google": ["GOOGLE_API_KEY", "GEMINI_API_KEY"]}[provider_name]
    for name in names:
        assert name in str(info.value)


def test_key_from_environment(make, stub, provider_name, monkeypatch) -> None:
    var = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
           "google": "GEMINI_API_KEY"}[provider_name]
    monkeypatch.setenv(var, "env-secret-123")
    make(provider_name, api_key=None).chat(REQ)
    assert "env-secret-123" in str(stub.requests[-1].headers)


def test_base_url_from_sdk_environment_variable(stub, provider_name, monkeypatch) -> None:
    var = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL",
           "google": "GOOGLE_GEMINI_BASE_URL"}[provider_name]
    monkeypatch.setenv(var, stub.base_url(provider_name))
    spec = {"openai": "openai:gpt-4o", "anthropic": "anthropic:claude-haiku-4-5",
            "google": "google:gemini-2.5-flash"}[provider_name]
    assert get_provider(spec, api_key="k").chat(REQ).text.startswith("stub reply")
    assert len(stub.requests) == 1


def test_secrets_never_in_repr_or_logs(make, stub, provider_name, caplog) -> None:
    secret = "sk-very-secret-value-42"
    p = make(provider_name, api_key=SecretStr(secret))
    assert secret not in repr(p) and secret not in str(vars(p))
    with caplog.at_level(logging.DEBUG):
        p.chat(REQ)
        stub.script(provider_name, [Fail(401, "bad key")])
        with pytest.raises(AuthenticationError) as info:
            p.chat(REQ)
    assert secret not in caplog.text
    assert secret not in str(info.value) and secret not in repr(info.value)


def test_missing_sdk_names_the_extra(make, provider_name, monkeypatch) -> None:
    module = {"openai": "openai", "anthropic": "anthropic", "google": "google.genai"}[
        provider_name]
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    if provider_name == "google":
        monkeypatch.setitem(sys.modules, "google.genai.types", None)
    with pytest.raises(MissingDependencyError) as info:
        make(provider_name).chat(REQ)
    assert f"avengers-router[{provider_name}]" in str(info.value)


def test_bugs_are_not_disguised_as_provider_errors(make, provider_name) -> None:
    bad = ChatRequest(messages=(Message.user("hi"),), extra={"x": object()})
    with pytest.raises(Exception) as info:
        make(provider_name).chat(bad)
    assert not isinstance(info.value, ProviderError)
