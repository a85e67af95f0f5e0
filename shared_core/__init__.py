"""avengers-router core: routing data, embedders, the Avengers-Pro router, evaluation,
providers, pricing and cost accounting. Knows nothing of LangChain or LlamaIndex.

Example:
    >>> from shared_core import Router, load_data
    >>> router = Router(n_clusters=60).fit(load_data("train.jsonl"))  # doctest: +SKIP
    >>> router.route("Solve 3x + 5 = 11", alpha=0.7).model  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from shared_core._errors import (
    AllModelsFailedError,
    AuthenticationError,
    AvengersError,
    BadRequestError,
    BudgetExceededError,
    ConfigurationError,
    DataError,
    EmbedderMismatchError,
    MissingAPIKeyError,
    MissingDependencyError,
    NotFittedError,
    ProviderConnectionError,
    ProviderError,
    ProviderServerError,
    ProviderTimeoutError,
    QueryError,
    RateLimitError,
    RouterFileError,
    UnknownModelError,
)
from shared_core.data import RoutingData, Sample, load_data, read_samples
from shared_core.defaults import default_router_path
from shared_core.embeddings import (
    CachedEmbedder,
    Embedder,
    LangChainEmbedder,
    LlamaIndexEmbedder,
    OpenAICompatibleEmbedder,
    StaticEmbedder,
    default_embedder,
    get_embedder,
)
from shared_core.engine import RoutedChat, RoutedResponse, Selection
from shared_core.messages import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    StreamEnd,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageEvent,
)
from shared_core.router import ModelEstimates, Router, RoutingDecision
from shared_core.usage import Budget, CallRecord, CostLedger, Usage

try:
    __version__ = version("avengers-router")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
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
    "Usage",
    "UsageEvent",
    "UnknownModelError",
    "__version__",
    "default_embedder",
    "default_router_path",
    "get_embedder",
    "load_data",
    "read_samples",
]
