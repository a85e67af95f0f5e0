"""Fixtures of the LlamaIndex tests: routers with chosen targets, the stub server, an
AvengersLLM whose candidates are served by the stub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llamaindex_avengers import AvengersLLM
from shared_core import Router
from tests.conftest import ROUTERBENCH_SPECS
from tests.conftest_stub import stub  # noqa: F401 - the fixture
from tests.stub_llm_server import StubLLMServer

_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI",
    "AVENGERS_ROUTER",
)

MakeRouter = Callable[..., Router]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real keys, endpoints or user router leak into these tests."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def make_router(fitted_router: Router, router_file: Path) -> MakeRouter:
    """``make_router(specs)``: a fresh copy of the fitted router whose file records ``specs``
    (router model name -> provider spec; none by default), sharing the loaded embedder."""

    def _make(specs: dict[str, str] | None = None) -> Router:
        router = Router.load(router_file, embedder=fitted_router.embedder)
        router.model_specs = dict(specs or {})
        return router

    return _make


@pytest.fixture
def stub_llm(stub: StubLLMServer, make_router: MakeRouter) -> Callable[..., AvengersLLM]:  # noqa: F811
    """``stub_llm(**kw)``: an AvengersLLM over the six routerbench specs, each served by the
    stub (fast retries, a test key)."""

    def _make(specs: dict[str, str] | None = None, **kwargs: Any) -> AvengersLLM:
        specs = dict(specs or ROUTERBENCH_SPECS)
        per_model = {
            name: {"base_url": stub.base_url(spec.split(":", 1)[0]), "retry_backoff": 0.001,
                   "max_retry_delay": 0.01}
            for name, spec in specs.items()
        }
        kwargs.setdefault("api_key", "test-key")
        return AvengersLLM(router=make_router(specs), provider_options={"per_model": per_model},
                           **kwargs)

    return _make
