"""Pytest plugin exposing the stub LLM server as the ``stub`` fixture.

Register it in ``tests/conftest.py`` with::

    pytest_plugins = ["tests.conftest_stub"]
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stub_llm_server import StubLLMServer


@pytest.fixture
def stub() -> Iterator[StubLLMServer]:
    """A fresh running :class:`StubLLMServer` on 127.0.0.1 (random port) for one test."""
    with StubLLMServer() as server:
        yield server
