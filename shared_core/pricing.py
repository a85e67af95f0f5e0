"""Model capabilities and list prices from the versioned table ``model_catalog.json``.

The table is data, not code: each model has its provider, context window, maximum output,
capabilities (tools, vision, structured output) and prices in USD per 1M tokens. Dated snapshot
names (``gpt-4.1-mini-2025-04-14``, ``claude-haiku-4-5-20251001``) resolve to their base model.
A model the table does not know gets conservative defaults with ``known=False``; its cost is
``None`` plus a warning, never a silent zero.

Example:
    >>> from shared_core.pricing import cost, model_info
    >>> from shared_core.usage import Usage
    >>> model_info("openai:gpt-4.1-mini").context_window
    1047576
    >>> round(cost(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "gpt-4.1-mini"), 2)
    2.0
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from shared_core.usage import Usage

__all__ = ["ModelInfo", "Prices", "catalog", "cost", "model_info", "known_models", "prices_as_of"]

_PER_TOKENS = 1_000_000
# A dated or pinned snapshot of a known model: -2025-04-14, -20251001, -001, -latest.
_SNAPSHOT = re.compile(r"^-(\d{4}-\d{2}-\d{2}|\d{8}|\d{3}|latest)$")


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens, by token kind."""

    input: float
    output: float
    cached_input: float
    cache_write: float


@dataclass(frozen=True)
class ModelInfo:
    """Capabilities and prices of one model, from the catalog (or defaults when unknown).

    Example:
        >>> from shared_core.pricing import model_info
        >>> info = model_info("anthropic:claude-haiku-4-5-20251001")
        >>> (info.name, info.known, info.tools)
        ('claude-haiku-4-5', True, True)
    """

    name: str
    provider: str
    known: bool
    tools: bool
    vision: bool
    structured_output: bool
    context_window: int
    max_output: int
    prices: Prices | None
    long_context_threshold: int | None = None
    long_context_prices: Prices | None = None
    prices_as_of: str = ""


@lru_cache(maxsize=1)
def catalog() -> dict[str, Any]:
    """The parsed ``model_catalog.json`` (loaded once, on first use)."""
    text = resources.files("shared_core").joinpath("model_catalog.json").read_text("utf-8")
    return json.loads(text)


def prices_as_of() -> str:
    """The date of the list prices in the catalog (ISO format)."""
    return str(catalog()["prices_as_of"])


def known_models() -> list[str]:
    """The canonical names of every model in the catalog."""
    return sorted(catalog()["models"])


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name, entry in catalog()["models"].items():
        index[name] = name
        for alias in entry.get("aliases", ()):
            index[alias] = name
    return index


def _split(spec_or_model: str) -> tuple[str, str]:
    provider, sep, model = spec_or_model.partition(":")
    return (provider, model) if sep else ("", spec_or_model)


def _canonical(model: str) -> str | None:
    index = _index()
    if model in index:
        return index[model]
    model = model.removeprefix("models/")  # Gemini's resource names
    if model in index:
        return index[model]
    # Longest known name that the model extends with a snapshot suffix only.
    for name in sorted(index, key=len, reverse=True):
        if model.startswith(name) and _SNAPSHOT.match(model[len(name) :]):
            return index[name]
    return None


def _prices(d: dict[str, Any] | None) -> Prices | None:
    if not d:
        return None
    return Prices(
        input=float(d["input"]),
        output=float(d["output"]),
        cached_input=float(d.get("cached_input", d["input"])),
        cache_write=float(d.get("cache_write", d["input"])),
    )


@lru_cache(maxsize=512)
def model_info(spec_or_model: str) -> ModelInfo:
    """Capabilities and prices of ``"provider:model"`` or a bare model name.

    An unknown model gets the catalog's conservative defaults (no tools, no vision, no
    structured output, a small context window), ``prices=None`` and ``known=False``.
    """
    provider, model = _split(spec_or_model)
    data = catalog()
    name = _canonical(model)
    if name is None:
        d = data["defaults"]
        return ModelInfo(
            name=model,
            provider=provider,
            known=False,
            tools=bool(d["tools"]),
            vision=bool(d["vision"]),
            structured_output=bool(d["structured_output"]),
            context_window=int(d["context_window"]),
            max_output=int(d["max_output"]),
            prices=None,
            prices_as_of=data["prices_as_of"],
        )
    entry = data["models"][name]
    long = entry.get("long_context")
    return ModelInfo(
        name=name,
        provider=entry["provider"],
        known=True,
        tools=bool(entry["tools"]),
        vision=bool(entry["vision"]),
        structured_output=bool(entry["structured_output"]),
        context_window=int(entry["context_window"]),
        max_output=int(entry["max_output"]),
        prices=_prices(entry.get("prices")),
        long_context_threshold=int(long["threshold"]) if long else None,
        long_context_prices=_prices(long),
        prices_as_of=data["prices_as_of"],
    )


def cost(usage: Usage, spec_or_model: str) -> float | None:
    """USD cost of ``usage`` on a model, or ``None`` (with a warning) if its price is unknown.

    ``usage.input_tokens`` includes cached reads and cache writes, which are billed at their own
    prices; reasoning tokens are part of ``output_tokens`` and billed as output. Above a model's
    long-context threshold the whole call is billed at the long-context prices.
    """
    info = model_info(spec_or_model)
    prices = info.prices
    if prices is None:
        warnings.warn(
            f"no price for model {spec_or_model!r} in the price table "
            f"(prices as of {info.prices_as_of}); cost is None. Known: {', '.join(known_models())}",
            stacklevel=2,
        )
        return None
    if (
        info.long_context_threshold is not None
        and info.long_context_prices is not None
        and usage.input_tokens > info.long_context_threshold
    ):
        prices = info.long_context_prices
    plain_input = max(usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens, 0)
    dollars = (
        plain_input * prices.input
        + usage.cached_input_tokens * prices.cached_input
        + usage.cache_write_tokens * prices.cache_write
        + usage.output_tokens * prices.output
    )
    return dollars / _PER_TOKENS
