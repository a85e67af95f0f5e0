"""Specs, the model catalog and cost."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import warnings

import pytest

import shared_core.providers as providers
from shared_core._errors import ConfigurationError
from shared_core.pricing import catalog, cost, known_models, model_info, prices_as_of
from shared_core.providers import get_provider, parse_spec
from shared_core.usage import Usage


def test_public_api_is_pinned() -> None:
    assert sorted(providers.__all__) == sorted([
        "PROVIDERS", "Attempt", "ChatProvider", "FallbackResult", "ModelInfo",
        "acall_with_fallback", "astream_with_fallback", "call_with_fallback", "get_provider",
        "has_api_key", "model_info", "parse_spec", "stream_with_fallback",
    ])


def test_has_api_key_reads_each_providers_standard_variables(monkeypatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert not providers.has_api_key()
    monkeypatch.setenv("GEMINI_API_KEY", "g")
    assert providers.has_api_key("google:gemini-2.5-flash") and providers.has_api_key()
    assert not providers.has_api_key("openai:gpt-4.1")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("openai:gpt-4.1-mini", ("openai", "gpt-4.1-mini")),
        ("anthropic:claude-haiku-4-5", ("anthropic", "claude-haiku-4-5")),
        ("google:gemini-2.5-flash", ("google", "gemini-2.5-flash")),
        ("gemini:gemini-2.5-flash", ("google", "gemini-2.5-flash")),
        ("OpenAI:gpt-4o", ("openai", "gpt-4o")),
        ("openai:llama3.1:8b", ("openai", "llama3.1:8b")),  # Ollama tags keep their colon
        ("gpt-4.1", ("openai", "gpt-4.1")),  # a bare catalog model
    ],
)
def test_parse_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["mistral:large", "gpt5", "", "openai:", ":gpt-4o"])
def test_bad_spec_lists_known_providers(spec: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_spec(spec)
    assert "openai" in str(info.value) and "anthropic" in str(info.value)
    with pytest.raises(ConfigurationError):
        get_provider(spec)


def test_catalog_is_versioned_and_complete() -> None:
    data = catalog()
    dt.date.fromisoformat(data["prices_as_of"])
    assert prices_as_of() == data["prices_as_of"]
    required = {
        "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o3", "o4-mini",
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "claude-opus-4-1", "claude-sonnet-4-5",
        "claude-haiku-4-5", "claude-3-5-haiku", "gemini-2.5-pro", "gemini-2.5-flash",
        "gemini-2.5-flash-lite", "gemini-2.0-flash",
    }
    assert required <= set(known_models())
    for name, entry in data["models"].items():
        assert entry["provider"] in providers.PROVIDERS, name
        for key in ("context_window", "max_output", "tools", "vision", "structured_output"):
            assert key in entry, (name, key)
        prices = entry["prices"]
        assert set(prices) == {"input", "output", "cached_input", "cache_write"}, name
        assert 0 < prices["cached_input"] <= prices["input"] <= prices["output"], name


def test_snapshots_resolve_to_their_model() -> None:
    assert model_info("openai:gpt-4.1-mini-2025-04-14").name == "gpt-4.1-mini"
    assert model_info("anthropic:claude-haiku-4-5-20251001").name == "claude-haiku-4-5"
    assert model_info("claude-3-5-haiku-latest").name == "claude-3-5-haiku"
    assert model_info("google:models/gemini-2.0-flash-001").name == "gemini-2.0-flash"
    # a different model is not a snapshot of a known one
    assert not model_info("openai:o3-mini").known
    assert not model_info("openai:gpt-4.1-mini-turbo").known


def test_unknown_model_gets_conservative_defaults() -> None:
    info = model_info("openai:my-local-llama")
    assert not info.known and info.prices is None
    assert not info.tools and not info.vision and not info.structured_output
    assert info.context_window == 8192
    p = get_provider("openai:my-local-llama", api_key="x")
    assert p.info == info


def test_cost_uses_each_token_kind() -> None:
    usage = Usage(input_tokens=100_000, output_tokens=100_000, cached_input_tokens=40_000,
                  cache_write_tokens=10_000, reasoning_tokens=30_000)
    # claude-sonnet-4-5: 3 in, 15 out, 0.30 cache read, 3.75 cache write (USD per 1M)
    expected = 0.05 * 3.00 + 0.04 * 0.30 + 0.01 * 3.75 + 0.1 * 15.00
    assert cost(usage, "anthropic:claude-sonnet-4-5") == pytest.approx(expected)
    assert cost(Usage(), "gpt-4o") == 0.0


def test_long_context_prices() -> None:
    short = cost(Usage(input_tokens=200_000), "google:gemini-2.5-pro")
    long = cost(Usage(input_tokens=200_001), "google:gemini-2.5-pro")
    assert short == pytest.approx(0.2 * 1.25)
    assert long == pytest.approx(0.200001 * 2.50)


def test_unknown_price_is_none_with_a_warning_never_zero() -> None:
    with pytest.warns(UserWarning, match="no price for model 'openai:my-local-llama'"):
        assert cost(Usage(input_tokens=10), "openai:my-local-llama") is None


def test_known_price_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cost(Usage(input_tokens=10), "gpt-4o-mini") is not None


def test_import_does_no_sdk_import_and_no_io() -> None:
    code = (
        "import sys, shared_core.providers as p;"
        "p.get_provider('openai:gpt-4o'); p.get_provider('anthropic:claude-haiku-4-5');"
        "p.get_provider('google:gemini-2.5-flash');"
        "bad = [m for m in ('openai', 'anthropic', 'google.genai') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
