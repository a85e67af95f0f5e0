"""Fixtures of the LangChain tests: a router with provider specs, the stub server, and
``AvengersChatModel`` instances whose candidates are served by the stub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from langchain_avengers import AvengersChatModel
from shared_core import Router
from tests.conftest import ROUTERBENCH_SPECS
from tests.stub_llm_server import StubLLMServer

SPECS = dict(ROUTERBENCH_SPECS)

_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
    "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI",
    "AVENGERS_API_KEY", "AVENGERS_ROUTER",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               request: pytest.FixtureRequest) -> None:
    """No real keys, endpoints or default router leak into the tests (live tests keep them)."""
    if request.node.get_closest_marker("integration"):
        return
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture(scope="session")
def lc_router(router_file: Path) -> Router:
    """The shared routerbench router (k=20, default alpha 0.7, six provider specs), loaded once."""
    return Router.load(router_file)


def stub_options(stub: StubLLMServer, specs: dict[str, Any]) -> dict[str, Any]:
    """Provider options pointing every spec at the stub, with fast retries."""
    return {
        "retry_backoff": 0.001,
        "max_retry_delay": 0.01,
        "per_model": {
            name: {"base_url": stub.base_url(spec.split(":", 1)[0])}
            for name, spec in specs.items() if isinstance(spec, str)
        },
    }


MakeModel = Callable[..., AvengersChatModel]


@pytest.fixture
def make_model(stub: StubLLMServer, lc_router: Router) -> MakeModel:
    """``make_model(**fields)``: an ``AvengersChatModel`` on the shared router whose spec
    candidates are served by the stub (``models=`` may add LangChain model objects)."""

    def _make(**fields: Any) -> AvengersChatModel:
        specs = {**lc_router.model_specs, **(fields.get("models") or {})}
        opts = stub_options(stub, specs)
        opts.update(fields.pop("provider_options", {}))
        fields.setdefault("api_key", "test-key")
        fields.setdefault("router", lc_router)
        return AvengersChatModel(provider_options=opts, **fields)

    return _make
