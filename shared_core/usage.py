"""Token usage, the cost ledger and budgets.

Example:
    >>> from shared_core.usage import Usage
    >>> (Usage(input_tokens=10, output_tokens=2) + Usage(input_tokens=5)).total_tokens
    17
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal


@dataclass(frozen=True)
class Usage:
    """Tokens of one call (or a sum of calls), by kind.

    ``input_tokens`` counts every prompt token, including ``cached_input_tokens`` (read from the
    provider's prompt cache) and ``cache_write_tokens`` (written to it). ``output_tokens`` counts
    every generated token, including ``reasoning_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------- ledger and budget


@dataclass(frozen=True)
class CallRecord:
    """One routed (or observed) model call.

    ``model`` is the router's name for the model (or the framework's model name for calls that
    were not routed), ``spec`` the ``provider:model`` that served it when known. ``cost_usd`` is
    ``None`` when the price is unknown. ``attempts`` lists ``(spec, cost_usd, error)`` of failed
    tries before the one that served (fallback).
    """

    model: str
    usage: Usage
    cost_usd: float | None
    spec: str = ""
    latency_s: float = 0.0
    timestamp: float = field(default_factory=time.time)
    routed: bool = True
    alpha: float | None = None
    cluster: int | None = None
    reason: str = "routed"
    run_id: str | None = None
    attempts: tuple[tuple[str, float | None, str], ...] = ()


@dataclass(frozen=True)
class ModelTotals:
    """Totals of the calls to one model."""

    calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    unpriced_calls: int = 0


class CostLedger:
    """Every call's tokens, dollars and latency; safe to share across threads and asyncio tasks.

    Example:
        >>> ledger = CostLedger()
        >>> ledger.record(CallRecord("gpt-4.1-mini", Usage(100, 20), 0.0001))
        >>> ledger.total_cost, ledger.total_usage.total_tokens
        (0.0001, 120)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []
        self._listeners: list[Any] = []

    def __repr__(self) -> str:
        return f"CostLedger(calls={len(self)}, cost_usd={self.total_cost:.6f})"

    def __len__(self) -> int:
        return len(self._records)

    def record(self, rec: CallRecord) -> None:
        with self._lock:
            self._records.append(rec)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(rec)

    def subscribe(self, listener: Any) -> None:
        """Call ``listener(record)`` for every future record (e.g. a budget); subscribing the
        same listener again changes nothing, so a budget shared by several models counts once."""
        with self._lock:
            if not any(existing is listener for existing in self._listeners):
                self._listeners.append(listener)

    @property
    def records(self) -> tuple[CallRecord, ...]:
        with self._lock:
            return tuple(self._records)

    @property
    def total_cost(self) -> float:
        """Dollars of every priced call (see :attr:`unpriced_calls` for the others)."""
        return sum(r.cost_usd or 0.0 for r in self.records) + sum(
            a[1] or 0.0 for r in self.records for a in r.attempts
        )

    @property
    def unpriced_calls(self) -> int:
        return sum(r.cost_usd is None for r in self.records)

    @property
    def total_usage(self) -> Usage:
        return sum((r.usage for r in self.records), Usage())

    def by_model(self) -> dict[str, ModelTotals]:
        out: dict[str, ModelTotals] = {}
        for r in self.records:
            t = out.get(r.model, ModelTotals())
            out[r.model] = ModelTotals(
                t.calls + 1,
                t.usage + r.usage,
                t.cost_usd + (r.cost_usd or 0.0),
                t.unpriced_calls + (r.cost_usd is None),
            )
        return out

    def counterfactual_cost(self, spec: str) -> float | None:
        """What the same calls (same token counts) would have cost on ``spec``'s prices;
        ``None`` when that price is unknown."""
        from shared_core.pricing import cost

        total = 0.0
        for r in self.records:
            c = cost(r.usage, spec)
            if c is None:
                return None
            total += c
        return total

    def summary(self, baseline: str | None = None) -> str:
        """A table of calls, tokens and dollars per model; with ``baseline`` (a spec such as
        ``"openai:gpt-4.1"``), the cost of the same calls on it and the saving."""
        rows = [f"{'model':36s} {'calls':>6s} {'in tok':>9s} {'out tok':>9s} {'cost $':>11s}"]
        for m, t in sorted(self.by_model().items()):
            price = f"{t.cost_usd:11.6f}" + ("*" if t.unpriced_calls else "")
            rows.append(
                f"{m[:36]:36s} {t.calls:6d} {t.usage.input_tokens:9d} "
                f"{t.usage.output_tokens:9d} {price}"
            )
        u = self.total_usage
        rows.append(
            f"{'total':36s} {len(self):6d} {u.input_tokens:9d} {u.output_tokens:9d} "
            f"{self.total_cost:11.6f}"
        )
        if self.unpriced_calls:
            rows.append(f"* {self.unpriced_calls} call(s) with unknown price are not in the cost")
        if baseline:
            base = self.counterfactual_cost(baseline)
            if base is None:
                rows.append(f"baseline {baseline}: price unknown")
            else:
                saved = 1 - self.total_cost / base if base else 0.0
                rows.append(f"same calls on {baseline}: ${base:.6f} (routing saved {saved:.1%})")
        return "\n".join(rows)

    def plot(self, path: str, baseline: str | None = None) -> str:
        """Plot cumulative cost (and the baseline's) against call number; needs ``plot``."""
        from shared_core.pricing import cost

        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            from shared_core._errors import MissingDependencyError

            raise MissingDependencyError("matplotlib", "plot") from e
        recs = self.records
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = list(range(1, len(recs) + 1))
        acc, total = [], 0.0
        for r in recs:
            total += r.cost_usd or 0.0
            acc.append(total)
        ax.plot(xs, acc, label="routed")
        if baseline:
            acc_b, total = [], 0.0
            for r in recs:
                total += cost(r.usage, baseline) or 0.0
                acc_b.append(total)
            ax.plot(xs, acc_b, "--", label=f"all on {baseline}")
        ax.set_xlabel("call")
        ax.set_ylabel("cumulative cost (USD)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


class LedgerTotals:
    """Read-only totals over ``self.ledger``, shared by the framework cost handlers.

    Example:
        >>> class Handler(LedgerTotals):
        ...     def __init__(self):
        ...         self.ledger = CostLedger()
        >>> h = Handler()
        >>> h.ledger.record(CallRecord("m", Usage(100, 20), 0.001))
        >>> h.total_tokens, h.total_cost
        (120, 0.001)
    """

    if TYPE_CHECKING:
        ledger: CostLedger

    @property
    def usage(self) -> Usage:
        """Tokens of every counted call, by kind."""
        return self.ledger.total_usage

    @property
    def total_tokens(self) -> int:
        return self.usage.total_tokens

    @property
    def prompt_tokens(self) -> int:
        return self.usage.input_tokens

    @property
    def completion_tokens(self) -> int:
        return self.usage.output_tokens

    @property
    def prompt_tokens_cached(self) -> int:
        return self.usage.cached_input_tokens

    @property
    def reasoning_tokens(self) -> int:
        return self.usage.reasoning_tokens

    @property
    def total_cost(self) -> float:
        """USD of every priced call, failed fallback attempts included (see
        :attr:`unpriced_calls` for calls whose price is unknown)."""
        return float(self.ledger.total_cost)

    @property
    def unpriced_calls(self) -> int:
        """Counted calls whose model has no known price (their tokens are in the totals)."""
        return self.ledger.unpriced_calls

    def by_model(self) -> dict[str, ModelTotals]:
        """Calls, tokens and dollars per model (router model names for routed calls)."""
        return self.ledger.by_model()

    def summary(self, baseline: str | None = None) -> str:
        """A table per model; with ``baseline`` (a spec), what the same calls would cost there."""
        return self.ledger.summary(baseline)


class Budget:
    """A spending cap in USD for a run or a session.

    Policy: below ``soft_fraction`` of the cap, alpha is used as asked. Above it, alpha is lowered
    in proportion to the budget left: ``alpha * left / (limit * (1 - soft_fraction))``, so routing
    shifts towards cheaper models as the cap nears. Once spend reaches the cap, the next call
    either raises :class:`~shared_core._errors.BudgetExceededError` (``on_exceed="raise"``) or goes
    to the cheapest capable model (``"downgrade"``). Spend is checked before every call, so the
    cap is overshot by at most the calls already in flight (one, when calls are sequential).

    Example:
        >>> b = Budget(0.01, soft_fraction=0.5)
        >>> b.add(0.0075)
        >>> b.effective_alpha(0.8)
        0.4
    """

    def __init__(
        self,
        limit_usd: float,
        *,
        on_exceed: Literal["raise", "downgrade"] = "raise",
        soft_fraction: float = 0.5,
    ) -> None:
        if limit_usd <= 0:
            raise ValueError(f"limit_usd must be > 0, got {limit_usd}")
        if on_exceed not in ("raise", "downgrade"):
            raise ValueError(f"on_exceed must be 'raise' or 'downgrade', got {on_exceed!r}")
        if not 0 <= soft_fraction <= 1:
            raise ValueError(f"soft_fraction must be in [0, 1], got {soft_fraction}")
        self.limit_usd = float(limit_usd)
        self.on_exceed = on_exceed
        self.soft_fraction = soft_fraction
        self._spent = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"Budget(limit_usd={self.limit_usd}, spent={self.spent:.6f}, "
            f"on_exceed={self.on_exceed!r})"
        )

    @property
    def spent(self) -> float:
        return self._spent

    @property
    def remaining(self) -> float:
        return max(self.limit_usd - self._spent, 0.0)

    @property
    def exhausted(self) -> bool:
        return self._spent >= self.limit_usd

    def add(self, cost_usd: float | None) -> None:
        with self._lock:
            self._spent += cost_usd or 0.0

    def __call__(self, rec: CallRecord) -> None:  # a ledger listener
        self.add((rec.cost_usd or 0.0) + sum(a[1] or 0.0 for a in rec.attempts))

    def effective_alpha(self, alpha: float) -> float:
        """The alpha to route with, given what is spent (see the class docstring)."""
        soft = self.limit_usd * self.soft_fraction
        if self._spent <= soft:
            return alpha
        span = self.limit_usd - soft
        left = self.remaining / span if span > 0 else 0.0
        return round(alpha * left, 12)


def total_usage(usages: Iterable[Usage]) -> Usage:
    """Sum of usages."""
    return sum(usages, Usage())
