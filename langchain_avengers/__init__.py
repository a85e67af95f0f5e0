"""LangChain integration of avengers-router: a routed chat model and cost callbacks.

Example:
    >>> from langchain_avengers import AvengersChatModel, get_avengers_callback
    >>> llm = AvengersChatModel(alpha=0.7)  # the default router, loaded on first use
    >>> with get_avengers_callback() as cb:  # doctest: +SKIP
    ...     llm.invoke("Which gas do plants absorb?")
    ...     print(cb.total_cost, cb.total_tokens)
"""

from importlib.metadata import PackageNotFoundError, version

from langchain_avengers.callbacks import AvengersCostCallbackHandler, get_avengers_callback
from langchain_avengers.chat_models import AvengersChatModel

try:
    __version__ = version("avengers-router")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "AvengersChatModel",
    "AvengersCostCallbackHandler",
    "__version__",
    "get_avengers_callback",
]
