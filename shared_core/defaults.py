"""Where the default router lives.

``AVENGERS_ROUTER`` names it; otherwise ``$XDG_CONFIG_HOME/avengers-router/router.json``
(``~/.config/avengers-router/router.json`` when ``XDG_CONFIG_HOME`` is unset). ``avengers fit``
without ``-o`` writes there, and ``AvengersChatModel()`` / ``AvengersLLM()`` without ``router=``
read from there.

Example:
    >>> from shared_core.defaults import default_router_path
    >>> default_router_path().name
    'router.json'
"""

from __future__ import annotations

import os
from pathlib import Path


def default_router_path() -> Path:
    """The default router file (it may not exist yet)."""
    if os.environ.get("AVENGERS_ROUTER"):
        return Path(os.environ["AVENGERS_ROUTER"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "avengers-router" / "router.json"
