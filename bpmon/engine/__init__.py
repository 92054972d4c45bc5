"""The NumPy backprop engine: layers, activations, losses, initialisers, optimisers, network.

Pure NumPy; nothing here imports Textual or knows about the monitor.
"""

from bpmon.engine.network import Network
from bpmon.engine.optimizers import Optimizer, make_optimizer

__all__ = ["Network", "Optimizer", "make_optimizer"]
