"""The engine host: the process an engine under test runs in, apart from the judge.

The judge's client (:mod:`gradcert.adapters.client`) starts it as
``python -P -m gradcert.adapters.host`` with a large stack, stdin from
/dev/null, stdout and stderr to a file, in its own process group, and the
two pipe ends of the protocol in ``GRADCERT_HOST_FDS``
(docs/host-protocol.md). The host imports gradcert first, then puts the
user's directory (``GRADCERT_HOST_PATH``) on ``sys.path``, so a checkout's
``gradcert/`` there never shadows the installed one while ``module:attr``
targets still import. Then it loads the target's adapter (``hello``) and
answers the judge's requests one at a time, every engine call in its main
thread.

Whatever the engine does is answered or ends the process: an exception of
any type (``KeyboardInterrupt``, ``SystemExit``, pytest's skip) is an error
reply naming the node and op; closing the protocol's pipes, exiting or
crashing ends the host, and the judge records that as the example's
outcome and starts a fresh one.

>>> host = Host(-1, -1)
>>> host.handle({"id": 1, "op": "hello", "version": VERSION, "target": "gradcert"})["ok"]
True
>>> reply = host.handle({"id": 2, "op": "run", "graph": [["leaf", 3.0], ["log", [0]]]})
>>> reply["result"]["grads"]
[0.3333333333333333]
>>> error = host.handle({"id": 3, "op": "run", "graph": [["leaf", -1.0], ["log", [0]]]})["error"]
>>> error["kind"], error["message"], error["node"], error["op"]
('engine', 'the engine raised ValueError: log(-1.0): log needs a positive input', 1, 'log')
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, cast

from gradcert.adapters import registry
from gradcert.adapters.base import (
    Adapter,
    EngineError,
    FunctionalAdapter,
    TargetError,
    Unsupported,
    _at,
    _number,
)
from gradcert.adapters.generic import GenericAdapter
from gradcert.adapters.protocol import (
    FDS_VARIABLE,
    OPERATIONS,
    PATH_VARIABLE,
    VERSION,
    ProtocolError,
    number,
    receive,
    send,
)
from gradcert.graph import Graph, Node
from gradcert.ops import OPS

__all__ = ["RECURSION_LIMIT", "Host", "main"]

RECURSION_LIMIT = 10_000
"""The host's recursion limit for a request that names none (deep chains name theirs)."""

DEFAULT_STACK = 8 << 20
"""The stack of a request run as a plain script runs (``default_stack``): the main
thread's stack under Linux's usual ``ulimit -s`` of 8 MiB (the host's own is 512 MiB)."""

EXIT_PIPE = 70  # the protocol's pipes were closed or replaced (by the engine)


class _BadRequest(Exception):
    """The request itself is malformed: a bug of the judge or of a foreign client."""


class Host:
    """Answers protocol requests on file descriptors ``rfd``/``wfd`` with one adapter."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.pipes = _identity(rfd, wfd)
        self.adapter: Adapter | None = None
        self.built: dict[int, list[Any]] = {}
        self.next_built = 0
        self.request_id: Any = None

    # -- the loop --------------------------------------------------------------

    def serve(self) -> int:
        """Answer requests until ``exit`` or the judge closes the pipe; the exit code."""
        while True:
            try:
                with _gc_paused():  # the host's own garbage, not the engine's
                    message = receive(self.rfd)
            except EOFError:
                return 0
            except ProtocolError as e:
                _say(f"a request broke the protocol: {e}")
                return EXIT_PIPE
            except OSError as e:
                _say(f"cannot read requests: {e} (closed by the engine?)")
                return EXIT_PIPE
            reply = self.handle(message)
            if _identity(self.rfd, self.wfd) != self.pipes:
                _say("the engine closed or replaced the protocol's pipes")
                return EXIT_PIPE
            try:
                send(self.wfd, reply)
            except (OSError, ProtocolError) as e:
                _say(f"cannot answer: {e}")
                return EXIT_PIPE
            if message.get("op") == "exit":
                return 0

    def progress(self, step: str) -> None:
        """Tell the judge the host moves on to ``step`` (it limits each step apart)."""
        send(self.wfd, {"id": self.request_id, "progress": {"probing": step}})

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """The reply to one request: ``{"id", "ok": true, "result"}`` or ``{"id", "ok":
        false, "error": {"kind", "type", "message", "node", "op"}}``."""
        self.request_id = rid = message.get("id")
        op = message.get("op")
        limit = message.get("recursion_limit") or RECURSION_LIMIT
        saved = sys.getrecursionlimit()
        try:
            if op not in OPERATIONS:
                raise _BadRequest(f"unknown op {op!r}; version {VERSION} has "
                                  f"{', '.join(OPERATIONS)}")
            if op != "hello" and self.adapter is None:
                raise _BadRequest(f"{op!r} before 'hello'")
            handler: Callable[[dict[str, Any]], Any] = getattr(self, "_" + op)
            if type(limit) is not int or limit < 100:
                raise _BadRequest(f"recursion_limit must be an integer >= 100, got {limit!r}")
            sys.setrecursionlimit(max(limit, 100))
            if message.get("default_stack"):
                return {"id": rid, "ok": True, "result": _on_stack(DEFAULT_STACK, handler,
                                                                   message)}
            return {"id": rid, "ok": True, "result": handler(message)}
        except _BadRequest as e:
            return _error(rid, "request", e, str(e))
        except TargetError as e:
            return _error(rid, "target", e, str(e))
        except Unsupported as e:
            return _error(rid, "unsupported", e, e.problem, op=e.op)
        except EngineError as e:
            original = e.original
            message_ = e.problem or _raised(original if original is not None else e)
            return _error(rid, "engine", original or e, message_, node=e.node, op=e.op)
        except BaseException as e:  # the engine's code: KeyboardInterrupt, SystemExit, ...
            node, op_ = getattr(e, "gradcert_at", None) or (None, None)
            return _error(rid, "engine", e, _raised(e), node=node, op=op_)
        finally:
            with contextlib.suppress(RecursionError, ValueError):
                sys.setrecursionlimit(saved)

    # -- requests ----------------------------------------------------------------

    def _hello(self, m: dict[str, Any]) -> dict[str, Any]:
        if m.get("version") != VERSION:
            raise _BadRequest(f"this host speaks protocol version {VERSION}, "
                              f"not {m.get('version')!r}")
        target = m.get("target")
        try:
            self.adapter = a = registry.load_target(target)
        except TargetError:
            raise
        except BaseException as e:  # importing the engine ran its code
            raise TargetError(f"{target}: loading it raised {type(e).__name__}: "
                              f"{_text(e)}") from None
        return {"version": VERSION, "engine": {
            "name": a.name, "target": a.target, "import_line": a.import_line,
            "make_value": a.make_value, "prelude": a.reproducer_prelude(),
            "value_class": isinstance(a, GenericAdapter)}}

    def _capabilities(self, m: dict[str, Any]) -> dict[str, Any]:
        a = self._adapter()
        skip = m.get("skip") or {}
        if not isinstance(skip, dict):
            raise _BadRequest("'skip' must map probe steps to reasons")
        if isinstance(a, GenericAdapter):
            caps = a.probe(skip={str(k): str(v) for k, v in skip.items()}, progress=self.progress)
        else:
            caps = a.capabilities()
        return {"ops": sorted(caps.ops), "dtype": caps.dtype,
                "has_zero_grad": caps.has_zero_grad, "has_adam": caps.has_adam,
                "functional": caps.functional,
                "notes": {str(k): str(v) for k, v in dict(caps.notes).items()}}

    def _run(self, m: dict[str, Any], graph: Graph | None = None) -> dict[str, Any]:
        graph = graph or _graph(m)
        run = self._adapter().run(graph)
        with _at(graph.output, "read"):
            value = number(_number(run.value, "value"))
            grads = [number(_number(g, "gradient")) for g in run.grads]
        return {"value": value, "grads": grads}

    def _forward(self, m: dict[str, Any]) -> dict[str, Any]:
        graph, a = _graph(m), self._adapter()
        if isinstance(a, FunctionalAdapter):
            return {"value": self._run(m, graph)["value"]}
        out = a.build(graph)[-1]
        with _at(graph.output, "read"):
            return {"value": number(_number(a.value(out), "value"))}

    def _build(self, m: dict[str, Any]) -> dict[str, Any]:
        graph = _graph(m)
        leaves = m.get("leaves")
        given = None if leaves is None else [self._handle(r) for r in leaves]
        if given is not None and len(given) != len(graph.leaves):
            raise _BadRequest(f"{len(given)} leaf handles for {len(graph.leaves)} leaves")
        if m.get("free"):  # the judge is done with every graph built before
            self.built.clear()
        handles = self._adapter().build(graph, given)
        self.next_built += 1
        self.built[self.next_built] = handles
        return {"graph": self.next_built}

    def _value(self, m: dict[str, Any]) -> dict[str, Any]:
        ref = m.get("ref")
        h = self._handle(ref)
        with _at(ref[1], "read"):  # type: ignore[index]
            return {"value": number(_number(self._adapter().value(h), "value"))}

    def _backward(self, m: dict[str, Any]) -> dict[str, Any]:
        ref = m.get("ref")
        h = self._handle(ref)
        with _at(ref[1], "backward"):  # type: ignore[index]
            self._adapter().backward(h)
        return {}

    def _grads(self, m: dict[str, Any]) -> dict[str, Any]:
        refs = _refs(m)
        grads = []
        for ref in refs:
            h = self._handle(ref)
            with _at(ref[1], "read"):
                grads.append(number(_number(self._adapter().grad(h), "gradient")))
        return {"grads": grads}

    def _zero_grad(self, m: dict[str, Any]) -> dict[str, Any]:
        handles = [self._handle(r) for r in _refs(m)]
        with _at(None, "zero_grad"):
            self._adapter().zero_grad(handles)
        return {}

    def _adam_step(self, m: dict[str, Any]) -> dict[str, Any]:
        handles = [self._handle(r) for r in _refs(m)]
        try:
            step, lr, eps = int(m["step"]), float(m["lr"]), float(m["eps"])
            b1, b2 = (float(b) for b in m["betas"])
        except (KeyError, TypeError, ValueError) as e:
            raise _BadRequest(f"adam_step needs step, lr, betas and eps: {e}") from None
        with _at(None, "adam_step"):
            self._adapter().adam_step(handles, step=step, lr=lr, betas=(b1, b2), eps=eps)
        return {}

    def _free(self, m: dict[str, Any]) -> dict[str, Any]:
        self.built.clear()
        return {}

    def _exit(self, m: dict[str, Any]) -> dict[str, Any]:
        return {}

    # -- helpers -------------------------------------------------------------------

    def _adapter(self) -> Adapter:
        assert self.adapter is not None
        return self.adapter

    def _handle(self, ref: Any) -> Any:
        if (not isinstance(ref, list) or len(ref) != 2
                or not all(type(x) is int for x in ref)):
            raise _BadRequest(f"a handle is [graph id, node id], got {ref!r:.80}")
        built = self.built.get(ref[0])
        if built is None or not 0 <= ref[1] < len(built):
            raise _BadRequest(f"no built node {ref!r} (freed, or never built)")
        return built[ref[1]]


class _Node(NamedTuple):
    op: str
    args: tuple[int, ...]
    const: float | None
    value: float | None


class _Wire:
    """A graph as it came over the pipe: what adapters read of a
    :class:`~gradcert.graph.Graph` (``nodes``, ``leaves``, ``inputs``, ``output``), checked
    for shape but without Graph's per-node validation, which costs more than the engine
    on a chain of 100,000 nodes."""

    def __init__(self, raw: Any) -> None:
        if not isinstance(raw, list) or not raw:
            raise _BadRequest("'graph' must be a non-empty list of nodes")
        nodes: list[_Node] = []
        leaves: list[int] = []
        shape = {name: (row.arity, row.has_const) for name, row in OPS.items()}
        node, append = _Node, nodes.append
        for i, x in enumerate(raw):
            try:
                op = x[0]
                if op == "leaf":
                    append(node("leaf", (), None, float(x[1])))
                    leaves.append(i)
                    continue
                arity, has_const = shape[op]
                args = tuple(x[1])
                const = float(x[2]) if has_const else None
                a = args[0]
                ok = len(args) == arity and type(a) is int and 0 <= a < i and (
                    arity == 1 or (type(args[1]) is int and 0 <= args[1] < i))
            except (KeyError, IndexError, TypeError, ValueError):
                raise _BadRequest(f"graph node {i}: {str(x)[:80]} is not a node") from None
            if not ok:
                raise _BadRequest(f"graph node {i}: {op} of {list(args)}: wrong arguments")
            append(node(op, args, const, None))
        self.nodes = nodes
        self.leaves = tuple(leaves)
        self.output = len(nodes) - 1

    @property
    def inputs(self) -> tuple[float, ...]:
        return tuple(self.nodes[i].value for i in self.leaves)  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.nodes)

    def __getattr__(self, name: str) -> Any:
        # anything else an adapter asks of its graph: the real Graph, made once
        if name.startswith("__"):
            raise AttributeError(name)
        real = self.__dict__.get("_real")
        if real is None:
            real = self.__dict__["_real"] = Graph(tuple(Node(*n) for n in self.nodes))
        return getattr(real, name)


def _graph(m: dict[str, Any]) -> Graph:
    """The request's graph (taken out of it, so the raw lists are freed before the engine
    runs: the collector would go through them at every pass)."""
    with _gc_paused():
        return cast(Graph, _Wire(m.pop("graph", None)))


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The collector off while the host parses a message: a 100,000-node graph is 200,000
    lists that are garbage at once. Whatever state the engine left it in is restored."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _refs(m: dict[str, Any]) -> Sequence[Any]:
    refs = m.get("refs")
    if not isinstance(refs, list):
        raise _BadRequest("'refs' must be a list of handles")
    return refs


def _text(e: BaseException) -> str:
    try:
        s = str(e)
    except BaseException:  # a hostile __str__
        s = f"<{type(e).__name__} that cannot be printed>"
    return s if len(s) <= 2000 else s[:2000] + "..."


def _raised(e: BaseException) -> str:
    return f"the engine raised {type(e).__name__}: {_text(e)}"



def _on_stack(size: int, handler: Callable[[dict[str, Any]], Any], message: dict[str, Any]) -> Any:
    """``handler(message)`` in a thread with a ``size``-byte stack; its result, or what it
    raised (an overflow of that stack kills the host, as it kills a plain script)."""
    import threading

    out: list[Any] = []

    def run() -> None:
        try:
            out.append((True, handler(message)))
        except BaseException as e:  # handed to the main thread, which reports it
            out.append((False, e))

    old = threading.stack_size(size)
    try:
        t = threading.Thread(target=run, name="default-stack")
        t.start()
    finally:
        threading.stack_size(old)
    t.join()
    ok, result = out[0]
    if not ok:
        raise result
    return result


def _error(rid: Any, kind: str, e: BaseException, message: str, *, node: int | None = None,
           op: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"kind": kind, "type": type(e).__name__, "message": message}
    if node is not None:
        error["node"] = node
    if op is not None:
        error["op"] = op
    return {"id": rid, "ok": False, "error": error}


def _say(text: str) -> None:
    """A line on the host's stderr (its output file), if the engine left fd 2 open."""
    with contextlib.suppress(OSError):
        os.write(2, f"gradcert host: {text}\n".encode())


def _identity(*fds: int) -> tuple[Any, ...]:
    """What each fd is (device, inode), to notice the engine closing or replacing one."""
    out: list[tuple[int, int] | None] = []
    for fd in fds:
        try:
            st = os.fstat(fd)
            out.append((st.st_dev, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def main() -> int:
    """Serve the protocol on the pipes named in ``GRADCERT_HOST_FDS``."""
    try:
        rfd, wfd = (int(x) for x in os.environ[FDS_VARIABLE].split(","))
    except (KeyError, ValueError):
        print(f"gradcert host: {FDS_VARIABLE} must name the protocol's two file "
              f"descriptors, 'R,W' (the judge's client starts hosts)", file=sys.stderr)
        return 2
    os.environ.pop(FDS_VARIABLE, None)
    path = os.environ.pop(PATH_VARIABLE, None)
    if path:  # only now: gradcert is imported already, from where it is installed
        sys.path.insert(0, path)
    sys.setrecursionlimit(RECURSION_LIMIT)
    return Host(rfd, wfd).serve()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # no waiting for threads the engine left running
