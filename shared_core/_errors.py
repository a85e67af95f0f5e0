"""The one small error hierarchy of avengers-router.

Every error names the bad value and what would be valid. Framework adapters re-raise these
unchanged so that users catch one family of exceptions whichever framework they use.
"""

from __future__ import annotations

from collections.abc import Iterable


class AvengersError(Exception):
    """Base class of every error raised by avengers-router."""


class DataError(AvengersError, ValueError):
    """Routing data that cannot be used; the message names file, line and field."""


class NotFittedError(AvengersError, RuntimeError):
    """A router method that needs a fitted router was called before ``fit``."""


class UnknownModelError(AvengersError, KeyError):
    """A model name the router (or the price table) does not know."""

    def __init__(self, name: str, known: Iterable[str], what: str = "model") -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {what} {name!r}; known: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class RouterFileError(AvengersError, ValueError):
    """A router file that is truncated, edited, of another version or otherwise unreadable."""


class EmbedderMismatchError(RouterFileError):
    """A router file loaded with a different embedder than it was fitted with."""


class MissingDependencyError(AvengersError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package!r} is not installed; install it with: pip install 'avengers-router[{extra}]'"
        )


class ConfigurationError(AvengersError, ValueError):
    """Invalid configuration: a bad provider spec, a missing API key, an unusable option."""


class MissingAPIKeyError(ConfigurationError):
    """No API key was given and the standard environment variable is not set."""

    def __init__(self, provider: str, variables: Iterable[str]) -> None:
        names = " or ".join(variables)
        super().__init__(f"no API key for provider {provider!r}: set {names} or pass api_key=...")


class BudgetExceededError(AvengersError, RuntimeError):
    """The configured budget is spent and the policy is to stop."""


class ProviderError(AvengersError, RuntimeError):
    """A provider call failed. Keeps the provider's own message and the model it concerned."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        model: str = "",
        status_code: int | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.status_code = status_code
        self.provider_message = message
        where = f"{provider}:{model}" if provider else model
        status = f" (HTTP {status_code})" if status_code else ""
        origin = f" from {where}" if where else ""
        super().__init__(f"{type(self).__name__}{origin}{status}: {message}")


class AuthenticationError(ProviderError):
    """The provider refused the credentials (401/403)."""


class BadRequestError(ProviderError):
    """The provider refused the request as malformed (400/404/422)."""


class RateLimitError(ProviderError):
    """The provider is rate limiting (429)."""

    retryable = True


class ProviderServerError(ProviderError):
    """The provider failed on its side (5xx)."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The provider could not be reached, or the connection dropped."""

    retryable = True


class ProviderTimeoutError(ProviderConnectionError):
    """The provider did not answer in time."""


class AllModelsFailedError(ProviderError):
    """Every candidate in a fallback chain failed; ``attempts`` holds each failure."""

    def __init__(self, attempts: list[tuple[str, BaseException]]) -> None:
        self.attempts = attempts
        lines = "; ".join(f"{spec}: {err}" for spec, err in attempts)
        last = attempts[-1][1] if attempts else None
        super().__init__(
            f"all {len(attempts)} candidate model(s) failed: {lines}",
            provider=getattr(last, "provider", ""),
            model=getattr(last, "model", ""),
            status_code=getattr(last, "status_code", None),
        )


class QueryError(AvengersError, ValueError):
    """A query the router cannot route (empty, or not text)."""
