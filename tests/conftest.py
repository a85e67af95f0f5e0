"""Shared fixtures: the real routing data beside the checkout and a router fitted on it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared_core import Router, load_data

pytest_plugins = ["tests.conftest_stub"]

DATA_DIR = Path(
    os.environ.get("AVENGERS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
)

# Router model names of routerbench mapped to current provider specs, one per provider at least.
ROUTERBENCH_SPECS = {
    "gpt-4-1106-preview": "openai:gpt-4.1",
    "gpt-3.5-turbo-1106": "openai:gpt-4.1-mini",
    "claude-v1": "anthropic:claude-sonnet-4-5",
    "claude-instant-v1": "anthropic:claude-haiku-4-5",
    "mistralai/mistral-7b-chat": "google:gemini-2.5-flash-lite",
    "zero-one-ai/Yi-34B-Chat": "google:gemini-2.5-flash",
}


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """The embedding cache of CLI runs goes to a temporary folder, not the user's home."""
    old = os.environ.get("AVENGERS_CACHE_DIR")
    os.environ["AVENGERS_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("AVENGERS_CACHE_DIR", None)
    else:
        os.environ["AVENGERS_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.exists():
        pytest.fail(f"routing data not found at {DATA_DIR}; it must sit beside the checkout")
    return DATA_DIR


@pytest.fixture(scope="session")
def routerbench_train(data_dir: Path):
    return load_data(data_dir / "routerbench" / "train.jsonl")


@pytest.fixture(scope="session")
def routerbench_test(data_dir: Path, routerbench_train):
    return load_data(data_dir / "routerbench" / "test.jsonl", models=routerbench_train.models)


@pytest.fixture(scope="session")
def routerbench_train_x(routerbench_train):
    """Embeddings of routerbench train (default embedder), computed once per session."""
    return Router().embed(routerbench_train.queries)


@pytest.fixture(scope="session")
def fitted_router(routerbench_train, routerbench_train_x) -> Router:
    """A router fitted on routerbench train (k=20 to keep the suite fast)."""
    router = Router(n_clusters=20, random_state=0).fit(routerbench_train, routerbench_train_x)
    router.model_specs = dict(ROUTERBENCH_SPECS)
    router.default_alpha = 0.7
    return router


@pytest.fixture(scope="session")
def router_file(fitted_router: Router, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fitted router saved to a file, with provider specs for six of its models."""
    return fitted_router.save(tmp_path_factory.mktemp("router") / "router.json")
