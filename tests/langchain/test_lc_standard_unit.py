"""LangChain's standard unit tests for AvengersChatModel (no network, no router file needed:
construction does no I/O)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_avengers import AvengersChatModel


class TestAvengersChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[AvengersChatModel]:
        return AvengersChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"alpha": 0.7}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "claude-haiku-4-5"

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({"AVENGERS_API_KEY": "env-key"}, {"alpha": 0.5}, {"api_key": "env-key"})
