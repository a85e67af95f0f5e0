import numpy as np
import pytest

from shared_core import Router, Sample
from shared_core.data import RoutingData
from shared_core.evaluation import (
    KNNRouter,
    baselines,
    evaluate,
    format_table,
    parse_alphas,
    plot_report,
    summarise,
)


def hand_data() -> RoutingData:
    return RoutingData.from_samples(
        [
            Sample("q1", {"big": 1.0, "small": 1.0}, {"big": 1.0, "small": 0.1}),
            Sample("q2", {"big": 1.0, "small": 0.0}, {"big": 1.0, "small": 0.1}),
            Sample("q3", {"big": 0.0, "small": 0.0}, {"big": 1.0, "small": 0.1}),
            Sample("q4", {"big": 1.0}, {"big": 1.0}),
        ]
    )


def test_baselines_by_hand():
    b = baselines(hand_data())
    assert b["models"]["big"] == {"accuracy": 0.75, "cost": 4.0, "n_known": 4}
    assert b["models"]["small"]["accuracy"] == pytest.approx(1 / 3)
    # oracle: cheapest model with the best score per query (small, big, small, big)
    assert b["oracle"] == {"accuracy": 0.75, "cost": pytest.approx(0.1 + 1.0 + 0.1 + 1.0)}
    # random: uniform over the models known for each query
    assert b["random"]["accuracy"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert b["random"]["cost"] == pytest.approx(0.55 * 3 + 1.0)


def test_parse_alphas():
    assert parse_alphas("0,0.5,1") == (0.0, 0.5, 1.0)
    assert parse_alphas("0:1:0.25") == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert len(parse_alphas(None)) == 101
    with pytest.raises(ValueError, match=r"alphas must be in \[0, 1\]"):
        parse_alphas("0,2")
    with pytest.raises(ValueError, match="expected e.g."):
        parse_alphas("a,b")


def test_summary_metrics_by_hand():
    report = {
        "models": {"big": {"accuracy": 0.9, "cost": 10.0}, "small": {"accuracy": 0.6, "cost": 1.0}},
        "sweep": [
            {"alpha": 0.0, "accuracy": 0.6, "cost": 1.0, "share": {}},
            {"alpha": 0.5, "accuracy": 0.85, "cost": 3.0, "share": {}},
            {"alpha": 1.0, "accuracy": 0.9, "cost": 7.0, "share": {}},
        ],
    }
    s = summarise(report)
    assert s["best_single"] == "big" and s["max_accuracy"] == 0.9 and s["max_accuracy_cost"] == 7.0
    assert s["cost_to_match_best_single"] == pytest.approx(0.7)
    assert s["cost_at_90pct_best_single"] == pytest.approx(0.3)
    assert s["cost_at_98pct_best_single"] == pytest.approx(0.7)
    assert s["mean_best_accuracy"] > s["single_models_mean_best_accuracy"]


def test_evaluate_contract_and_extremes(fitted_router, routerbench_test):
    report = evaluate(fitted_router, routerbench_test, alphas=(0.0, 0.5, 1.0))
    assert report["n_queries"] == 945
    assert set(report) >= {"n_queries", "models", "oracle", "random", "sweep", "summary"}
    sweep = report["sweep"]
    assert [s["alpha"] for s in sweep] == [0.0, 0.5, 1.0]
    assert all(sum(s["share"].values()) == pytest.approx(1.0) for s in sweep)
    assert sweep[0]["cost"] <= sweep[1]["cost"] <= sweep[2]["cost"]
    assert sweep[0]["accuracy"] < sweep[2]["accuracy"]
    cheapest = min(report["models"], key=lambda m: report["models"][m]["cost"])
    assert sweep[0]["share"].get(cheapest, 0) > 0.9
    assert report["oracle"]["accuracy"] >= max(v["accuracy"] for v in report["models"].values())
    table = format_table(report)
    assert "router alpha=0.5" in table and "oracle" in table


def test_knn_baseline_in_the_same_harness(routerbench_train, routerbench_train_x, routerbench_test):
    knn = KNNRouter(n_neighbors=15).fit(routerbench_train, routerbench_train_x)
    report = evaluate(knn, routerbench_test, alphas=(0.0, 1.0))
    assert report["sweep"][1]["accuracy"] > report["sweep"][0]["accuracy"]


def test_issue2_quality_levels_with_the_paper_method(data_dir):
    """The paper's method, k=60, default embedder, train -> test (issue 2's must-reach)."""
    from shared_core import load_data

    for name in ("routerbench", "llmrouter"):
        train = load_data(data_dir / name / "train.jsonl")
        test = load_data(data_dir / name / "test.jsonl", models=train.models)
        router = Router.paper(n_clusters=60, random_state=0)
        s = evaluate(router.fit(train), test)["summary"]
        best = baselines(test)["models"][s["best_single"]]["accuracy"]
        if name == "routerbench":
            assert s["cost_at_90pct_best_single"] is not None
            assert s["cost_at_90pct_best_single"] <= 0.10
        else:
            assert s["max_accuracy"] > best
        print(name, s)


def test_plots_are_written(fitted_router, routerbench_test, tmp_path):
    report = evaluate(fitted_router, routerbench_test, alphas=(0.0, 0.5, 1.0))
    paths = plot_report(report, tmp_path)
    assert len(paths) == 3
    for p in paths:
        with open(p, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert np.isfinite([s["cost"] for s in report["sweep"]]).all()
