"""LangChain's standard integration tests, run against routed candidates (OpenAI, Anthropic and
Gemini specs) served by the local stub of the provider APIs.

The stub answers like a cooperative model (see ``_responder.py``): it calls offered tools with
arguments made from their schemas and returns JSON for JSON schemas, through each provider's
real wire format and SDK. The picture that test_image_inputs and test_anthropic_inputs
download is served locally (respx). The skipped tests need inputs the core messages do not
carry (PDF, audio, images inside tool results) or VCR cassettes (a timing benchmark).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import respx
from langchain_core.messages import AIMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests

from shared_core import Router
from tests.langchain._capabilities import AvengersCapabilities
from tests.langchain._responder import ResponderStub
from tests.langchain.conftest import stub_options
from tests.stub_llm_server import Reply, Tokens

PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def responder() -> Iterator[ResponderStub]:
    with ResponderStub() as server:
        yield server


class TestAvengersChatModelIntegration(AvengersCapabilities, ChatModelIntegrationTests):
    params: dict[str, Any] = {}
    stub: ResponderStub

    @pytest.fixture(autouse=True)
    def _on_stub(self, request: pytest.FixtureRequest, responder: ResponderStub,
                 lc_router: Router) -> Iterator[None]:
        request.cls.stub = responder
        request.cls.params = {
            "router": lc_router,
            "alpha": 0.7,
            "api_key": "test-key",
            "provider_options": stub_options(responder, lc_router.model_specs),
        }
        if request.node.originalname not in ("test_image_inputs", "test_anthropic_inputs"):
            yield
            return
        # These tests download a picture with httpx: serve it locally, let the SDKs reach the
        # stub, and nothing else.
        with respx.mock(assert_all_called=False) as web:
            web.get(host="raw.githubusercontent.com").respond(200, content=PNG_BYTES)
            web.route(host="127.0.0.1").pass_through()
            yield

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def supported_usage_metadata_details(self) -> dict[str, list[str]]:
        details = ["reasoning_output", "cache_read_input", "cache_creation_input"]
        return {"invoke": details, "stream": details}

    # -- usage details: scripted on the stub, so the provider really reports them ----------
    def _with_usage(self, usage: Tokens, stream: bool) -> AIMessage:
        model = self.chat_model_class(**self.chat_model_params)
        for provider in ("openai", "anthropic", "google"):
            self.stub.script(provider, [Reply(text="ok", usage=usage)])
        try:
            if stream:
                full = None
                for chunk in model.stream("Hello"):
                    full = chunk if full is None else full + chunk
                assert isinstance(full, AIMessage)
                return full
            return model.invoke("Hello")
        finally:
            self.stub.reset()

    def invoke_with_reasoning_output(self, *, stream: bool = False) -> AIMessage:
        return self._with_usage(Tokens(input=30, output=50, reasoning=40), stream)

    def invoke_with_cache_read_input(self, *, stream: bool = False) -> AIMessage:
        return self._with_usage(Tokens(input=3000, output=5, cached=2048), stream)

    def invoke_with_cache_creation_input(self, *, stream: bool = False) -> AIMessage:
        return self._with_usage(Tokens(input=3000, output=5, cache_write=2048), stream)
