"""LangChain's standard unit tests for AvengersChatModel (no network, no router file needed:
construction does no I/O)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from tests.langchain._capabilities import AvengersCapabilities


class TestAvengersChatModelUnit(AvengersCapabilities, ChatModelUnitTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"alpha": 0.7}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({"AVENGERS_API_KEY": "env-key"}, {"alpha": 0.5}, {"api_key": "env-key"})
