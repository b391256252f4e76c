"""Adapters: the protocol gradcert drives engines through, and the built-in ones.

``load_target(name)`` gives an :class:`Adapter`; ``run_graph(adapter, graph)``
replays a graph on it, fresh, and returns the value and gradients.
"""

from gradcert.adapters.base import (
    Adapter,
    Capabilities,
    EngineError,
    FunctionalAdapter,
    Run,
    TargetError,
    Unsupported,
    run_graph,
)
from gradcert.adapters.generic import GenericAdapter, probe
from gradcert.adapters.registry import BUILTINS, ENTRY_POINT_GROUP, load_target

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "Capabilities",
    "EngineError",
    "FunctionalAdapter",
    "GenericAdapter",
    "Run",
    "TargetError",
    "Unsupported",
    "load_target",
    "probe",
    "run_graph",
]
