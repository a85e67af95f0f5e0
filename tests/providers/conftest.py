"""Fixtures of the provider tests: the stub server and providers pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from shared_core.providers import ChatProvider, get_provider
from tests.conftest_stub import stub  # noqa: F401 - the fixture (also via pytest_plugins)
from tests.stub_llm_server import StubLLMServer

SPECS = {
    "openai": "openai:gpt-4.1-mini",
    "anthropic": "anthropic:claude-haiku-4-5",
    "google": "google:gemini-2.5-flash",
}

_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """No real keys or endpoints leak into unit tests (live tests keep them)."""
    if request.node.get_closest_marker("integration"):
        return
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=list(SPECS))
def provider_name(request: pytest.FixtureRequest) -> str:
    """Each of the three providers in turn."""
    return str(request.param)


MakeProvider = Callable[..., ChatProvider]


@pytest.fixture
def make(stub: StubLLMServer) -> Iterator[MakeProvider]:  # noqa: F811
    """``make("openai", **kw)`` or ``make("openai:gpt-4o", **kw)``: a provider on the stub with
    fast retries (its sync client is closed after the test)."""
    made: list[ChatProvider] = []

    def _make(name_or_spec: str, **kwargs: object) -> ChatProvider:
        spec = SPECS.get(name_or_spec, name_or_spec)
        provider = spec.split(":", 1)[0]
        kwargs.setdefault("api_key", "test-key")
        kwargs.setdefault("retry_backoff", 0.001)
        kwargs.setdefault("max_retry_delay", 0.01)
        p = get_provider(spec, base_url=stub.base_url(provider), **kwargs)  # type: ignore[arg-type]
        made.append(p)
        return p

    yield _make
    for p in made:
        p.close()
