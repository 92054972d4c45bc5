"""The NumPy backprop engine: layers, activations, losses, initialisers, optimisers, network.

Pure NumPy; nothing here imports Textual or knows about the monitor.
"""

from bpmon.engine.network import Network
from bpmon.engine.optimizers import Optimizer, make_optimizer
from bpmon.engine.view import LayerView

__all__ = ["LayerView", "Network", "Optimizer", "make_optimizer"]
