import json
from pathlib import Path

import numpy as np
import pytest

from shared_core import DataError, UnknownModelError, load_data
from shared_core.data import RoutingData, read_jsonl, read_wide_csv

GOOD = {
    "index": "q1",
    "dataset": "d",
    "split": "train",
    "query": "What is 2+2?",
    "records": {"a": 1.0, "b": 0.0},
    "usages": {"a": {"cost": 0.001}, "b": {"cost": 0.0001}},
}


def write(tmp_path: Path, lines: list, name: str = "train.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return p


def test_reads_real_data_with_every_model_known(routerbench_train):
    assert routerbench_train.scores.shape == (2205, 11)
    assert not np.isnan(routerbench_train.scores).any()
    assert (routerbench_train.costs >= 0).all()


def test_missing_model_is_unknown_not_wrong(tmp_path):
    other = {**GOOD, "records": {"a": 1.0}, "usages": {"a": {"cost": 0.001}}}
    data = load_data(write(tmp_path, [GOOD, other]))
    assert data.models == ("a", "b")
    assert np.isnan(data.scores[1, 1]) and np.isnan(data.costs[1, 1])


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2 of train.jsonl: malformed JSON"),
        ({**GOOD, "records": None} | {"records": None}, "'records' missing"),
        ({k: v for k, v in GOOD.items() if k != "query"}, "'query' missing"),
        ({**GOOD, "query": "  "}, "'query' must be a non-empty string"),
        ({**GOOD, "records": {"a": "high"}}, "records['a']: expected a number, got 'high'"),
        ({**GOOD, "records": {"a": 1.5}}, "records['a']: 1.5 is outside [0.0, 1.0]"),
        (
            {**GOOD, "usages": {"a": {"cost": -1}, "b": {"cost": 0}}},
            "usages['a'].cost: -1.0 is outside",
        ),
        ({**GOOD, "usages": {"a": {"tokens": 3}, "b": {"cost": 0}}}, "usages['a']: 'cost' missing"),
        ({**GOOD, "usages": {"a": {"cost": 0.1}}}, "usages['b']: no cost"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path, line, message):
    path = write(tmp_path, [GOOD, line])
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    assert message in str(err.value)
    assert "line 2 of train.jsonl" in str(err.value)


def test_empty_file_is_refused(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        read_jsonl(p)


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_data(tmp_path / "nope.jsonl")


def test_model_order_can_be_fixed_and_unknown_models_are_named(tmp_path):
    path = write(tmp_path, [GOOD])
    assert load_data(path, models=["b", "a"]).models == ("b", "a")
    with pytest.raises(UnknownModelError, match="unknown model 'a'; known: b, c"):
        load_data(path, models=["b", "c"])


def test_wide_csv_like_routerbench(tmp_path):
    p = tmp_path / "rb.csv"
    p.write_text(
        "sample_id,prompt,eval_name,gpt-4,gpt-4|total_cost,llama,llama|total_cost\n"
        "s1,What is 1+1?,math,1.0,0.01,0.0,0.001\n"
        "s2,Name a color,misc,1.0,0.02,,\n"
    )
    samples = read_wide_csv(p)
    assert samples[0].records == {"gpt-4": 1.0, "llama": 0.0}
    assert samples[1].records == {"gpt-4": 1.0}  # empty cell: unknown
    p.write_text("sample_id,prompt,gpt-4,gpt-4|total_cost\ns1,hi,yes,0.1\n")
    with pytest.raises(DataError, match="line 2 of rb.csv: model 'gpt-4': not a number"):
        read_wide_csv(p)


def test_summary_per_dataset_and_model(routerbench_test):
    rows = routerbench_test.summary()
    row = next(r for r in rows if r["dataset"] == "mbpp" and r["model"] == "gpt-4-1106-preview")
    assert row["n"] == 128 and 0.0 < row["mean_score"] <= 1.0


def test_subset_keeps_alignment(routerbench_test):
    sub = routerbench_test.subset([3, 1])
    assert isinstance(sub, RoutingData)
    assert sub.queries == (routerbench_test.queries[3], routerbench_test.queries[1])
    np.testing.assert_array_equal(sub.scores[0], routerbench_test.scores[3])
