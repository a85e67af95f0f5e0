import json
import warnings

import numpy as np
import pytest

from shared_core import (
    EmbedderMismatchError,
    NotFittedError,
    QueryError,
    Router,
    RouterFileError,
    Sample,
    StaticEmbedder,
    UnknownModelError,
)
from shared_core.data import RoutingData

QUERY = "Which of these is a mammal? A) shark B) dolphin C) trout D) eel"


def tiny_data() -> RoutingData:
    # Two topics; "strong" wins on maths, "cheap" is as good on greetings and 100x cheaper.
    samples = []
    for i in range(12):
        samples.append(
            Sample(
                f"compute the integral of x^{i} dx from 0 to {i}",
                {"strong": 1.0, "cheap": 0.0},
                {"strong": 0.01, "cheap": 0.0001},
            )
        )
        samples.append(
            Sample(
                f"hello there friend number {i}, how are you today?",
                {"strong": 1.0, "cheap": 1.0},
                {"strong": 0.01, "cheap": 0.0001},
            )
        )
    return RoutingData.from_samples(samples)


def test_unfitted_router_says_so():
    with pytest.raises(NotFittedError, match="fit"):
        Router().route("hi")


def test_fit_returns_self_and_learns_underscore_attributes():
    r = Router(n_clusters=2, random_state=0)
    assert r.fit(tiny_data()) is r
    assert r.cluster_centers_.shape == (2, 256)
    assert r.models_ == ("cheap", "strong")


@pytest.mark.parametrize("make", [Router, Router.paper], ids=["default", "paper"])
def test_alpha_trades_accuracy_against_cost(make):
    r = make(n_clusters=2, random_state=0).fit(tiny_data())
    maths = "compute the integral of x^3 dx from 0 to 5"
    assert r.route(maths, alpha=1.0).model == "strong"
    assert r.route(maths, alpha=0.0).model == "cheap"
    greeting = "hello there friend, how are you?"
    assert r.route(greeting, alpha=0.5).model == "cheap"
    if make is Router.paper:
        # hard assignment, plain means: both are perfect on greetings, so even accuracy-first
        # takes the cheaper one (tie -> cheaper)
        assert r.route(greeting, alpha=1.0).model == "cheap"


def test_decision_explains_itself(fitted_router):
    d = fitted_router.route(QUERY, alpha=0.7)
    assert d.model == d.ranking[0]
    assert d.scores.max() == pytest.approx(d.score_of(d.model))
    assert d.margin >= 0
    assert 0 <= d.cluster < fitted_router.n_clusters_
    info = d.to_dict()
    assert set(info["candidates"]) == set(fitted_router.models_)
    assert all(0 <= c["p_norm"] <= 1 and 0 <= c["q_norm"] <= 1 for c in info["candidates"].values())
    assert d.model in d.explain()
    with pytest.raises(AttributeError):
        d.model = "x"  # frozen


def test_allowed_and_excluded(fitted_router):
    d = fitted_router.route(QUERY, alpha=1.0, allowed=["claude-v1", "mistralai/mistral-7b-chat"])
    assert d.model in {"claude-v1", "mistralai/mistral-7b-chat"}
    assert set(d.ranking) == {"claude-v1", "mistralai/mistral-7b-chat"}
    best = fitted_router.route(QUERY, alpha=1.0).model
    assert fitted_router.route(QUERY, alpha=1.0, excluded=[best]).model != best
    with pytest.raises(UnknownModelError, match="unknown model 'gpt5'; known: .*claude-v1"):
        fitted_router.route(QUERY, allowed=["gpt5"])
    with pytest.raises(ValueError, match="no model left"):
        fitted_router.route(QUERY, excluded=list(fitted_router.models_))


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_query_is_refused(fitted_router, bad):
    with pytest.raises(QueryError, match="empty"):
        fitted_router.route(bad)


def test_alpha_out_of_range(fitted_router):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        fitted_router.route(QUERY, alpha=1.5)


def test_route_batch_matches_route(fitted_router, routerbench_test):
    queries = list(routerbench_test.queries[:40])
    batch = fitted_router.route_batch(queries, 0.6)
    single = [fitted_router.models_.index(fitted_router.route(q, 0.6).model) for q in queries]
    assert batch.tolist() == single


def test_top_k_blending_weights(routerbench_train, routerbench_train_x):
    r = Router(n_clusters=10, top_k=3, beta=9.0, random_state=0).fit(
        routerbench_train, routerbench_train_x
    )
    est = r.score(QUERY)
    assert len(est.clusters) == 3 and len(set(est.clusters)) == 3
    assert sum(est.weights) == pytest.approx(1.0)
    assert list(est.distances) == sorted(est.distances)
    assert est.weights[0] >= est.weights[1] >= est.weights[2]
    x = r.embed([QUERY])
    assert r.route_batch(x, 0.4)[0] == r.models_.index(r.route(QUERY, 0.4).model)


def test_same_seed_same_data_identical_file(routerbench_train, tmp_path):
    # embeddings computed inside fit, twice: the whole pipeline is deterministic
    a = Router(n_clusters=8, random_state=3).fit(routerbench_train).save(tmp_path / "a.json")
    b = Router(n_clusters=8, random_state=3).fit(routerbench_train).save(tmp_path / "b.json")
    assert a.read_bytes() == b.read_bytes()


def test_round_trip_is_exact(fitted_router, router_file, routerbench_test):
    loaded = Router.load(router_file)
    assert loaded.models_ == fitted_router.models_
    np.testing.assert_array_equal(loaded.cluster_centers_, fitted_router.cluster_centers_)
    np.testing.assert_array_equal(loaded.p_norm_, fitted_router.p_norm_)
    assert loaded.default_alpha == 0.7
    for q in routerbench_test.queries[:20]:
        assert loaded.route(q).to_dict() == fitted_router.route(q).to_dict()


def test_file_is_human_inspectable_json(router_file):
    doc = json.loads(router_file.read_text())
    assert doc["format"] == "avengers-router" and doc["version"] == 1
    assert doc["embedder"] == "wordllama-l2-supercat-256"
    assert doc["config"]["model_specs"]["gpt-4-1106-preview"] == "openai:gpt-4.1"


def test_truncated_file_is_refused(router_file, tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text(router_file.read_text()[:5000])
    with pytest.raises(RouterFileError, match="truncated or not JSON"):
        Router.load(bad)


def test_edited_state_is_refused(router_file, tmp_path):
    doc = json.loads(router_file.read_text())
    doc["state"]["score_sums"][0][0] += 1.0
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RouterFileError, match="checksum mismatch"):
        Router.load(bad)


def test_config_section_may_be_edited(router_file, tmp_path):
    doc = json.loads(router_file.read_text())
    doc["config"]["default_alpha"] = 0.2
    doc["config"]["model_specs"]["claude-v2"] = "anthropic:claude-opus-4-1"
    ok = tmp_path / "r.json"
    ok.write_text(json.dumps(doc))
    r = Router.load(ok)
    assert r.default_alpha == 0.2 and r.model_specs["claude-v2"] == "anthropic:claude-opus-4-1"
    doc["config"]["model_specs"]["gpt5"] = "openai:gpt-5"
    ok.write_text(json.dumps(doc))
    with pytest.raises(RouterFileError, match="unknown model 'gpt5'; known: "):
        Router.load(ok)


def test_other_version_and_other_files_are_refused(router_file, tmp_path):
    doc = json.loads(router_file.read_text())
    doc["version"] = 99
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RouterFileError, match="version 99 is not supported"):
        Router.load(bad)
    bad.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(RouterFileError, match="not an avengers-router file"):
        Router.load(bad)
    with pytest.raises(RouterFileError, match="no such router file"):
        Router.load(tmp_path / "missing.json")


def test_no_code_is_executed_on_load(router_file, tmp_path):
    # A pickle payload in the file is just a string to a JSON loader; the checksum refuses it.
    doc = json.loads(router_file.read_text())
    doc["state"]["models"][0] = "cos\nsystem\n(S'touch pwned'\ntR."
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RouterFileError):
        Router.load(bad)
    assert not (tmp_path / "pwned").exists()


def test_other_embedder_is_refused(router_file):
    with pytest.raises(
        EmbedderMismatchError, match="fitted with embedder 'wordllama-l2-supercat-256'"
    ):
        Router.load(router_file, embedder=StaticEmbedder(dim=256, name="l3_supercat"))


def test_unknown_embedder_id_asks_for_the_embedder(fitted_router, tmp_path):
    class Fake:
        id = "my-company-embedder"

        def embed(self, texts):
            return np.array([[len(t), t.count("e"), 1.0, 2.0] for t in texts], np.float32)

    r = Router(n_clusters=2, embedder=Fake(), random_state=0).fit(tiny_data())
    path = r.save(tmp_path / "r.json")
    with pytest.raises(EmbedderMismatchError, match="pass it"):
        Router.load(path)
    assert Router.load(path, embedder=Fake()).embedder_id_ == "my-company-embedder"


def test_fewer_samples_than_clusters_warns_and_works():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = Router(n_clusters=60, random_state=0).fit(tiny_data())
    assert r.n_clusters_ == 24
    assert any("distinct queries" in str(w.message) for w in caught)
    assert r.route("hello friend").model in r.models_


def test_model_without_data_in_a_cluster_takes_its_global_mean():
    samples = [
        Sample(f"integral of x^{i}", {"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.1}) for i in range(6)
    ]
    samples += [Sample(f"hello friend {i}", {"a": 0.5}, {"a": 1.0}) for i in range(6)]
    r = Router(n_clusters=2, random_state=0).fit(samples)
    hello = r.score("hello friend 3")
    b = r.models_.index("b")
    assert r.counts_[hello.clusters[0], b] == 0
    assert hello.accuracy[b] == pytest.approx(r.global_accuracy_[b]) == pytest.approx(0.0)


@pytest.mark.parametrize("make", [Router, Router.paper], ids=["default", "paper"])
def test_all_models_tie_in_a_cluster(make):
    samples = [
        Sample(f"hello friend {i}", {"a": 1.0, "b": 1.0}, {"a": 0.2, "b": 0.2}) for i in range(4)
    ]
    r = make(n_clusters=1, random_state=0).fit(samples)
    est = r.score("hello friend")
    assert est.p_norm.tolist() == [1.0, 1.0] and est.q_norm.tolist() == [0.0, 0.0]
    d = r.route("hello friend", alpha=0.5)
    assert d.model == "a" and d.margin == 0.0  # exact tie: the first name wins


def test_shrinkage_pulls_towards_the_global_mean(routerbench_train, routerbench_train_x):
    x = routerbench_train_x
    plain = Router(n_clusters=30, random_state=0, shrinkage=0.0).fit(routerbench_train, x)
    shrunk = Router(n_clusters=30, random_state=0, shrinkage=20.0).fit(routerbench_train, x)
    spread = lambda r: np.abs(r.accuracy_ - r.global_accuracy_).mean()  # noqa: E731
    assert spread(shrunk) < spread(plain)
