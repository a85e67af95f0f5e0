"""The LangChain examples run offline (router fitted on the data beside the checkout, models
served by the in-process stub)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY")


@pytest.mark.parametrize(("script", "expect"), [
    ("langchain_chain.py", "routing saved"),
    ("langchain_agent.py", "pinned]"),
    ("langchain_structured.py", "json_schema: Country("),
])
def test_example_runs_offline(script: str, expect: str, router_file: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _KEYS}
    env["AVENGERS_ROUTER"] = str(router_file)  # the session's router: no fitting per example
    out = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout
    assert "Total Cost (USD): $0.0" in out.stdout
