"""gradcert's reference engine: a scalar autograd Value, Adam, and small models.

It imports nothing of gradcert, so it can be read, and copied, on its own.

>>> from gradcert.engine import MLP, Adam
>>> net = MLP(2, [4, 1], seed=0)
>>> opt = Adam(net.parameters(), lr=0.01)
"""

from gradcert.engine.nn import GPT, MLP, Layer, Module, Neuron, cross_entropy, rmsnorm, softmax
from gradcert.engine.optim import Adam, adam_update
from gradcert.engine.value import Value, no_gc

__all__ = ["GPT", "MLP", "Adam", "Layer", "Module", "Neuron", "Value", "adam_update",
           "cross_entropy", "no_gc", "rmsnorm", "softmax"]
