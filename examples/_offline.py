"""The examples' offline set-up: a router with provider specs and a local stub of the provider
APIs serving them (no keys, no network). Not part of the library.

The router is the default router when it exists and records specs, else one fitted on the
routerbench data beside the checkout with ``examples/routerbench_models.toml`` as its specs.
"""

from __future__ import annotations

import os
import sys
import tomllib
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stub lives in the checkout's tests/

from shared_core import Router, default_router_path, load_data  # noqa: E402
from tests.stub_llm_server import StubLLMServer  # noqa: E402


def offline_router(use_default: bool = True) -> Router:
    """The default router if it records provider specs (and ``use_default``), else a router
    fitted on routerbench train (k = 20) with the example specs."""
    path = default_router_path()
    if use_default and path.exists():
        router = Router.load(path)
        if router.model_specs:
            return router
    data = Path(os.environ.get("AVENGERS_DATA_DIR", ROOT.parent / "shared" / "data"))
    router = Router(n_clusters=20, random_state=0).fit(
        load_data(data / "routerbench" / "train.jsonl")
    )
    router.model_specs = tomllib.loads(
        (ROOT / "examples" / "routerbench_models.toml").read_text("utf-8")
    )
    return router


def offline_setup(
    stack: ExitStack, stub_class: type[StubLLMServer] = StubLLMServer, use_default: bool = True
) -> tuple[Router, Any, dict[str, Any]]:
    """``(router, stub, fields)``: start the stub (closed with ``stack``) and return the model
    fields that send every routed model to it."""
    router = offline_router(use_default)
    stub = stack.enter_context(stub_class())
    per_model = {
        name: {"base_url": stub.base_url(spec.split(":")[0])}
        for name, spec in router.model_specs.items()
    }
    return (
        router,
        stub,
        {"router": router, "api_key": "offline", "provider_options": {"per_model": per_model}},
    )
