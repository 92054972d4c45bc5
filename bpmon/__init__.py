"""bpmon: a terminal monitor that makes backpropagation visible.

``bpmon.Network`` is the engine's network. It is imported on first use, not here, so that
``bpmon --help`` and the other commands that train nothing do not pay for NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpmon.engine import Network

__all__ = ["Network", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Network":
        from bpmon.engine import Network

        return Network
    raise AttributeError(f"module 'bpmon' has no attribute {name!r}")
