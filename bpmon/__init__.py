"""bpmon: a terminal monitor that makes backpropagation visible."""

from bpmon.engine import Network

__all__ = ["Network", "__version__"]
__version__ = "0.1.0"
