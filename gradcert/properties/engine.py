"""Driving the engine under test from the judge: every engine call is a request to its host.

The judge never holds an engine object and never imports the target. An
:class:`Engine` sends graphs to the engine host (:mod:`gradcert.adapters.client`)
and gets numbers back; graphs built for the semantics properties stay in the
host, named here by :class:`Built`. Every request runs under the profile's
CPU limit, and whatever goes wrong becomes the example's outcome:

- the engine raised, or gave something that is not a number:
  :class:`~gradcert.properties.runner.EngineRaised`, a finding hypothesis shrinks;
- the host went over its CPU limit: :class:`~gradcert.properties.runner.EngineTimeout`;
- the host died (an exit, a signal, closed pipes):
  :class:`~gradcert.properties.runner.EngineCrashed`; the next request starts a
  fresh host. Both stop the property at once, with the example's graph;
- the engine lacks what was asked: :class:`Unsupported` (the property is unsupported).

A new semantics property composes :meth:`Engine.build`, :meth:`Engine.backward`,
:meth:`Engine.grads`, :meth:`Engine.value`, :meth:`Engine.zero_grad` and
:meth:`Engine.adam_step`.

>>> engine = start_engine("gradcert")
>>> built = engine.build(op_graph("mul", (3.0, 4.0), None))
>>> engine.backward(built)
>>> engine.value(built), engine.grads(built)
(12.0, [4.0, 3.0])
>>> engine.close()
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from gradcert.adapters.client import (
    Capabilities,
    EngineFailed,
    EngineInfo,
    HostClient,
    HostCrashed,
    HostTimeout,
    LoadError,
    Unsupported,
    capabilities_from,
)
from gradcert.adapters.protocol import to_float, wire_json
from gradcert.graph import Graph, Node
from gradcert.properties.runner import EngineCrashed, EngineRaised, EngineTimeout

__all__ = ["DEFAULT_CPU", "Built", "Engine", "LoadError", "Result", "Unsupported",
           "describe", "op_graph", "start_engine"]

DEFAULT_CPU = 10.0
"""CPU seconds one request may take when the caller names no limit."""


def op_graph(op: str, operands: tuple[float, ...], const: float | None) -> Graph:
    """One application of ``op`` to fresh leaves holding ``operands``.

    >>> [n.op for n in op_graph("powc", (2.0,), 3.0).nodes]
    ['leaf', 'powc']
    """
    nodes = [Node.leaf(x) for x in operands]
    nodes.append(Node(op, tuple(range(len(operands))), const))
    return Graph(tuple(nodes))


@dataclass(frozen=True)
class Result:
    """The engine's value of a graph's output and its gradients, leaf by leaf."""

    value: float
    grads: tuple[float, ...]


@dataclass(frozen=True)
class Built:
    """A graph built on the engine, living in the host until the next example."""

    graph: Graph
    id: int

    def ref(self, node: int = -1) -> list[int]:
        """The host's name of one node (the output by default)."""
        return [self.id, node % len(self.graph)]

    @property
    def leaves(self) -> list[list[int]]:
        return [self.ref(i) for i in self.graph.leaves]


class Engine:
    """The engine under test, behind its host: ``caps`` and ``info`` from the host,
    ``cpu`` the CPU seconds a request may take unless it says otherwise."""

    def __init__(self, client: HostClient, caps: Capabilities, info: EngineInfo,
                 cpu: float = DEFAULT_CPU) -> None:
        self.client = client
        self.caps = caps
        self.info = info
        self.cpu = cpu
        self._fresh = True  # the next build may drop what earlier examples built
        self.op_defects: dict[str, dict[str, str]] | None = None  # see properties.sweep

    # -- whole graphs -----------------------------------------------------------

    def run(self, graph: Graph, *, what: str = "running the graph", cpu: float | None = None,
            recursion_limit: int | None = None, default_stack: bool = False) -> Result:
        """Build ``graph`` fresh, read its value, backward, read the leaf gradients;
        ``default_stack``: on a plain script's stack, not the host's large one."""
        self._supported(graph)
        fields: dict[str, Any] = {}
        if recursion_limit is not None:
            fields["recursion_limit"] = recursion_limit
        if default_stack:
            fields["default_stack"] = True
        r = self._request("run", graph, what, cpu, raw={"graph": wire_json(graph)}, **fields)
        grads = r.get("grads")
        if not isinstance(grads, list) or len(grads) != len(graph.leaves):
            self._broken(f"'run' gave {str(grads)[:80]} for {len(graph.leaves)} leaves")
        return Result(self._number(r.get("value"), "value"),
                      tuple(self._number(g, "gradient") for g in grads))

    def forward(self, graph: Graph, *, what: str = "computing the value",
                cpu: float | None = None) -> float:
        """The output's value, built fresh, without backward."""
        self._supported(graph)
        r = self._request("forward", graph, what, cpu, raw={"graph": wire_json(graph)})
        return self._number(r.get("value"), "value")

    # -- graphs kept in the host --------------------------------------------------

    def build(self, graph: Graph, leaves: Built | list[list[int]] | None = None, *,
              what: str = "building the graph") -> Built:
        """Build ``graph`` op by op in the host, on ``leaves``' leaf nodes if given (or on
        the nodes those host names, ``Built.ref``, stand for: any node of an earlier
        graph of this example)."""
        if self.caps.functional:
            raise Unsupported("a functional engine has no op-by-op handles")
        self._supported(graph)
        fields: dict[str, Any] = {"raw": {"graph": wire_json(graph)}}
        if leaves is not None:
            fields["leaves"] = leaves.leaves if isinstance(leaves, Built) else leaves
        if self._fresh:
            fields["free"] = True
            self._fresh = False
        r = self._request("build", graph, what, None, **fields)
        gid = r.get("graph")
        if not isinstance(gid, int):
            self._broken(f"'build' gave {gid!r:.80}, not a graph id")
        return Built(graph, int(gid))

    def value(self, built: Built, node: int = -1, *, what: str = "reading the value") -> float:
        r = self._request("value", built.graph, what, None, ref=built.ref(node))
        return self._number(r.get("value"), "value")

    def backward(self, built: Built, node: int = -1, *, what: str = "backward") -> None:
        self._request("backward", built.graph, what, None, ref=built.ref(node))

    def grads(self, built: Built, *, what: str = "reading gradients") -> list[float]:
        """The gradients held by ``built``'s leaves."""
        r = self._request("grads", built.graph, what, None, refs=built.leaves)
        grads = r.get("grads")
        if not isinstance(grads, list) or len(grads) != len(built.graph.leaves):
            self._broken(f"'grads' gave {str(grads)[:80]}")
        return [self._number(g, "gradient") for g in grads]

    def zero_grad(self, built: Built) -> None:
        if not self.caps.has_zero_grad:
            raise Unsupported("the engine has no zero_grad")
        self._request("zero_grad", built.graph, "zero_grad", None, refs=built.leaves)

    def adam_step(self, built: Built, *, step: int, lr: float, betas: tuple[float, float],
                  eps: float) -> None:
        """The engine's own Adam step number ``step`` on ``built``'s leaves."""
        self._request("adam_step", built.graph, "the Adam step", None, refs=built.leaves,
                      step=step, lr=lr, betas=list(betas), eps=eps)

    def new_example(self) -> None:
        """What was built so far may go: the next build frees it in the host."""
        self._fresh = True

    # -- the rest ---------------------------------------------------------------------

    @property
    def last_cpu(self) -> float:
        """CPU seconds the host spent on the last request."""
        return self.client.last_cpu

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def target(self) -> str:
        return self.info.target

    def close(self) -> None:
        self.client.close()

    def _supported(self, graph: Graph) -> None:
        missing = self.caps.missing(graph)
        if missing:
            raise Unsupported(f"the engine does not support {', '.join(sorted(missing))}",
                              sorted(missing)[0])

    def _request(self, op: str, subject: Graph | None, what: str, cpu: float | None,
                 **fields: Any) -> dict[str, Any]:
        """Request ``op`` about graph ``subject``: what goes wrong is an example's outcome."""
        try:
            r = self.client.request(op, cpu=cpu or self.cpu, what=what, **fields)
        except EngineFailed as e:
            raise EngineRaised(subject, e, what) from None
        except HostTimeout as e:
            self._fresh = True
            raise EngineTimeout(str(e), subject, e.seconds) from None
        except HostCrashed as e:
            self._fresh = True
            raise EngineCrashed(str(e), subject) from None
        if not isinstance(r, dict):
            self._broken(f"{op!r} gave {str(r)[:80]}, not an object")
        return r

    def _number(self, x: Any, what: str) -> float:
        try:
            return to_float(x, what)
        except Exception as e:
            self._broken(str(e))
            raise

    def _broken(self, problem: str) -> NoReturn:
        self.client.kill()
        raise EngineCrashed(f"the engine host broke the protocol: {problem}", None)


def describe(info: EngineInfo, caps: Capabilities) -> dict[str, Any]:
    """What ``engine.json`` and results.json say about the engine."""
    return {"name": info.name, "target": info.target, "import": info.import_line,
            "dtype": caps.dtype, "ops": sorted(caps.ops),
            "unsupported_ops": sorted(caps.unsupported), "has_zero_grad": caps.has_zero_grad,
            "has_adam": caps.has_adam, "functional": caps.functional,
            "notes": {str(k): str(v) for k, v in dict(caps.notes).items()}}


def start_engine(target: str | None = None, *, command: Sequence[str] | None = None,
                 cpu: float = DEFAULT_CPU, known: Path | None = None,
                 path: str | None = None, load_cpu: float | None = None) -> Engine:
    """A host for ``target`` (or the host ``command`` starts), loaded and asked what it
    supports. ``known``: an engine.json another process wrote for this target (certify's
    controller probes once for every worker); it is written there when missing.
    ``load_cpu``: CPU seconds to load the target (default: the client's).
    Raises :class:`LoadError` when the target cannot be loaded."""
    client = HostClient(target, command=command, path=path,
                        **({"load_cpu": load_cpu} if load_cpu else {}))
    try:
        info = client.start()
        caps = _known(known, info)
        if caps is None:
            caps = client.capabilities()
            if known is not None:
                _write(known, describe(info, caps))
    except BaseException:
        client.close()
        raise
    return Engine(client, caps, info, cpu)


def _known(path: Path | None, info: EngineInfo) -> Capabilities | None:
    if path is None:
        return None
    try:
        d = json.loads(path.read_text())
        if d.get("target") != info.target:
            return None
        return capabilities_from(d)
    except (OSError, ValueError, AttributeError):
        return None


def _write(path: Path, d: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}-{os.getpid()}")
    tmp.write_text(json.dumps(d, indent=1))
    tmp.replace(path)
