import re
import subprocess
import sys
from pathlib import Path

import shared_core

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = [
    "AllModelsFailedError",
    "AuthenticationError",
    "AvengersError",
    "BadRequestError",
    "Budget",
    "BudgetExceededError",
    "CachedEmbedder",
    "CallRecord",
    "ChatRequest",
    "ChatResponse",
    "ConfigurationError",
    "CostLedger",
    "DataError",
    "Embedder",
    "EmbedderMismatchError",
    "ImagePart",
    "LangChainEmbedder",
    "LlamaIndexEmbedder",
    "Message",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "ModelEstimates",
    "NotFittedError",
    "OpenAICompatibleEmbedder",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderServerError",
    "ProviderTimeoutError",
    "QueryError",
    "RateLimitError",
    "RoutedChat",
    "RoutedResponse",
    "Router",
    "RouterFileError",
    "RoutingData",
    "RoutingDecision",
    "Sample",
    "Selection",
    "StaticEmbedder",
    "StreamEnd",
    "TextDelta",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "UnknownModelError",
    "Usage",
    "UsageEvent",
    "__version__",
    "default_embedder",
    "default_router_path",
    "get_embedder",
    "load_data",
    "read_samples",
]


def test_core_knows_no_framework():
    pattern = re.compile(r"^\s*(from|import)\s+(langchain|llama_index)", re.M)
    offenders = [p for p in (ROOT / "shared_core").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_importing_the_core_loads_no_sdk_or_framework():
    code = (
        "import sys, shared_core, shared_core.providers, shared_core.engine; "
        "bad = [m for m in ('openai', 'anthropic', 'google.genai', 'langchain_core', "
        "'llama_index', 'sklearn', 'matplotlib') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_core_public_surface_is_pinned():
    assert "Router" in shared_core.__all__ and "RoutedChat" in shared_core.__all__
    assert all(hasattr(shared_core, name) for name in shared_core.__all__)
    assert sorted(shared_core.__all__) == sorted(PUBLIC)


def test_single_version_source():
    from importlib.metadata import version

    assert shared_core.__version__ == version("avengers-router")


def test_typed_marker():
    assert (ROOT / "shared_core" / "py.typed").exists()
