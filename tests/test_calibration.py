"""Calibration: alpha chosen for a cost or accuracy target on held-out data (issue 7, part 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared_core import ConfigurationError, Router
from shared_core.calibration import (
    calibrate,
    parse_accuracy_target,
    parse_cost_target,
)
from shared_core.cli import main
from shared_core.evaluation import evaluate


@pytest.fixture(scope="module")
def router(routerbench_train, routerbench_train_x) -> Router:
    return Router(random_state=0).fit(routerbench_train, routerbench_train_x)


@pytest.fixture(scope="module")
def test_x(router, routerbench_test) -> np.ndarray:
    return router.embed(routerbench_test.queries)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(0.3, ("fraction", 0.3)), ("0.3", ("fraction", 0.3)), ("30%", ("fraction", 0.3)),
     ("$0.5/1k", ("usd_per_1k", 0.5)), ("$ 2 / 1000", ("usd_per_1k", 2.0))],
)
def test_cost_targets_parse(spec, expected):
    kind, value = parse_cost_target(spec)
    assert kind == expected[0] and value == pytest.approx(expected[1])


@pytest.mark.parametrize("spec", ["abc", "-0.3", "0", "$x/1k", "$0.5/1m"])
def test_bad_cost_targets_are_refused_with_the_valid_forms(spec):
    with pytest.raises(ConfigurationError, match=r"'\$0.5/1k'"):
        parse_cost_target(spec)


def test_accuracy_targets_parse():
    assert parse_accuracy_target("98%") == pytest.approx(0.98) == parse_accuracy_target(0.98)
    with pytest.raises(ConfigurationError, match="0.98 or 98%"):
        parse_accuracy_target("most")


def test_exactly_one_target(router, routerbench_test, test_x):
    with pytest.raises(ConfigurationError, match="exactly one"):
        calibrate(router, routerbench_test, embeddings=test_x)
    with pytest.raises(ConfigurationError, match="exactly one"):
        calibrate(router, routerbench_test, target_cost=0.3, target_accuracy=0.9, embeddings=test_x)


def test_cost_target_picks_the_most_accurate_alpha_within_budget(router, routerbench_test, test_x):
    res = calibrate(router, routerbench_test, target_cost=0.3, embeddings=test_x, n_bootstrap=200)
    assert res.met and res.target == "cost_fraction"
    assert res.cost_fraction.value <= 0.3 + 1e-9
    within = [p for p in res.curve if p["cost_per_1k"] <= 0.3 * res.best_single_cost_per_1k + 1e-12]
    assert res.accuracy.value == pytest.approx(max(p["accuracy"] for p in within))
    # the band brackets the estimate, and the numbers agree with the evaluation harness
    for e in (res.accuracy, res.cost_per_1k, res.accuracy_fraction, res.cost_fraction):
        assert e.low <= e.value <= e.high
    s = evaluate(router, routerbench_test, alphas=[res.alpha], embeddings=test_x)["sweep"][0]
    assert s["accuracy"] == pytest.approx(res.accuracy.value)
    assert s["cost"] / len(routerbench_test) * 1000 == pytest.approx(res.cost_per_1k.value)
    assert res.best_single == "gpt-4-1106-preview"


def test_more_budget_never_buys_less_accuracy(router, routerbench_test, test_x):
    accs = [calibrate(router, routerbench_test, target_cost=f, embeddings=test_x,
                      n_bootstrap=0).accuracy.value for f in (0.05, 0.1, 0.3, 0.6, 1.0)]
    assert accs == sorted(accs)


def test_absolute_budget_in_usd_per_1k(router, routerbench_test, test_x):
    res = calibrate(router, routerbench_test, target_cost="$0.5/1k", embeddings=test_x,
                    n_bootstrap=0)
    assert res.target == "usd_per_1k" and res.met
    assert res.cost_per_1k.value <= 0.5


def test_accuracy_target_picks_the_cheapest_alpha_reaching_it(router, routerbench_test, test_x):
    res = calibrate(router, routerbench_test, target_accuracy=0.98, embeddings=test_x,
                    n_bootstrap=200)
    assert res.met and res.accuracy_fraction.value >= 0.98
    reaching = [p for p in res.curve if p["accuracy"] >= 0.98 * res.best_single_accuracy - 1e-12]
    assert res.cost_per_1k.value == pytest.approx(min(p["cost_per_1k"] for p in reaching))
    assert res.cost_fraction.value <= 0.6  # issue 7: 98% of the best model at <= 60% of its cost


def test_unreachable_accuracy_target_is_reported_not_hidden(router, routerbench_test, test_x):
    res = calibrate(router, routerbench_test, target_accuracy=1.5, embeddings=test_x,
                    n_bootstrap=0)
    assert not res.met
    assert res.accuracy.value == pytest.approx(max(p["accuracy"] for p in res.curve))
    assert "NOT reached" in res.explain()


def test_cross_validation_on_training_data_predicts_the_test_cost(
    router, routerbench_train, routerbench_train_x, routerbench_test, test_x
):
    before = router.to_dict()
    res = calibrate(router, routerbench_train, target_cost=0.3, cv=3,
                    embeddings=routerbench_train_x, n_bootstrap=200)
    assert router.to_dict() == before  # folds are refitted on clones
    assert res.method == "3-fold cross-validation" and res.n_queries == len(routerbench_train)
    report = evaluate(router, routerbench_test, alphas=[res.alpha], embeddings=test_x)
    best = report["models"][report["summary"]["best_single"]]
    fraction = report["sweep"][0]["cost"] / best["cost"]
    assert fraction <= 0.3 + 0.05  # held-out choice stays near the budget on new data


def test_apply_stores_the_alpha_in_the_router_file(router, routerbench_test, test_x, tmp_path):
    res = calibrate(router, routerbench_test, target_cost=0.3, embeddings=test_x, n_bootstrap=0)
    path = tmp_path / "router.json"
    fresh = Router.from_dict(router.to_dict())
    res.apply(fresh).save(path)
    loaded = Router.load(path)
    assert loaded.default_alpha == res.alpha
    assert loaded.calibration["target"] == "cost_fraction"
    assert loaded.calibration["expected_accuracy"]["value"] == pytest.approx(res.accuracy.value)


def test_cli_calibrate_prints_saves_and_signals_unmet_targets(
    router, routerbench_test, data_dir, tmp_path, capsys
):
    path = router.save(tmp_path / "router.json")
    out_json = tmp_path / "cal.json"
    test_file = str(data_dir / "routerbench" / "test.jsonl")
    rc = main(["calibrate", str(path), test_file, "--target-cost", "0.3", "--save",
               "--json", str(out_json), "--bootstrap", "100"])
    out = capsys.readouterr().out
    assert rc == 0 and "alpha =" in out and "90% band" in out
    doc = json.loads(out_json.read_text())
    assert Router.load(path).default_alpha == doc["alpha"]
    assert main(["calibrate", str(path), test_file, "--target-accuracy", "2.0",
                 "--bootstrap", "0"]) == 1
    assert main(["calibrate", str(path), test_file, "--target-cost", "lots"]) == 2
    assert "bad cost target 'lots'" in capsys.readouterr().err
