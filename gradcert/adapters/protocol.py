"""The engine host protocol: how the judge and an engine host talk (docs/host-protocol.md).

Messages are JSON objects, each framed as a 4-byte big-endian length and
that many bytes of UTF-8. Floats travel exactly: a finite float as a JSON
number written with ``repr`` (which round-trips), a non-finite one as the
string ``"inf"``, ``"-inf"`` or ``"nan"``. A graph travels as a list of
nodes in topological order, each ``["leaf", value]``, ``[op, [args]]`` or
``[op, [args], constant]`` (:func:`wire_graph`).

This module is shared by the judge's client and gradcert's own host; a host
in another language implements the same few rules.

>>> import os
>>> r, w = os.pipe()
>>> send(w, {"id": 1, "op": "run", "x": number(float("-inf"))})
>>> message = receive(r)
>>> message["op"], to_float(message["x"], "x")
('run', -inf)
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

__all__ = [
    "ERROR_KINDS",
    "FDS_VARIABLE",
    "MAX_MESSAGE",
    "OPERATIONS",
    "PATH_VARIABLE",
    "VERSION",
    "ProtocolError",
    "decode",
    "encode",
    "number",
    "receive",
    "send",
    "to_float",
    "wire_graph",
    "wire_json",
]

VERSION = 1
"""The protocol version this gradcert speaks (``hello`` agrees on it)."""

FDS_VARIABLE = "GRADCERT_HOST_FDS"
"""Environment variable naming the host's two pipe ends, ``"R,W"``: it reads requests
from file descriptor R and writes responses to W."""

PATH_VARIABLE = "GRADCERT_HOST_PATH"
"""Environment variable naming the directory ``module:attr`` targets are imported from
(put first on ``sys.path`` once gradcert itself is imported)."""

MAX_MESSAGE = 1 << 28
"""Largest message either side accepts, in bytes (256 MiB): a 100,000-node graph is
about 3 MB."""

OPERATIONS = ("hello", "capabilities", "run", "forward", "build", "value", "backward",
              "grads", "zero_grad", "adam_step", "free", "exit")
"""Every request ``op`` of version 1."""

ERROR_KINDS = ("unsupported", "engine", "request", "target")
"""``unsupported``: the engine lacks what was asked; ``engine``: the engine raised or gave
something that is not a number; ``request``: the host could not understand the request;
``target``: the host could not load the engine it was asked for."""

_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """A message that breaks the protocol: a torn frame, bad JSON, a wrong type."""


def number(x: float) -> float | str:
    """``x`` as the protocol writes it: the float, or ``"inf"``, ``"-inf"``, ``"nan"``.

    >>> number(0.1), number(float("nan")), number(-0.0)
    (0.1, 'nan', -0.0)
    """
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def to_float(x: Any, what: str) -> float:
    """A protocol number back to a float; :class:`ProtocolError` naming ``what`` otherwise.

    >>> to_float(3, "value"), to_float("inf", "value")
    (3.0, inf)
    >>> to_float("3", "value")
    Traceback (most recent call last):
    ...
    gradcert.adapters.protocol.ProtocolError: value: expected a number or "inf", ... got '3'
    """
    if type(x) is float:
        return x
    if type(x) is int:
        try:
            return float(x)
        except OverflowError:
            return math.inf if x > 0 else -math.inf
    if type(x) is str and x in _NON_FINITE:
        return _NON_FINITE[x]
    raise ProtocolError(f'{what}: expected a number or "inf", "-inf" or "nan", got {x!r:.80}')


def wire_graph(graph: Any) -> list[list[Any]]:
    """A :class:`~gradcert.graph.Graph` as the protocol sends it.

    >>> from gradcert.graph import trace
    >>> wire_graph(trace(lambda x, y: (x * y).log() * 2.0, [3.0, 0.5]))
    [['leaf', 3.0], ['leaf', 0.5], ['mul', [0, 1]], ['log', [2]], ['mulc', [3], 2.0]]
    """
    return [["leaf", n.value] if n.op == "leaf" else
            [n.op, list(n.args)] if n.const is None else [n.op, list(n.args), n.const]
            for n in graph.nodes]


def wire_json(graph: Any) -> str:
    """:func:`wire_graph` as JSON text, written directly: no list per node, so no work
    for the garbage collector on a graph of 100,000 nodes.

    >>> from gradcert.graph import trace
    >>> g = trace(lambda x: (x * 2.0).exp() + x, [0.1])
    >>> json.loads(wire_json(g)) == wire_graph(g)
    True
    """
    parts = []
    for n in graph.nodes:
        if n.op == "leaf":
            parts.append(f'["leaf",{n.value!r}]')
        elif n.const is None:
            parts.append(f'["{n.op}",[{",".join(map(str, n.args))}]]')
        else:
            parts.append(f'["{n.op}",[{",".join(map(str, n.args))}],{n.const!r}]')
    return "[" + ",".join(parts) + "]"


def encode(message: dict[str, Any], raw: dict[str, str] | None = None) -> bytes:
    """One framed message (the caller has written its floats with :func:`number`);
    ``raw`` adds fields whose values are JSON text already."""
    body = json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
    if raw:
        extra = ",".join(f"{json.dumps(k)}:{v}" for k, v in raw.items())
        body = body[:-1] + (b"," if len(body) > 2 else b"") + extra.encode() + b"}"
    if len(body) > MAX_MESSAGE:
        raise ProtocolError(f"a message of {len(body):,} bytes is over the limit of "
                            f"{MAX_MESSAGE:,}")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object in a frame's body; :class:`ProtocolError` if it is not one."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"not a JSON message ({e}): {body[:120]!r}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a JSON object, got {body[:120]!r}")
    return message


def send(fd: int, message: dict[str, Any]) -> None:
    """Write one message to file descriptor ``fd`` (blocking until all is written)."""
    data = memoryview(encode(message))
    while data:
        n = os.write(fd, data)
        data = data[n:]


def read_exactly(fd: int, n: int) -> bytes:
    """``n`` bytes from ``fd``; :class:`EOFError` if it closes first."""
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(fd: int) -> dict[str, Any]:
    """Read one message from ``fd`` (blocking); EOFError when the pipe is closed."""
    (size,) = _HEADER.unpack(read_exactly(fd, _HEADER.size))
    if size > MAX_MESSAGE:
        raise ProtocolError(f"a message announced as {size:,} bytes is over the limit")
    return decode(read_exactly(fd, size))
