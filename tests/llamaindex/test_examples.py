"""The LlamaIndex examples run offline (stub server on loopback, no keys)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("script", "expected"), [
    ("llamaindex_query_engine.py", "answer:   stub reply to:"),
    ("llamaindex_agent.py", "answer: (12 + 30) * 7 = 294"),
])
def test_example_runs_offline(script: str, expected: str, data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env["AVENGERS_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--offline"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert expected in out.stdout
    assert "routing saved" in out.stdout
