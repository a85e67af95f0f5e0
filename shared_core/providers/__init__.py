"""Provider dispatch: one :class:`ChatProvider` interface over the OpenAI, Anthropic and Google
GenAI SDKs, addressed by ``"provider:model"`` specs.

Example:
    >>> from shared_core.providers import get_provider, parse_spec
    >>> parse_spec("gemini:gemini-2.5-flash")
    ('google', 'gemini-2.5-flash')
    >>> p = get_provider("anthropic:claude-haiku-4-5")   # no I/O, no key needed yet
    >>> p.info.context_window
    200000
"""

from __future__ import annotations

import os

from pydantic import SecretStr

from shared_core._errors import ConfigurationError
from shared_core.pricing import ModelInfo, model_info
from shared_core.providers.base import ChatProvider
from shared_core.providers.fallback import (
    Attempt,
    FallbackResult,
    acall_with_fallback,
    astream_with_fallback,
    call_with_fallback,
    stream_with_fallback,
)

__all__ = [
    "PROVIDERS",
    "Attempt",
    "ChatProvider",
    "FallbackResult",
    "ModelInfo",
    "acall_with_fallback",
    "astream_with_fallback",
    "call_with_fallback",
    "get_provider",
    "has_api_key",
    "model_info",
    "parse_spec",
    "stream_with_fallback",
]

PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "google")
"""The provider names a spec may start with (``gemini`` is an alias of ``google``)."""

_ALIASES = {"openai": "openai", "anthropic": "anthropic", "google": "google", "gemini": "google"}


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"provider:model"`` into ``(provider, model)``.

    A bare model name the catalog knows (``"gpt-4.1"``) gets its provider from the catalog.

    Raises:
        ConfigurationError: the spec has no known provider or no model.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(
            f"bad model spec {spec!r}; expected 'provider:model' with provider one of "
            f"{', '.join(PROVIDERS)} (or gemini)"
        )
    provider, sep, model = spec.strip().partition(":")
    if not sep:
        info = model_info(spec)
        if info.known:
            return info.provider, spec.strip()
        raise ConfigurationError(
            f"bad model spec {spec!r}: no provider and not a model of the catalog; expected "
            f"'provider:model' with provider one of {', '.join(PROVIDERS)} (or gemini), "
            f"e.g. 'openai:gpt-4.1-mini'"
        )
    canonical = _ALIASES.get(provider.lower())
    if canonical is None:
        raise ConfigurationError(
            f"unknown provider {provider!r} in model spec {spec!r}; known: "
            f"{', '.join(PROVIDERS)} (or gemini)"
        )
    if not model:
        raise ConfigurationError(
            f"model spec {spec!r} names no model; expected 'provider:model' with provider one "
            f"of {', '.join(PROVIDERS)} (or gemini), e.g. '{canonical}:<model>'"
        )
    return canonical, model


def _provider_class(provider: str) -> type[ChatProvider]:
    # Our adapter modules are cheap; the SDKs themselves are imported on the first call.
    if provider == "openai":
        from shared_core.providers._openai import OpenAIProvider

        return OpenAIProvider
    if provider == "anthropic":
        from shared_core.providers._anthropic import AnthropicProvider

        return AnthropicProvider
    from shared_core.providers._google import GoogleProvider

    return GoogleProvider


def get_provider(
    spec: str,
    *,
    api_key: str | SecretStr | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    max_retries: int = 2,
    retry_backoff: float = 0.5,
    max_retry_delay: float = 8.0,
) -> ChatProvider:
    """A :class:`ChatProvider` for ``"provider:model"``; no I/O until the first call.

    Args:
        spec: ``"openai:gpt-4.1-mini"``, ``"anthropic:claude-sonnet-4-5"``,
            ``"google:gemini-2.5-flash"`` (``"gemini:..."`` also works).
        api_key: a ``str`` or ``pydantic.SecretStr``; default: the provider's environment
            variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY or GEMINI_API_KEY),
            read at the first call.
        base_url: endpoint override (gateways, self-hosted servers, test stubs); default: the
            SDK's own environment variable (OPENAI_BASE_URL, ANTHROPIC_BASE_URL,
            GOOGLE_GEMINI_BASE_URL) or the public endpoint.
        timeout: seconds per HTTP request (default: the SDK's).
        max_retries: retries after the first attempt on 408/429/5xx/timeouts/connection errors.
        retry_backoff: first retry delay in seconds, doubling per retry (Retry-After wins).
        max_retry_delay: cap of one retry delay in seconds.
    """
    provider, model = parse_spec(spec)
    if api_key is not None and not isinstance(api_key, str | SecretStr):
        raise ConfigurationError(
            f"api_key must be a str or pydantic.SecretStr, not {type(api_key).__name__}"
        )
    return _provider_class(provider)(
        model,
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        retry_backoff=retry_backoff,
        max_retry_delay=max_retry_delay,
    )


def has_api_key(spec: str | None = None) -> bool:
    """Whether the standard API-key variable of ``spec``'s provider is set (of any provider
    when ``spec`` is ``None``); e.g. to route only among models that can be called here."""
    providers = [parse_spec(spec)[0]] if spec is not None else list(PROVIDERS)
    return any(
        os.environ.get(name) for p in providers for name in _provider_class(p).env_keys
    )
