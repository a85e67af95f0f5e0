"""The public surface of llamaindex_avengers."""

from __future__ import annotations

import importlib
from pathlib import Path

import llamaindex_avengers


def test_all_is_pinned() -> None:
    assert sorted(llamaindex_avengers.__all__) == sorted(
        ["RESPONSE_KEY", "AvengersLLM", "CostEventHandler", "__version__", "track_costs"])
    for name in llamaindex_avengers.__all__:
        assert getattr(llamaindex_avengers, name) is not None
    assert llamaindex_avengers.RESPONSE_KEY == "avengers"


def test_typed_and_importable_without_side_effects() -> None:
    pkg = Path(llamaindex_avengers.__file__).parent
    assert (pkg / "py.typed").exists()
    from llama_index.core.instrumentation import get_dispatcher

    before = list(get_dispatcher().event_handlers)
    importlib.reload(importlib.import_module("llamaindex_avengers.instrumentation"))
    assert list(get_dispatcher().event_handlers) == before  # nothing registered at import
