import asyncio
import threading

import pytest

from shared_core import Budget, CallRecord, CostLedger, Usage


def test_usage_adds_by_kind():
    u = Usage(10, 5, cached_input_tokens=4, reasoning_tokens=2) + Usage(1, 1, cache_write_tokens=3)
    assert u == Usage(11, 6, 4, 3, 2) and u.total_tokens == 17


def test_ledger_is_exact_under_threads_and_tasks():
    ledger = CostLedger()

    def work(i):
        ledger.record(CallRecord(f"m{i % 3}", Usage(i, 1), cost_usd=i * 1e-6))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def many():
        async def one(i):
            await asyncio.sleep(0)
            work(i)

        await asyncio.gather(*(one(i) for i in range(200)))

    asyncio.run(many())
    assert len(ledger) == 400
    assert ledger.total_cost == pytest.approx(
        2 * sum(i * 1e-6 for i in range(200)), abs=0, rel=1e-12
    )
    per_model = ledger.by_model()
    assert sum(t.calls for t in per_model.values()) == 400
    assert per_model["m0"].usage.input_tokens == 2 * sum(i for i in range(200) if i % 3 == 0)


def test_unknown_price_is_not_a_silent_zero():
    ledger = CostLedger()
    ledger.record(CallRecord("mystery", Usage(10, 10), cost_usd=None))
    ledger.record(CallRecord("known", Usage(10, 10), cost_usd=0.5))
    assert ledger.unpriced_calls == 1
    assert "1 call(s) with unknown price" in ledger.summary()


def test_counterfactual_against_a_baseline_model():
    from shared_core.pricing import cost

    ledger = CostLedger()
    ledger.record(CallRecord("cheap", Usage(1000, 100), cost_usd=0.0001))
    base = ledger.counterfactual_cost("openai:gpt-4.1")
    assert base == pytest.approx(cost(Usage(1000, 100), "openai:gpt-4.1"))
    assert "routing saved" in ledger.summary(baseline="openai:gpt-4.1")


def test_budget_policy_lowers_alpha_in_proportion_to_budget_left():
    b = Budget(1.0, soft_fraction=0.5)
    assert b.effective_alpha(0.8) == 0.8
    b.add(0.5)
    assert b.effective_alpha(0.8) == pytest.approx(0.8)
    b.add(0.25)
    assert b.effective_alpha(0.8) == pytest.approx(0.4)
    b.add(0.25)
    assert b.exhausted and b.effective_alpha(0.8) == 0.0
    with pytest.raises(ValueError, match="on_exceed"):
        Budget(1.0, on_exceed="ignore")


def test_ledger_plot(tmp_path):
    ledger = CostLedger()
    for i in range(5):
        ledger.record(CallRecord("m", Usage(100 * i, 10), cost_usd=0.001 * i))
    path = ledger.plot(str(tmp_path / "c.png"), baseline="openai:gpt-4.1")
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_a_budget_subscribed_twice_counts_once():
    ledger, budget = CostLedger(), Budget(1.0)
    ledger.subscribe(budget)
    ledger.subscribe(budget)
    ledger.record(CallRecord("m", Usage(1, 1), cost_usd=0.25))
    assert budget.spent == 0.25
