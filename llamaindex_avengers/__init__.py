"""LlamaIndex integration of avengers-router.

* :class:`AvengersLLM` - a ``FunctionCallingLLM`` that routes every call (query engines, chat
  engines, ``FunctionAgent``, ``Settings.llm``).
* :class:`CostEventHandler` and :func:`track_costs` - tokens and dollars per model over
  LlamaIndex's instrumentation.
* :data:`RESPONSE_KEY` - ``"avengers"``, the key under which each response carries its routing
  facts (``additional_kwargs``, the message's ``additional_kwargs`` and ``raw``).

Example:
    >>> from llamaindex_avengers import AvengersLLM, track_costs
    >>> llm = AvengersLLM(alpha=0.7)  # no I/O until the first call
    >>> with track_costs() as costs:  # doctest: +SKIP
    ...     llm.complete("Hello")
"""

from importlib.metadata import PackageNotFoundError, version

from llamaindex_avengers._convert import KEY as RESPONSE_KEY
from llamaindex_avengers.instrumentation import CostEventHandler, track_costs
from llamaindex_avengers.llms import AvengersLLM

try:
    __version__ = version("avengers-router")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["RESPONSE_KEY", "AvengersLLM", "CostEventHandler", "__version__", "track_costs"]
